"""The full decode of a submitted card face: the one check of a job that needs Pillow, so it lives outside the rules.

The rules read a face's size from its IHDR chunk and call :func:`png_problem` only when that size
is a card's (1016x648 or 648x1016), so a decompression bomb (a huge declared size) never reaches
the decoder and the decoded image is at most a card.

>>> png_problem(b"\\x89PNG\\r\\n\\x1a\\n")
'is not a readable PNG image (damaged or truncated data)'
"""

from __future__ import annotations

import io


def png_problem(data: bytes) -> str | None:
    """What keeps Pillow from decoding the whole image, or None when it decodes."""
    from PIL import Image  # imported when a job arrives, not at start: the idle daemon stays lighter

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.load()
    except Exception:  # Pillow raises many types for bad data (OSError, SyntaxError, ValueError, zlib.error)
        return "is not a readable PNG image (damaged or truncated data)"
    return None
