"""A simulated contactless chip card speaking ISO 7816-4 APDUs: GET UID, SELECT by file id, READ/UPDATE BINARY."""

from __future__ import annotations

import hashlib
import os
import struct
import threading

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_SECURITY = b"\x69\x82"           # write refused (injected failure)
SW_NO_FILE_SELECTED = b"\x69\x86"
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_NOT_ENOUGH_MEMORY = b"\x6a\x84"
SW_WRONG_P1P2 = b"\x6b\x00"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_CLA_NOT_SUPPORTED = b"\x6e\x00"

# An ATR seen working for a contactless card through vpcd (rig.md).
CONTACTLESS_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")


class CardLeftField(Exception):
    """The card left the reader's field while a command was on its way: that command gets no answer."""


class SimChipCard:
    """A blank chip card whose files spring into being on first SELECT, up to ``capacity`` bytes in all.

    ``fail_writes`` makes the next UPDATE BINARY commands answer 69 82 (write refused), and
    ``leave_field_at_write`` (n >= 1) makes the n-th UPDATE BINARY raise :class:`CardLeftField`
    instead of answering (a card pulled mid-write), to test the encoder's failure paths.

    >>> card = SimChipCard(uid=bytes.fromhex("04A1B2C3D4E5F6"))
    >>> card.transmit(bytes.fromhex("FFCA000000")).hex().upper()
    '04A1B2C3D4E5F69000'
    """

    def __init__(self, uid: bytes | None = None, capacity: int = 80 * 1024, max_file_size: int = 32 * 1024):
        self.uid = uid if uid is not None else b"\x04" + os.urandom(6)
        self.capacity = capacity
        self.max_file_size = max_file_size
        self.files: dict[int, bytearray] = {}
        self.selected: int | None = None
        self.fail_writes = 0
        self.leave_field_at_write: int | None = None
        self._writes_seen = 0
        self.left_field = False
        self._lock = threading.Lock()

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()

    def power_off(self) -> None:
        """The field went off: the selected file is forgotten (files are in EEPROM and stay)."""
        with self._lock:
            self.selected = None

    def _used(self) -> int:
        return sum(len(data) for data in self.files.values())

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one command APDU with its response APDU (data + SW1 SW2)."""
        with self._lock:
            if self.left_field:
                raise CardLeftField("the card is out of the reader's field")
            if len(apdu) < 4:
                return SW_WRONG_LENGTH
            cla, ins, p1, p2 = apdu[:4]
            body = apdu[4:]
            if cla == 0xFF and ins == 0xCA:
                return self.uid + SW_OK if (p1, p2) == (0, 0) else SW_WRONG_P1P2
            if cla != 0x00:
                return SW_CLA_NOT_SUPPORTED
            if ins == 0xA4:
                return self._select(p1, body)
            if ins == 0xB0:
                return self._read(p1, p2, body)
            if ins == 0xD6:
                self._writes_seen += 1
                if self._writes_seen == self.leave_field_at_write:
                    self.left_field = True       # and stays out: nothing it is sent gets an answer
                    raise CardLeftField(f"the card left the field at UPDATE BINARY number {self._writes_seen}")
                return self._update(p1, p2, body)
            return SW_INS_NOT_SUPPORTED

    def _select(self, p1: int, body: bytes) -> bytes:
        if p1 not in (0x00, 0x02) or len(body) < 3 or body[0] != 2:
            return SW_WRONG_P1P2
        file_id = (body[1] << 8) | body[2]
        self.files.setdefault(file_id, bytearray())
        self.selected = file_id
        return SW_OK

    def _read(self, p1: int, p2: int, body: bytes) -> bytes:
        if self.selected is None:
            return SW_NO_FILE_SELECTED
        offset = (p1 << 8) | p2
        length = body[0] if body else 0
        length = length or 256
        return bytes(self.files[self.selected][offset:offset + length]) + SW_OK

    def _update(self, p1: int, p2: int, body: bytes) -> bytes:
        if self.selected is None:
            return SW_NO_FILE_SELECTED
        if not body or body[0] != len(body) - 1:
            return SW_WRONG_LENGTH
        if self.fail_writes > 0:
            self.fail_writes -= 1
            return SW_SECURITY
        offset, data = (p1 << 8) | p2, body[1:]
        current = self.files[self.selected]
        end = offset + len(data)
        if end > self.max_file_size or self._used() - len(current) + max(end, len(current)) > self.capacity:
            return SW_NOT_ENOUGH_MEMORY
        if offset > len(current):
            return SW_WRONG_P1P2
        current[offset:end] = data
        return SW_OK

    def files_sha256(self) -> str | None:
        """The contract's ``chip_files_sha256`` of what the chip holds, or None for an untouched chip."""
        with self._lock:
            written = {fid: bytes(data) for fid, data in self.files.items() if data}
        return files_sha256(written) if written else None


def files_sha256(files: dict[int, bytes]) -> str:
    """SHA-256 over files in ascending id order: id (2 bytes BE), length (4 bytes BE), bytes."""
    digest = hashlib.sha256()
    for file_id in sorted(files):
        data = files[file_id]
        digest.update(struct.pack(">HI", file_id, len(data)))
        digest.update(data)
    return digest.hexdigest()
