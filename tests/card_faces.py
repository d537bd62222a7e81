"""Card faces for the tests: a plain colour face, a quick-to-decode 1-bit face, and faces made to order."""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageDraw


def face_png(colour=(180, 210, 230), size=(1016, 648), black_box: bool = True) -> bytes:
    """A card face: one colour, with a pure black bar (text's stand-in) when ``black_box``."""
    image = Image.new("RGB", size, colour)
    if black_box:
        image.paste((0, 0, 0), (40, 40, 400, 90))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _small_front() -> bytes:
    # One plain face, made once: rendering a face per job is the demo's business, not the tests'.
    out = io.BytesIO()
    Image.new("RGB", (1016, 648), (180, 210, 230)).save(out, format="PNG")
    return out.getvalue()


SMALL_FRONT = _small_front()


def _bw_front() -> bytes:
    # A 1-bit card face: valid, and ten times quicker to decode than a colour one (bursts are about the
    # broker and the commits, not about inflating two megabytes of pixels per job).
    image = Image.new("1", (1016, 648), 1)
    ImageDraw.Draw(image).text((40, 40), "KARTU CONTOH", fill=0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


BW_FRONT_B64 = base64.b64encode(_bw_front()).decode()
