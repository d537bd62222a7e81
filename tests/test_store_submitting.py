"""Submitting to the store: a job and its view, resubmissions, conflicts, and one live job per record."""

from __future__ import annotations

import sqlite3

import pytest
from clock_fixtures import START
from sample_jobs import CARD_TYPES, new_job, payload
from store_checks import audit_rows, bring_to, dump

from kartud.ledger.store import Store
from kartud.rules import jobs as J
from kartud.rules.clock import rfc3339
from kartud.rules.errors import CommandError
from kartud.rules.jobs import validate_submission


def test_submit_then_get(store, manual_clock):
    job = new_job(1)
    view, resubmitted = store.submit_job(job)
    assert resubmitted is False
    assert view == store.get_job("j-0001")
    assert view["job_id"] == "j-0001"
    assert view["record_id"] == "PRR-9999-000001"
    assert view["card_type"] == "KTP_EL"
    assert view["state"] == J.QUEUED
    assert view["attempts"] == 0
    assert view["priority"] == 0
    assert view["nik_masked"] == J.mask_nik(job.nik)
    assert view["created_at"] == view["updated_at"] == rfc3339(START)
    assert view["printed_at"] is None and view["card_uid"] is None and view["batch_id"] is None
    assert set(view) == set(J.VIEW_FIELDS + J.VIEW_EXTENSIONS)
    assert store.queue_position("j-0001") == 1
    assert store.get_job("nope") is None
    assert store.queue_position("nope") is None
    assert store.counts()[J.QUEUED] == 1


def test_resubmitting_the_same_content_answers_the_existing_job(store, manual_clock):
    first, _ = store.submit_job(new_job(1))
    manual_clock.advance(30)
    again, resubmitted = store.submit_job(validate_submission(payload(1, request_id="retry-2"), CARD_TYPES))
    assert resubmitted is True
    assert again == first
    assert store.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1
    assert len(audit_rows(store)) == 1


def test_resubmitting_after_printing_answers_the_current_state(store):
    bring_to(store, new_job(1), J.PRINTED)
    view, resubmitted = store.submit_job(new_job(1))
    assert resubmitted is True
    assert view["state"] == J.PRINTED


@pytest.mark.parametrize("change", [{"priority": 3}, {"record_id": "PRR-OTHER-1"}, {"card_type": "KIA"}])
def test_same_job_id_with_different_content_is_a_conflict(store, change):
    store.submit_job(new_job(1))
    before = dump(store, "jobs", "audit")
    fields = dict(change)
    if fields.get("card_type") == "KIA":
        other = payload(1, "KIA")
    else:
        other = payload(1, **fields)
    with pytest.raises(CommandError) as caught:
        store.submit_job(validate_submission(other, CARD_TYPES))
    assert caught.value.code == "job_id_conflict"
    assert dump(store, "jobs", "audit") == before


@pytest.mark.parametrize("state", [J.QUEUED, J.PRINTING, J.PRINTED, J.IN_DOUBT])
def test_a_second_job_for_a_held_record_is_a_duplicate(store, state):
    holder = new_job(1)
    bring_to(store, holder, state)
    before = dump(store, "jobs", "audit", "blank_stock")
    second = new_job(2, record_id=holder.record_id)
    with pytest.raises(CommandError) as caught:
        store.submit_job(second)
    assert caught.value.code == "duplicate_record"
    assert caught.value.details == {"job_id": holder.job_id, "state": state}
    assert holder.record_id in caught.value.message
    assert holder.nik not in caught.value.message
    assert dump(store, "jobs", "audit", "blank_stock") == before


@pytest.mark.parametrize("state", [J.CANCELLED, J.FAILED, J.EXPIRED])
def test_a_record_whose_job_ended_without_a_card_may_be_submitted_again(store, state):
    holder = new_job(1)
    bring_to(store, holder, state)
    view, resubmitted = store.submit_job(new_job(2, record_id=holder.record_id))
    assert not resubmitted and view["state"] == J.QUEUED
    # ... and that new job now holds the record.
    with pytest.raises(CommandError) as caught:
        store.submit_job(new_job(3, record_id=holder.record_id))
    assert caught.value.code == "duplicate_record"


def _raw_insert(store: Store, job_id: str, record_id: str, state: str) -> None:
    store.conn.execute(
        "INSERT INTO jobs (job_id, record_id, card_type, nik_masked, content_sha256, state, created_at, updated_at)"
        " VALUES (?, ?, 'KTP_EL', '990101******0001', 'x', ?, '2026-11-27T01:00:00+00:00',"
        " '2026-11-27T01:00:00+00:00')", (job_id, record_id, state))


@pytest.mark.parametrize("held", [J.QUEUED, J.PRINTING, J.PRINTED, J.IN_DOUBT])
@pytest.mark.parametrize("new_state", [J.QUEUED, J.PRINTING, J.PRINTED, J.IN_DOUBT])
def test_the_database_itself_refuses_a_second_live_job_for_a_record(store, held, new_state):
    holder = new_job(1)
    bring_to(store, holder, held)
    with pytest.raises(sqlite3.IntegrityError):
        _raw_insert(store, "j-bypass", holder.record_id, new_state)
    assert store.get_job("j-bypass") is None


def test_the_database_allows_ended_jobs_beside_a_live_one(store):
    holder = new_job(1)
    store.submit_job(holder)
    for n, state in enumerate([J.FAILED, J.CANCELLED, J.EXPIRED]):
        _raw_insert(store, f"j-old-{n}", holder.record_id, state)
    assert store.conn.execute("SELECT COUNT(*) FROM jobs WHERE record_id = ?", (holder.record_id,)).fetchone()[0] == 4


def test_a_job_that_moves_back_into_a_holding_state_is_refused_by_the_index(store):
    """An UPDATE that would make two live jobs for one record fails too, not only an INSERT."""
    first = new_job(1)
    bring_to(store, first, J.CANCELLED)
    store.submit_job(new_job(2, record_id=first.record_id))
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute("UPDATE jobs SET state = 'queued' WHERE job_id = ?", (first.job_id,))
