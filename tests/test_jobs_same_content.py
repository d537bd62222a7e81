"""A resubmitted job is compared as the box holds it, defaults applied, so a written-out default is the same job."""

from __future__ import annotations

import hashlib
import json

import pytest
from command_desk import Desk
from sample_jobs import CARD_TYPES, new_job, payload

from kartud.rules.errors import CommandError
from kartud.rules.jobs import validate_submission


def _without(job: dict, *names: str) -> dict:
    return {k: v for k, v in job.items() if k not in names}


SAME = {
    "priority 0 written out": (lambda j: _without(j, "priority"), lambda j: {**j, "priority": 0}),
    "optional fields as null": (lambda j: j, lambda j: {**j, "back_png": None, "not_after": None, "reprint": None}),
    "the same instant in another offset": (lambda j: {**j, "not_after": "2026-12-01T00:00:00+07:00"},
                                           lambda j: {**j, "not_after": "2026-11-30T17:00:00Z"}),
    "chip file ids in either case": (lambda j: {**j, "chip": {"files": {"0A01": j["chip"]["files"]["0101"]}}},
                                     lambda j: {**j, "chip": {"files": {"0a01": j["chip"]["files"]["0101"]}}}),
    "transport fields": (lambda j: j, lambda j: {**j, "request_id": "r-2", "ts": "2026-11-27T08:00:00+07:00"}),
}


@pytest.mark.parametrize("first, second", SAME.values(), ids=SAME.keys())
def test_the_same_job_written_another_way_is_a_resubmission(store, first, second):
    view, resubmitted = store.submit_job(validate_submission(first(payload(1)), CARD_TYPES))
    assert not resubmitted
    again, resubmitted = store.submit_job(validate_submission(second(payload(1)), CARD_TYPES))
    assert resubmitted and again == view


@pytest.mark.parametrize("change", [{"priority": 1}, {"not_after": "2026-12-01T00:00:01+07:00"},
                                    {"reprint": {"of_record_id": "PRR-1", "reason": "lost"}}])
def test_a_default_changed_is_other_content(store, change):
    store.submit_job(new_job(1))
    with pytest.raises(CommandError) as caught:
        store.submit_job(validate_submission(payload(1, **change), CARD_TYPES))
    assert caught.value.code == "job_id_conflict"


def test_a_job_stored_with_the_hash_of_its_payload_as_sent_is_still_recognised(store):
    # Before jobs were compared with defaults applied, the store kept the hash of the payload as sent.
    sent = payload(1)
    store.submit_job(validate_submission(sent, CARD_TYPES))
    canonical = json.dumps(sent, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    store.conn.execute("UPDATE jobs SET content_sha256 = ? WHERE job_id = 'j-0001'",
                       (hashlib.sha256(canonical.encode()).hexdigest(),))
    _, resubmitted = store.submit_job(validate_submission({**sent, "request_id": "r-9"}, CARD_TYPES))
    assert resubmitted
    with pytest.raises(CommandError) as caught:       # the payload's hash is made only now, and differs
        store.submit_job(validate_submission({**sent, "priority": 3}, CARD_TYPES))
    assert caught.value.code == "job_id_conflict"


def test_the_office_gets_resubmitted_not_a_conflict(store):
    desk = Desk(store)
    desk.ask("job/submit", _without(payload(1), "priority"))
    answer = desk.ask("job/submit", payload(1))
    assert answer["status"] == "ok" and answer["data"]["resubmitted"] is True
