"""The fast face check refuses exactly what Pillow's full decode refuses: mutated PNGs of every kind, both checks."""

from __future__ import annotations

import io
import random
import sys

import pytest
from PIL import Image
from png_surgery import join, split, with_raw

from kartud.rules.png_structure import decodes_surely
from kartud.service import faces

MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")


def _face(mode: str, rng: random.Random, dpi: bool) -> bytes:
    image = Image.new("RGB", (37, 23), (200, 200, 200))
    for _ in range(20):
        image.putpixel((rng.randrange(37), rng.randrange(23)), tuple(rng.randrange(256) for _ in range(3)))
    image = image.convert(mode) if mode != "I;16" else image.convert("L").convert("I;16")
    out = io.BytesIO()
    image.save(out, format="PNG", **({"dpi": (300, 300)} if dpi else {}))
    return out.getvalue()


def _mutants(data: bytes, rng: random.Random):
    """Damage of every kind the checks look at: bytes flipped with and without the CRC made right again,
    scanlines cut, grown or given an unknown filter, chunks dropped, doubled or moved, tails added."""
    for _ in range(6):
        flipped = bytearray(data)
        flipped[rng.randrange(8, len(data))] ^= 1 << rng.randrange(8)
        yield bytes(flipped)
    chunks = split(data)
    for _ in range(6):                      # a byte changed inside a chunk, its CRC made right again
        index = rng.randrange(len(chunks) - 1)
        name, body = chunks[index]
        if body:
            body = bytearray(body)
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
            yield join(chunks[:index] + [(name, bytes(body))] + chunks[index + 1:])
    yield data[:rng.randrange(8, len(data))]
    yield data + b"\0"
    yield with_raw(data, lambda raw: raw[:-1])
    yield with_raw(data, lambda raw: raw + b"\0")
    yield with_raw(data, lambda raw: raw.__setitem__(0, 5) or raw)
    yield with_raw(data, lambda raw: raw.__setitem__(len(raw) - 1, 255) or raw)
    yield join([chunk for chunk in chunks if chunk[0] != b"IDAT"])
    yield join(chunks[:1] + [(b"tEXt", b"k\0v")] + chunks[1:])
    yield join(chunks[:1] + [(b"PLTE", b"\0\0\0")] + chunks[1:])
    yield join(chunks[:1] + [(b"gAMA", b"\0\0")] + chunks[1:])
    yield join([chunks[-2]] + chunks[:-2] + chunks[-1:])
    idat = [body for name, body in chunks if name == b"IDAT"][0]
    cut = rng.randrange(1, len(idat))
    yield join([c for c in chunks if c[0] != b"IDAT"][:-1] + [(b"IDAT", idat[:cut]), (b"IDAT", idat[cut:])]
                + chunks[-1:])


def _pillow_only(data: bytes, monkeypatch) -> str | None:
    with monkeypatch.context() as patch:
        patch.setattr(faces, "decodes_surely", lambda data: False)
        return faces.png_problem(data)


@pytest.mark.parametrize("mode", MODES)
def test_every_plain_face_takes_the_fast_way_and_every_mutant_gets_the_full_decode_s_answer(mode, monkeypatch):
    rng = random.Random(f"png-{mode}")
    fast_refusals = 0
    for dpi in (False, True):
        face = _face(mode, rng, dpi)
        assert decodes_surely(face), f"a plain {mode} face needs Pillow"
        assert faces.png_problem(face) is None
        for mutant in _mutants(face, rng):
            today = _pillow_only(mutant, monkeypatch)
            assert faces.png_problem(mutant) == today, f"{mode}: {mutant!r:.80}"
            assert not decodes_surely(mutant) or today is None
            fast_refusals += today is not None
    assert fast_refusals >= 10


def test_without_zlib_ng_the_stdlib_inflate_gives_the_same_answers(monkeypatch):
    rng = random.Random("no-zlib-ng")
    face = _face("RGB", rng, False)
    cases = [face, *_mutants(face, rng)]
    answers = [decodes_surely(case) for case in cases]
    monkeypatch.setitem(sys.modules, "zlib_ng", None)         # import fails: zlib's inflate is used
    assert [decodes_surely(case) for case in cases] == answers
    assert answers[0] and not all(answers)


def test_an_interlaced_or_unusual_face_is_left_to_pillow():
    data = _face("RGB", random.Random(1), False)
    chunks = split(data)
    header = bytearray(chunks[0][1])
    header[12] = 1                                              # Adam7: decoded by Pillow, not here
    assert not decodes_surely(join([(b"IHDR", bytes(header))] + chunks[1:]))
    assert not decodes_surely(join(chunks[:1] + [(b"tIME", b"\x07\xea\x0c\x01\0\0\0")] + chunks[1:]))
    assert faces.png_problem(join(chunks[:1] + [(b"tIME", b"\x07\xea\x0c\x01\0\0\0")] + chunks[1:])) is None
