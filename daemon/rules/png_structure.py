"""A PNG face checked without decoding its pixels: chunks, CRCs, a full inflate and every scanline's filter byte.

:func:`decodes_surely` answers True only for a PNG that Pillow is sure to decode (a strict subset of
what it accepts: the common chunks, not interlaced, every byte accounted for); anything else, however
harmless, answers False, and the caller asks Pillow itself. So a fast intake refuses exactly what the
full decode refuses, with the same words, and pays for the full decode only when a face is unusual.
"""

from __future__ import annotations

import struct
import zlib

from kartud.hw.printer.png_data import SIGNATURE, fast_zlib
from kartud.hw.printer.png_data import chunks as _chunks

# colour type -> (channels, allowed bit depths), PNG specification table 11.1
COLOUR_TYPES = {0: (1, (1, 2, 4, 8, 16)), 2: (3, (8, 16)), 3: (1, (1, 2, 4, 8)), 4: (2, (8, 16)), 6: (4, (8, 16))}
# Ancillary chunks whose fixed length makes them harmless to Pillow's reader; any other sends the face to Pillow.
HARMLESS = {b"pHYs": 9, b"gAMA": 4, b"sRGB": 1}
WINDOW = 1 << 16                  # inflated a piece at a time: the whole image is never held


def decodes_surely(data: bytes) -> bool:
    """True when ``data`` is a plain PNG whose every chunk is whole with its CRC right, whose image data
    inflates to exactly the scanlines its header declares and whose every scanline has a known filter."""
    if not data.startswith(SIGNATURE):
        return False
    chunks = _chunks(data)
    if chunks is None or len(chunks) < 3 or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND" or chunks[-1][2]:
        return False
    ihdr = chunks[0]
    if ihdr[2] != 13:
        return False
    width, height, depth, colour, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", data, ihdr[1])
    kind = COLOUR_TYPES.get(colour)
    if kind is None or depth not in kind[1] or compression or filtering or interlace or not width or not height:
        return False
    idat, seen_idat, palette = [], False, False
    for name, start, length in chunks[1:-1]:
        if name == b"IDAT":
            if seen_idat and idat[-1][1] != start - 12 - idat[-1][2]:
                return False            # IDAT chunks must follow one another
            idat.append((name, start, length))
            seen_idat = True
        elif name == b"PLTE":
            if seen_idat or palette or length % 3 or not 3 <= length <= 3 * (1 << min(depth, 8)) or colour in (0, 4):
                return False
            palette = True
        elif HARMLESS.get(name) != length or seen_idat:
            return False
    if not idat or (colour == 3 and not palette):
        return False
    stride = (width * kind[0] * depth + 7) // 8 + 1     # one filter byte before each scanline
    return _scanlines_sound(data, idat, stride, height)


def _inflater():
    """zlib-ng's inflate where installed, else zlib's (the same answers, slower)."""
    module = fast_zlib() or zlib
    return module.decompressobj(), module.error


def _scanlines_sound(data: bytes, idat: list[tuple[bytes, int, int]], stride: int, height: int) -> bool:
    expected = stride * height
    inflater, error = _inflater()
    done, offset = 0, 0                 # bytes inflated so far; where the next filter byte falls in them
    view = memoryview(data)
    try:
        for _, start, length in idat:
            pending = view[start:start + length]
            while pending:
                piece = inflater.decompress(pending, WINDOW)
                pending = inflater.unconsumed_tail
                if done + len(piece) > expected:
                    return False
                if max(piece[offset::stride], default=0) > 4:
                    return False        # filter types are 0-4
                done += len(piece)
                offset = (offset - len(piece)) % stride
        while not inflater.eof:         # what is left inside zlib's own buffer
            piece = inflater.decompress(b"", WINDOW)
            if not piece:
                return False
            if done + len(piece) > expected or max(piece[offset::stride], default=0) > 4:
                return False
            done += len(piece)
            offset = (offset - len(piece)) % stride
    except error:
        return False
    return done == expected and not inflater.unused_data
