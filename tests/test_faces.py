"""A face's full decode is the service's (Pillow); the rules check its header first and call the decoder only then."""

from __future__ import annotations

import base64
import io
import random
import struct
import zlib

import pytest

from kartud.rules import jobs as J
from kartud.rules.errors import CommandError
from kartud.room.fake_people import fake_job
from kartud.service.faces import png_problem

B64 = lambda data: base64.b64encode(data).decode()  # noqa: E731


def _header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk declaring ``width`` x ``height``, and nothing after."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 200, 200)).save(out, format="PNG")
    return out.getvalue()


def submission(**fields) -> dict:
    job = fake_job(random.Random(1), 1, "KIA", job_id="j-1", record_id="r-1", front_png=_png(1016, 648))
    job["nik"] = "3574014107900001"
    job.update(fields)
    return job


class Decoder:
    """Records what it was asked to decode and answers ``answer``."""

    def __init__(self, answer: str | None = None):
        self.answer, self.seen = answer, []

    def __call__(self, data: bytes) -> str | None:
        self.seen.append(data)
        return self.answer


def refused(payload, decoder) -> list[dict]:
    with pytest.raises(CommandError) as caught:
        J.validate_submission(payload, ["KIA"], decoder)
    return caught.value.details["problems"]


def test_the_service_decoder_reads_a_whole_png_and_refuses_a_cut_one():
    whole = _png(1016, 648)
    assert png_problem(whole) is None
    assert png_problem(whole[:len(whole) // 2]) == "is not a readable PNG image (damaged or truncated data)"
    assert png_problem(_header_only(1016, 648)) == "is not a readable PNG image (damaged or truncated data)"


@pytest.mark.parametrize("face", [_header_only(100000, 100000), _header_only(1016, 649), b"GIF89a" + bytes(30)])
def test_a_face_of_the_wrong_size_or_kind_never_reaches_the_decoder(face):
    decoder = Decoder()
    found = refused(submission(front_png=B64(face)), decoder)
    assert [p["field"] for p in found] == ["front_png"]
    assert decoder.seen == []


def test_each_card_sized_face_is_decoded_once_and_its_problem_reported():
    front, back = _png(1016, 648), _png(648, 1016)
    decoder = Decoder("is not a readable PNG image (damaged or truncated data)")
    found = refused(submission(front_png=B64(front), back_png=B64(back)), decoder)
    assert decoder.seen == [front, back]
    assert found == [{"field": name, "problem": decoder.answer} for name in ("front_png", "back_png")]


def test_a_face_that_decodes_is_accepted():
    decoder = Decoder(None)
    job = J.validate_submission(submission(), ["KIA"], decoder)
    assert decoder.seen == [job.front_png]


def test_the_rules_alone_check_the_header_only():
    """Without a decoder (faces from a trusted renderer) a card-sized header passes; the daemon always passes one."""
    job = J.validate_submission(submission(front_png=B64(_header_only(1016, 648))), ["KIA"])
    assert job.front_png == _header_only(1016, 648)
