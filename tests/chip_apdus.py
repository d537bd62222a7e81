"""Command APDUs for the chip tests: SELECT, CREATE FILE, UPDATE BINARY and READ BINARY as the encoder sends them."""

from __future__ import annotations


def select(file_id: int, p1: int = 0x02, p2: int = 0x0C) -> bytes:
    """SELECT by file id (P1 02: an EF of the MF), no answer data (P2 0C) unless asked."""
    return bytes([0x00, 0xA4, p1, p2, 0x02, file_id >> 8, file_id & 0xFF])


def create(file_id: int, size: int, descriptor: int = 0x01) -> bytes:
    """CREATE FILE (ISO 7816-9) with an FCP: descriptor (82), file id (83), size (80)."""
    fcp = bytes([0x82, 0x01, descriptor, 0x83, 0x02, file_id >> 8, file_id & 0xFF, 0x80, 0x02, size >> 8, size & 0xFF])
    return bytes([0x00, 0xE0, 0x00, 0x00, len(fcp) + 2, 0x62, len(fcp)]) + fcp


def update(offset: int, data: bytes) -> bytes:
    """UPDATE BINARY of ``data`` at ``offset`` of the current EF."""
    return bytes([0x00, 0xD6, offset >> 8, offset & 0xFF, len(data)]) + data


def read(offset: int, length: int) -> bytes:
    """READ BINARY of ``length`` bytes (0: up to 256) at ``offset`` of the current EF."""
    return bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, length])
