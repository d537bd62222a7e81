"""Through the real daemon: plain faces pass the fast check, unusual ones Pillow, and damage with right CRCs is refused."""

from __future__ import annotations

import base64

import pytest
from card_faces import SMALL_FRONT
from png_surgery import join, split, with_raw

REFUSED = "is not a readable PNG image (damaged or truncated data)"


def _with_text_chunk(data: bytes) -> bytes:
    chunks = split(data)
    return join(chunks[:1] + [(b"tEXt", b"Comment\0made elsewhere")] + chunks[1:])


def _damaged_deflate(data: bytes) -> bytes:
    chunks = split(data)
    index = next(n for n, (name, _) in enumerate(chunks) if name == b"IDAT")
    body = bytearray(chunks[index][1])
    body[len(body) // 2] ^= 0xFF                    # the CRC is made right again by join(): only an inflate sees it
    return join(chunks[:index] + [(b"IDAT", bytes(body))] + chunks[index + 1:])


@pytest.mark.parametrize("face", [SMALL_FRONT, _with_text_chunk(SMALL_FRONT)], ids=["plain", "with_a_text_chunk"])
def test_a_sound_face_is_queued_whichever_check_reads_it(room, face):
    room.start()
    answer = room.submit(room.job(front_png=base64.b64encode(face).decode()))
    assert answer["status"] == "ok", answer
    assert room.query("SELECT count(*) FROM jobs WHERE state = 'queued'") == [(1,)]


@pytest.mark.parametrize("damage", [
    _damaged_deflate,
    lambda data: with_raw(data, lambda raw: raw.__setitem__(0, 7) or raw),          # an unknown scanline filter
    lambda data: with_raw(data, lambda raw: raw[:-100]),                             # scanlines missing
    lambda data: _damaged_deflate(_with_text_chunk(data)),                           # unusual and damaged
], ids=["deflate", "filter", "short", "unusual"])
def test_a_face_damaged_behind_right_crcs_is_refused_naming_the_field(room, damage):
    room.start()
    answer = room.submit(room.job(front_png=base64.b64encode(damage(SMALL_FRONT)).decode()))
    assert answer["status"] == "error" and answer["error"]["code"] == "invalid_payload", answer
    assert {"field": "front_png", "problem": REFUSED} in answer["error"]["details"]["problems"]
    assert room.query("SELECT count(*) FROM jobs") == [(0,)]
