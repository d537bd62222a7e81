"""A not_after at the ends of the calendar, or not RFC 3339, is refused at validation, never in a group commit."""

from __future__ import annotations

import asyncio
import json

import pytest
from command_desk import Desk
from sample_jobs import CARD_TYPES, payload

from kartud.rules.errors import CommandError
from kartud.rules.jobs import validate_submission
from kartud.service.intake import Intake
from kartud.service.mqtt_link import IncomingRequest

FAR = ["9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59.999999-00:01", "0001-01-01T00:00:00+00:01"]
NOT_RFC3339 = ["20261201T000000+0700", "2026-W49-3T00:00:00+07:00", "2026-12-01T00:00+07:00", "2026-12-01",
               "2026-12-01T00:00:00+07:00:30"]


@pytest.mark.parametrize("not_after", FAR + NOT_RFC3339)
def test_validation_refuses_it_naming_not_after(not_after):
    with pytest.raises(CommandError) as caught:
        validate_submission(payload(1, not_after=not_after), CARD_TYPES)
    assert caught.value.code == "invalid_payload"
    assert [p["field"] for p in caught.value.details["problems"]] == ["not_after"]


@pytest.mark.parametrize("not_after", ["9999-12-31T11:59:59+00:00", "9999-12-31T23:59:59Z",
                                       "2026-12-01T00:00:00.5+07:00", "2026-12-01t00:00:00+07:00",
                                       "2026-12-01 00:00:00z"])
def test_the_latest_time_that_fits_is_accepted(store, not_after):
    store.submit_job(validate_submission(payload(1, not_after=not_after), CARD_TYPES))
    assert store.next_expiry() is not None


def _request(body: dict, mid: int) -> IncomingRequest:
    return IncomingRequest(command="job/submit", payload=json.dumps(body).encode(), retain=False,
                           response_topic=None, correlation_data=None, mid=mid, qos=1)


def test_a_batch_with_one_far_future_job_commits_the_others(store):
    desk = Desk(store)
    batch = [_request(payload(1), 1), _request(payload(2, not_after=FAR[0]), 2), _request(payload(3), 3)]
    answers = asyncio.run(Intake(desk).answer_batch(batch))
    assert [a["status"] for a in answers] == ["ok", "error", "ok"]
    assert [p["field"] for p in answers[1]["error"]["details"]["problems"]] == ["not_after"]
    assert [r[0] for r in store.conn.execute("SELECT job_id FROM jobs ORDER BY seq")] == ["j-0001", "j-0003"]
