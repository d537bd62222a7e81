"""The store's queue: priority then first in, what is next for a card type, expiry and cancelling."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from card_faces import SMALL_FRONT
from sample_jobs import CARD_TYPES, new_job
from store_checks import audit_rows, balanced, bring_to, dump

from kartud.rules import jobs as J
from kartud.rules.errors import CommandError


def test_queue_order_is_priority_then_first_in(store, manual_clock):
    priorities = {1: 0, 2: 5, 3: 0, 4: 9, 5: 5, 6: 0}
    for serial, priority in priorities.items():
        store.submit_job(new_job(serial, "KIA" if serial == 6 else "KTP_EL", priority=priority))
        manual_clock.advance(1)
    expected = ["j-0004", "j-0002", "j-0005", "j-0001", "j-0003", "j-0006"]
    assert [store.queue_position(j) for j in expected] == [1, 2, 3, 4, 5, 6]
    assert store.next_queued(CARD_TYPES)["job_id"] == "j-0004"
    assert store.next_queued(["KIA"])["job_id"] == "j-0006"
    # The print data waits in the personal-data file (claim hands it to the press).
    data = store.personal.job_data(store.next_queued(["KTP_EL"])["job_id"])
    assert data["front_png"] == SMALL_FRONT and data["chip_files"].keys() == {0x0101, 0x0102}
    # Positions close up as jobs leave the queue.
    store.receive_blanks("B-1", "KTP_EL", 5, None)
    store.claim("j-0004")
    store.cancel_job("j-0001")
    assert store.queue_position("j-0002") == 1
    assert store.queue_position("j-0003") == 3
    assert store.queue_position("j-0006") == 4
    assert [v["job_id"] for v in store.list_jobs()] == [f"j-{n:04d}" for n in (6, 5, 4, 3, 2, 1)]
    assert [v["job_id"] for v in store.list_jobs(J.QUEUED, limit=2)] == ["j-0006", "j-0005"]
    assert store.next_queued(["KIA"])["job_id"] == "j-0006"


def test_next_queued_is_none_when_nothing_fits(store):
    assert store.next_queued(CARD_TYPES) is None
    store.submit_job(new_job(1, "KIA"))
    assert store.next_queued(["KTP_EL"]) is None


def test_expire_due_expires_only_queued_jobs_past_not_after(store):
    store.receive_blanks("B-1", "KTP_EL", 5, None)
    due = "2026-11-27T10:00:00+07:00"  # 03:00 UTC
    store.submit_job(new_job(1, not_after=due))                          # queued, due: expires
    store.submit_job(new_job(2, not_after=due))                          # printing, due: stays
    store.submit_job(new_job(3, not_after="2026-11-28T10:00:00+07:00"))  # queued, not yet due
    store.submit_job(new_job(4))                                         # no not_after
    store.submit_job(new_job(5, not_after=due))                          # cancelled already
    store.claim("j-0002")
    store.cancel_job("j-0005")
    assert store.expire_due(datetime(2026, 11, 27, 2, 59, tzinfo=timezone.utc)) == []
    expired = store.expire_due(datetime(2026, 11, 27, 10, 0, 1, tzinfo=timezone(timedelta(hours=7))))
    assert [v["job_id"] for v in expired] == ["j-0001"]
    assert expired[0]["state"] == J.EXPIRED and expired[0]["reason"] == "not_after_passed"
    states = {v["job_id"]: v["state"] for v in store.list_jobs()}
    assert states == {"j-0001": J.EXPIRED, "j-0002": J.PRINTING, "j-0003": J.QUEUED, "j-0004": J.QUEUED,
                      "j-0005": J.CANCELLED}
    assert store.expire_due(datetime(2026, 11, 27, 4, 0, tzinfo=timezone.utc)) == []
    balanced(store)


def test_cancel(store):
    with pytest.raises(CommandError) as caught:
        store.cancel_job("j-missing")
    assert caught.value.code == "not_found"
    store.submit_job(new_job(1))
    view = store.cancel_job("j-0001")
    assert view["state"] == J.CANCELLED and view["reason"] == "cancelled"
    audit_count = len(audit_rows(store))
    assert store.cancel_job("j-0001") == view  # idempotent, and audits nothing more
    assert len(audit_rows(store)) == audit_count
    assert store.queue_position("j-0001") is None


@pytest.mark.parametrize("state", [J.PRINTING, J.PRINTED, J.IN_DOUBT, J.FAILED, J.EXPIRED])
def test_only_queued_jobs_can_be_cancelled(store, state):
    bring_to(store, new_job(1), state)
    before = dump(store, "jobs", "audit", "blank_stock")
    with pytest.raises(CommandError) as caught:
        store.cancel_job("j-0001")
    assert caught.value.code == "not_cancellable"
    assert caught.value.details == {"state": state}
    assert dump(store, "jobs", "audit", "blank_stock") == before
