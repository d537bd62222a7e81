"""PNGs taken apart and put together again with their CRCs right: damage only a full check can see."""

from __future__ import annotations

import struct
import zlib


def chunk(name: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))


def split(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        length, name = struct.unpack_from(">I4s", data, pos)
        out.append((name, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def join(chunks) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunk(name, body) for name, body in chunks)


def with_raw(data: bytes, change) -> bytes:
    """The same PNG with its inflated scanlines changed by ``change`` and compressed again, CRCs right."""
    chunks = split(data)
    raw = zlib.decompress(b"".join(body for name, body in chunks if name == b"IDAT"))
    rest = [(name, body) for name, body in chunks if name != b"IDAT"]
    return join(rest[:-1] + [(b"IDAT", zlib.compress(change(bytearray(raw))))] + rest[-1:])
