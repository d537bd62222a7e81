"""Job payloads for the validation tests: a good one to vary, its faces, and what validation answers a bad one."""

from __future__ import annotations

import base64
import io
import random

import pytest
from PIL import Image

from kartud.room.fake_people import fake_job
from kartud.rules import jobs as J
from kartud.rules.errors import CommandError
from kartud.service.faces import png_problem


BOTH = ["KTP_EL", "KIA"]


def plain_png(width: int, height: int) -> bytes:
    """A grey PNG of ``width`` x ``height`` pixels."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 200, 200)).save(out, format="PNG")
    return out.getvalue()


LANDSCAPE = plain_png(1016, 648)
PORTRAIT = plain_png(648, 1016)
B64 = lambda data: base64.b64encode(data).decode()  # noqa: E731


def good(card_type: str = "KTP_EL", serial: int = 1, **fields) -> dict:
    """A valid job/submit payload (a woman's NIK, a landscape face); ``fields`` replace or add to it."""
    job = fake_job(random.Random(serial), serial, card_type, job_id=f"j-{serial:04d}",
                   record_id=f"PRR-9999-{serial:06d}", front_png=LANDSCAPE)
    job["nik"] = "3574014107900001"
    job.update(fields)
    return job


def refusal(payload, card_types=BOTH) -> CommandError:
    """The CommandError validation refuses ``payload`` with (it must refuse it)."""
    with pytest.raises(CommandError) as caught:
        J.validate_submission(payload, card_types, png_problem)
    return caught.value


def problems(payload, card_types=BOTH) -> list[dict]:
    """The problems listed when ``payload`` is refused as invalid, each a field and what is wrong with it."""
    error = refusal(payload, card_types)
    assert error.code == "invalid_payload"
    found = error.details["problems"]
    for p in found:
        assert set(p) == {"field", "problem"} and p["field"] and p["problem"]
    return found


def fields_of(payload) -> list[str]:
    return [p["field"] for p in problems(payload)]
