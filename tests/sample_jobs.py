"""Sample jobs for the store tests: a job/submit payload and its validated job, the same content for the same serial."""

from __future__ import annotations

import random

from card_faces import SMALL_FRONT

from kartud.room.fake_people import fake_job
from kartud.rules import jobs as J
from kartud.rules.jobs import validate_submission

CARD_TYPES = ["KTP_EL", "KIA"]


def payload(serial: int, card_type: str = "KTP_EL", **fields) -> dict:
    """A job/submit payload; the same serial (and fields) always gives the same content."""
    job = fake_job(random.Random(serial), serial, card_type, job_id=f"j-{serial:04d}",
                   record_id=f"PRR-9999-{serial:06d}", front_png=SMALL_FRONT)
    job.update(fields)
    return job


def new_job(serial: int, card_type: str = "KTP_EL", **fields) -> J.NewJob:
    return validate_submission(payload(serial, card_type, **fields), CARD_TYPES)
