"""The full decode of a submitted card face: the one check of a job that needs Pillow, so it lives outside the rules.

The rules read a face's size from its IHDR chunk and call :func:`png_problem` only when that size
is a card's (1016x648 or 648x1016), so a decompression bomb (a huge declared size) never reaches
the decoder and the decoded image is at most a card. A plain face is checked without Pillow: see
:mod:`kartud.rules.png_structure`.

>>> png_problem(b"\\x89PNG\\r\\n\\x1a\\n")
'is not a readable PNG image (damaged or truncated data)'
"""

from __future__ import annotations

import io
from typing import Any

from ..rules.png_structure import decodes_surely


def png_problem(data: bytes) -> str | None:
    """What keeps Pillow from decoding the whole image, or None when it decodes.

    A plain face whose chunks, CRCs, inflated data and scanline filters are all sound is sure to decode
    (:func:`~kartud.rules.png_structure.decodes_surely`, 15-25 times cheaper); any other is decoded by
    Pillow, so a refusal, and its words, are the full decode's as before."""
    if decodes_surely(data):
        return None
    from PIL import Image  # imported when a job arrives, not at start: the idle daemon stays lighter

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.load()
    except Exception:  # Pillow raises many types for bad data (OSError, SyntaxError, ValueError, zlib.error)
        return "is not a readable PNG image (damaged or truncated data)"
    return None


class NeedsFullDecode(Exception):
    """Raised by :func:`plain_png_problem` for a face only Pillow can judge."""


def plain_png_problem(data: bytes) -> str | None:
    """None for a face that is sure to decode; :class:`NeedsFullDecode` for any other (never a refusal: the
    caller runs :func:`png_problem` then, off the event loop)."""
    if decodes_surely(data):
        return None
    raise NeedsFullDecode()


def face_chars(payload: Any) -> int:
    """The length of a submission's faces as sent (base64): what checking them costs grows with it."""
    if not isinstance(payload, dict):
        return 0
    return sum(len(face) for face in (payload.get("front_png"), payload.get("back_png")) if isinstance(face, str))
