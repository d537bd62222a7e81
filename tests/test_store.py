"""The store: opening and refusing files, the job lifecycle, the ledger, blank accounting and the audit chain."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kartud.rules import jobs as J
from kartud.ledger import schema
from kartud.rules.clock import ManualClock, rfc3339
from kartud.rules.errors import CommandError, StorageError
from kartud.room.fake_people import fake_job
from kartud.rules.jobs import validate_submission
from kartud.ledger.store import OutOfBlanks, Store

CARD_TYPES = ["KTP_EL", "KIA"]
START = datetime(2026, 11, 27, 1, 0, tzinfo=timezone.utc)  # 08:00 in Jakarta


def _small_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1016, 648), (180, 210, 230)).save(out, format="PNG")
    return out.getvalue()


SMALL_PNG = _small_png()


def payload(serial: int, card_type: str = "KTP_EL", **fields) -> dict:
    """A job/submit payload; the same serial (and fields) always gives the same content."""
    job = fake_job(random.Random(serial), serial, card_type, job_id=f"j-{serial:04d}",
                   record_id=f"PRR-9999-{serial:06d}", front_png=SMALL_PNG)
    job.update(fields)
    return job


def new_job(serial: int, card_type: str = "KTP_EL", **fields) -> J.NewJob:
    return validate_submission(payload(serial, card_type, **fields), CARD_TYPES)


@pytest.fixture
def clock():
    return ManualClock(START)


@pytest.fixture
def store(tmp_path, clock):
    store = Store(str(tmp_path / "kartud.db"), clock)
    store.open()
    yield store
    store.close()


def balanced(store: Store) -> None:
    """The blank equation, per card type, and no negative count."""
    for card_type, s in store.stock().items():
        assert s["received"] + s["adjusted"] == s["in_stock"] + s["reserved"] + s["printed"] + s["spoiled"], card_type
        for name in ("received", "in_stock", "reserved", "printed", "spoiled"):
            assert s[name] >= 0, (card_type, name, s)


def dump(store: Store, *tables: str) -> dict[str, list[tuple]]:
    return {t: [tuple(r) for r in store.conn.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in tables}


def audit_rows(store: Store) -> list[sqlite3.Row]:
    return store.conn.execute("SELECT * FROM audit ORDER BY id").fetchall()


def bring_to(store: Store, job: J.NewJob, state: str) -> dict:
    """Submit ``job`` and move it to ``state`` through the store's own paths."""
    store.submit_job(job)
    if state == J.QUEUED:
        pass
    elif state == J.CANCELLED:
        store.cancel_job(job.job_id)
    elif state == J.EXPIRED:
        store.conn.execute("UPDATE jobs SET not_after = ? WHERE job_id = ?", (rfc3339(START), job.job_id))
        store.expire_due(START + timedelta(seconds=1))
    else:
        store.receive_blanks(f"B-for-{job.job_id}", job.card_type, 1, None)
        store.claim(job.job_id)
        if state == J.PRINTED:
            store.mark_printed(job.job_id, "04AABBCCDDEEFF")
        elif state == J.IN_DOUBT:
            store.recover_in_doubt()
        elif state == J.FAILED:
            store.mark_spoiled(job.job_id, "encode_failed", max_attempts=1)
    view = store.get_job(job.job_id)
    assert view["state"] == state
    return view


# -- opening ---------------------------------------------------------------------------------------


def test_open_creates_a_wal_database_with_full_sync_and_foreign_keys(tmp_path, clock):
    path = tmp_path / "sub" / "dir" / "kartud.db"
    store = Store(str(path), clock)
    store.open()
    try:
        assert path.exists()
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert set(store.stock()) == {"KTP_EL", "KIA"}
    finally:
        store.close()
    # WAL is a property of the file: an outside reader sees it too.
    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_reopening_keeps_the_data_and_the_schema(tmp_path, clock):
    path = str(tmp_path / "kartud.db")
    store = Store(path, clock)
    store.open()
    store.submit_job(new_job(1))
    store.receive_blanks("B-1", "KTP_EL", 5, None)
    store.close()
    assert store.conn is None
    for _ in range(2):
        again = Store(path, clock)
        again.open()
        try:
            assert again.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
            assert again.get_job("j-0001")["state"] == J.QUEUED
            assert again.stock()["KTP_EL"]["in_stock"] == 5
            assert again.verify_audit_chain() == 2
        finally:
            again.close()


def test_migrate_reports_versions(tmp_path):
    conn = sqlite3.connect(str(tmp_path / "m.db"), isolation_level=None)
    try:
        assert schema.migrate(conn) == (0, schema.SCHEMA_VERSION)
        assert schema.migrate(conn) == (schema.SCHEMA_VERSION, schema.SCHEMA_VERSION)
    finally:
        conn.close()


def test_a_database_from_a_newer_kartud_is_refused(tmp_path, clock):
    path = str(tmp_path / "kartud.db")
    store = Store(path, clock)
    store.open()
    store.close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    newer = Store(path, clock)
    with pytest.raises(StorageError, match="newer") as caught:
        newer.open()
    assert path in str(caught.value)
    assert newer.conn is None
    # Nothing was changed by the refusal.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION + 1
    finally:
        conn.close()


def _real_db_with_pages(path: str, clock) -> int:
    store = Store(path, clock)
    store.open()
    store.receive_blanks("B-1", "KTP_EL", 50, None)
    for serial in range(1, 13):
        store.submit_job(new_job(serial))
    store.close()  # the last connection closes: the WAL is checkpointed into the file
    assert not os.path.exists(path + "-wal") or os.path.getsize(path + "-wal") == 0
    page_size = 4096
    size = os.path.getsize(path)
    assert size >= 8 * page_size, size
    return size


@pytest.mark.parametrize("where", [0.25, 0.5, 0.75])
def test_a_corrupted_database_fails_open_with_storage_error(tmp_path, clock, where):
    path = str(tmp_path / "kartud.db")
    size = _real_db_with_pages(path, clock)
    page_size = 4096
    start = max(page_size, int(size * where) // page_size * page_size)
    garbage = random.Random(int(where * 100)).randbytes(2 * page_size)
    with open(path, "r+b") as handle:
        handle.seek(start)
        handle.write(garbage)
    broken = Store(path, clock)
    with pytest.raises(StorageError) as caught:
        broken.open()
    assert path in str(caught.value)
    assert broken.conn is None


def test_a_file_that_is_not_a_database_fails_open_with_storage_error(tmp_path, clock):
    path = tmp_path / "kartud.db"
    path.write_bytes(b"this is a shopping list, not a database\n" * 200)
    with pytest.raises(StorageError):
        Store(str(path), clock).open()


# -- submitting ------------------------------------------------------------------------------------


def test_submit_then_get(store, clock):
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
    assert set(view) == set(J.VIEW_FIELDS)
    assert store.queue_position("j-0001") == 1
    assert store.get_job("nope") is None
    assert store.queue_position("nope") is None
    assert store.counts()[J.QUEUED] == 1


def test_resubmitting_the_same_content_answers_the_existing_job(store, clock):
    first, _ = store.submit_job(new_job(1))
    clock.advance(30)
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


# -- append-only tables and the blank CHECK ------------------------------------------------------


@pytest.mark.parametrize("statement", [
    "UPDATE printed_records SET card_uid = 'FFFF'",
    "UPDATE printed_records SET record_id = 'PRR-forged'",
    "DELETE FROM printed_records",
    "UPDATE audit SET detail = '{}'",
    "UPDATE audit SET hash = 'x' WHERE id = 1",
    "DELETE FROM audit",
    "DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)",
])
def test_the_ledger_and_the_audit_log_are_append_only(store, statement):
    bring_to(store, new_job(1), J.PRINTED)
    before = dump(store, "printed_records", "audit")
    assert before["printed_records"] and before["audit"]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.conn.execute(statement)
    assert dump(store, "printed_records", "audit") == before


@pytest.mark.parametrize("statement", [
    "UPDATE blank_stock SET in_stock = in_stock + 1 WHERE card_type = 'KTP_EL'",
    "UPDATE blank_stock SET printed = printed + 1, reserved = reserved + 1 WHERE card_type = 'KTP_EL'",
    "UPDATE blank_stock SET received = received - 1 WHERE card_type = 'KIA'",
    "UPDATE blank_stock SET in_stock = -1, adjusted = adjusted - 11 WHERE card_type = 'KTP_EL'",
    "UPDATE blank_stock SET in_stock = in_stock - 11, reserved = reserved + 11 WHERE card_type = 'KTP_EL'",
])
def test_blank_stock_refuses_a_broken_equation_or_negative_stock(store, statement):
    store.receive_blanks("B-1", "KTP_EL", 10, None)
    before = store.stock()
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute(statement)
    assert store.stock() == before


def test_blank_stock_allows_a_balanced_adjustment(store):
    store.receive_blanks("B-1", "KTP_EL", 10, None)
    store.conn.execute("UPDATE blank_stock SET in_stock = in_stock - 2, adjusted = adjusted - 2"
                       " WHERE card_type = 'KTP_EL'")
    assert store.stock()["KTP_EL"]["in_stock"] == 8
    balanced(store)


# -- claiming and the paths of a card ---------------------------------------------------------------


def test_claim_without_stock_raises_and_changes_nothing(store):
    store.submit_job(new_job(1))
    store.receive_blanks("B-KIA", "KIA", 3, None)  # stock of the other type does not help
    tables = ("jobs", "blank_stock", "blank_movements", "audit", "blank_batches")
    before = dump(store, *tables)
    with pytest.raises(OutOfBlanks):
        store.claim("j-0001")
    assert dump(store, *tables) == before
    assert store.get_job("j-0001")["state"] == J.QUEUED


def test_claim_then_printed(store, clock):
    store.receive_blanks("B-1", "KTP_EL", 2, None)
    store.submit_job(new_job(1))
    balanced(store)
    clock.advance(60)
    claimed = store.claim("j-0001")
    assert claimed["state"] == J.PRINTING and claimed["step"] == "feeding"
    assert claimed["attempts"] == 1 and claimed["batch_id"] == "B-1"
    assert store.stock()["KTP_EL"] == {"received": 2, "adjusted": 0, "in_stock": 1, "reserved": 1, "printed": 0,
                                       "spoiled": 0}
    assert store.queue_position("j-0001") is None
    balanced(store)
    for step in J.STEPS:
        assert store.set_step("j-0001", step)["step"] == step
    clock.advance(60)
    view = store.mark_printed("j-0001", "04A1B2C3D4E5F6")
    assert view["state"] == J.PRINTED and view["step"] is None
    assert view["printed_at"] == rfc3339(START + timedelta(seconds=120))
    assert view["card_uid"] == "04A1B2C3D4E5F6" and view["batch_id"] == "B-1"
    ledger = store.conn.execute("SELECT * FROM printed_records").fetchall()
    assert [dict(r) for r in ledger] == [{"record_id": "PRR-9999-000001", "job_id": "j-0001", "card_type": "KTP_EL",
                                          "printed_at": view["printed_at"], "card_uid": "04A1B2C3D4E5F6",
                                          "batch_id": "B-1"}]
    stock = store.stock()["KTP_EL"]
    assert (stock["in_stock"], stock["reserved"], stock["printed"], stock["spoiled"]) == (1, 0, 1, 0)
    balanced(store)
    kinds = [r["kind"] for r in store.conn.execute("SELECT kind FROM blank_movements ORDER BY id")]
    assert kinds == ["received", "reserved", "printed"]
    assert [r["kind"] for r in audit_rows(store)] == ["blanks_received", "job_submitted", "job_claimed"] + \
        ["job_step"] * 4 + ["job_printed"]
    # A printed job cannot be printed or claimed again.
    with pytest.raises(J.IllegalTransition):
        store.mark_printed("j-0001", None)
    with pytest.raises(J.IllegalTransition):
        store.claim("j-0001")
    assert store.stock()["KTP_EL"] == stock
    assert len(store.conn.execute("SELECT * FROM printed_records").fetchall()) == 1


def test_spoiled_cards_requeue_until_the_last_attempt_fails(store):
    store.receive_blanks("B-1", "KTP_EL", 10, None)
    store.submit_job(new_job(1))
    for attempt in (1, 2, 3):
        claimed = store.claim("j-0001")
        assert claimed["attempts"] == attempt
        view = store.mark_spoiled("j-0001", "encode_failed", max_attempts=3)
        assert view["reason"] == "encode_failed"
        assert view["state"] == (J.QUEUED if attempt < 3 else J.FAILED)
        stock = store.stock()["KTP_EL"]
        assert (stock["in_stock"], stock["reserved"], stock["spoiled"]) == (10 - attempt, 0, attempt)
        balanced(store)
    assert store.conn.execute("SELECT COUNT(*) FROM printed_records").fetchone()[0] == 0
    reasons = [r[0] for r in store.conn.execute("SELECT reason FROM blank_movements WHERE kind = 'spoiled'")]
    assert reasons == ["encode_failed"] * 3
    with pytest.raises(J.IllegalTransition):
        store.claim("j-0001")
    balanced(store)


def test_releasing_a_claim_returns_the_blank_and_the_attempt(store):
    store.receive_blanks("B-1", "KTP_EL", 1, None)
    store.submit_job(new_job(1))
    store.claim("j-0001")
    assert store.conn.execute("SELECT remaining FROM blank_batches").fetchone()[0] == 0
    view = store.release_claim("j-0001", "feeder_empty")
    assert view["state"] == J.QUEUED and view["attempts"] == 0 and view["batch_id"] is None
    assert view["reason"] == "feeder_empty"
    assert store.stock()["KTP_EL"] == {"received": 1, "adjusted": 0, "in_stock": 1, "reserved": 0, "printed": 0,
                                       "spoiled": 0}
    assert store.conn.execute("SELECT remaining FROM blank_batches").fetchone()[0] == 1
    assert store.queue_position("j-0001") == 1
    balanced(store)
    # Released as often as it likes, the job never runs out of attempts.
    for _ in range(5):
        store.claim("j-0001")
        store.release_claim("j-0001", "feeder_empty")
    assert store.claim("j-0001")["attempts"] == 1
    balanced(store)


def test_recovery_makes_a_printing_job_in_doubt_with_its_blank_still_reserved(store):
    store.receive_blanks("B-1", "KTP_EL", 3, None)
    for serial in (1, 2, 3):
        store.submit_job(new_job(serial))
    store.claim("j-0001")
    store.claim("j-0002")
    store.set_step("j-0002", "encoding")
    recovered = store.recover_in_doubt()
    assert [v["job_id"] for v in recovered] == ["j-0001", "j-0002"]
    for view in recovered:
        assert view["state"] == J.IN_DOUBT and view["reason"] == "interrupted" and view["step"] is None
    assert store.get_job("j-0003")["state"] == J.QUEUED
    stock = store.stock()["KTP_EL"]
    assert (stock["in_stock"], stock["reserved"]) == (1, 2)
    balanced(store)
    assert store.recover_in_doubt() == []  # nothing left printing
    # Never re-queued by itself: an in-doubt job is not next.
    assert store.next_queued(CARD_TYPES)["job_id"] == "j-0003"
    assert store.counts()[J.IN_DOUBT] == 2
    # An operator's "printed" puts it in the ledger and consumes the blank.
    store.mark_printed("j-0001", None)
    assert store.stock()["KTP_EL"]["printed"] == 1
    balanced(store)


# -- blanks ---------------------------------------------------------------------------------------


def test_receiving_a_batch_is_idempotent(store):
    assert store.receive_blanks("B-1", "KTP_EL", 100, "from Jakarta") == 100
    assert store.receive_blanks("B-1", "KTP_EL", 100, "from Jakarta") == 100
    assert store.receive_blanks("B-1", "KTP_EL", 100, None) == 100  # the note is not the batch
    assert store.stock()["KTP_EL"]["received"] == 100
    assert store.conn.execute("SELECT COUNT(*) FROM blank_movements").fetchone()[0] == 1
    assert [r["kind"] for r in audit_rows(store)] == ["blanks_received"]
    balanced(store)


@pytest.mark.parametrize("card_type, count", [("KTP_EL", 99), ("KIA", 100), ("KIA", 5)])
def test_receiving_a_batch_again_with_different_content_is_a_conflict(store, card_type, count):
    store.receive_blanks("B-1", "KTP_EL", 100, None)
    before = dump(store, "blank_stock", "blank_batches", "blank_movements", "audit")
    with pytest.raises(CommandError) as caught:
        store.receive_blanks("B-1", card_type, count, None)
    assert caught.value.code == "batch_conflict"
    assert dump(store, "blank_stock", "blank_batches", "blank_movements", "audit") == before


def test_batches_are_used_oldest_first(store, clock):
    store.receive_blanks("B-Z-old", "KTP_EL", 1, None)
    clock.advance(3600)
    store.receive_blanks("B-A-new", "KTP_EL", 2, None)
    clock.advance(3600)
    store.receive_blanks("B-KIA", "KIA", 1, None)
    for serial in (1, 2, 3):
        store.submit_job(new_job(serial))
    assert [store.claim(f"j-{n:04d}")["batch_id"] for n in (1, 2, 3)] == ["B-Z-old", "B-A-new", "B-A-new"]
    remaining = dict(store.conn.execute("SELECT batch_id, remaining FROM blank_batches").fetchall())
    assert remaining == {"B-Z-old": 0, "B-A-new": 0, "B-KIA": 1}


def test_batches_received_in_the_same_second_are_used_in_arrival_order(store):
    store.receive_blanks("B-Z", "KTP_EL", 1, None)
    store.receive_blanks("B-A", "KTP_EL", 1, None)
    store.submit_job(new_job(1))
    assert store.claim("j-0001")["batch_id"] == "B-Z"


def test_a_released_blank_goes_back_to_its_batch(store, clock):
    store.receive_blanks("B-old", "KTP_EL", 1, None)
    clock.advance(60)
    store.receive_blanks("B-new", "KTP_EL", 1, None)
    store.submit_job(new_job(1))
    store.claim("j-0001")
    store.release_claim("j-0001", "feeder_empty")
    assert store.claim("j-0001")["batch_id"] == "B-old"


# -- the queue ------------------------------------------------------------------------------------


def test_queue_order_is_priority_then_first_in(store, clock):
    priorities = {1: 0, 2: 5, 3: 0, 4: 9, 5: 5, 6: 0}
    for serial, priority in priorities.items():
        store.submit_job(new_job(serial, "KIA" if serial == 6 else "KTP_EL", priority=priority))
        clock.advance(1)
    expected = ["j-0004", "j-0002", "j-0005", "j-0001", "j-0003", "j-0006"]
    assert [store.queue_position(j) for j in expected] == [1, 2, 3, 4, 5, 6]
    assert store.next_queued(CARD_TYPES)["job_id"] == "j-0004"
    assert store.next_queued(["KIA"])["job_id"] == "j-0006"
    # next_queued carries the print data.
    row = store.next_queued(["KTP_EL"])
    assert row["front_png"] == SMALL_PNG and json.loads(row["chip_files"]).keys() == {"0101", "0102"}
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


# -- settings, audit ------------------------------------------------------------------------------


def test_set_setting(store):
    assert store.get_setting("paused") is None
    assert store.get_setting("paused", "no") == "no"
    assert store.set_setting("paused", "operator lunch", "queue_paused", {"reason": "lunch"}) is True
    assert store.get_setting("paused") == "operator lunch"
    assert store.set_setting("paused", "operator lunch", "queue_paused", {"reason": "lunch"}) is False
    assert store.set_setting("paused", "other", "queue_paused", {"reason": "other"}) is True
    assert store.get_setting("paused") == "other"
    assert store.set_setting("paused", None, "queue_resumed", {}) is True
    assert store.get_setting("paused") is None
    assert store.set_setting("paused", None, "queue_resumed", {}) is False
    assert [r["kind"] for r in audit_rows(store)] == ["queue_paused", "queue_paused", "queue_resumed"]
    assert store.verify_audit_chain() == 3


def test_audit_chain_counts_rows(store):
    assert store.verify_audit_chain() == 0
    bring_to(store, new_job(1), J.PRINTED)
    rows = audit_rows(store)
    assert store.verify_audit_chain() == len(rows) == 4
    assert rows[0]["prev_hash"] == "0" * 64
    for previous, row in zip(rows, rows[1:]):
        assert row["prev_hash"] == previous["hash"]


def test_audit_chain_detects_a_changed_detail(store):
    bring_to(store, new_job(1), J.PRINTED)
    store.submit_job(new_job(2))
    count = store.verify_audit_chain()
    store.conn.execute("DROP TRIGGER audit_no_update")
    store.conn.execute("UPDATE audit SET detail = ? WHERE id = 2", (json.dumps({"record_id": "PRR-forged"}),))
    with pytest.raises(StorageError, match="row 2"):
        store.verify_audit_chain()
    assert count == 5


def test_audit_chain_detects_a_rehashed_row(store):
    """Recomputing a forged row's own hash is not enough: the next row's link breaks."""
    import hashlib

    bring_to(store, new_job(1), J.PRINTED)
    store.conn.execute("DROP TRIGGER audit_no_update")
    row = audit_rows(store)[1]
    detail = json.dumps({"forged": True})
    digest = hashlib.sha256("\n".join([row["prev_hash"], row["at"], row["kind"], row["job_id"] or "",
                                       detail]).encode()).hexdigest()
    store.conn.execute("UPDATE audit SET detail = ?, hash = ? WHERE id = ?", (detail, digest, row["id"]))
    with pytest.raises(StorageError, match=f"row {row['id'] + 1}"):
        store.verify_audit_chain()


def test_no_full_nik_in_the_audit_or_views(store):
    niks = []
    store.receive_blanks("B-1", "KTP_EL", 10, None)
    store.receive_blanks("B-2", "KIA", 10, None)
    for serial, state in enumerate([J.QUEUED, J.PRINTED, J.IN_DOUBT, J.FAILED, J.CANCELLED, J.EXPIRED], start=1):
        job = new_job(serial, "KIA" if serial % 2 else "KTP_EL")
        niks.append(job.nik)
        bring_to(store, job, state)
    store.submit_job(new_job(50))
    store.claim("j-0050")
    niks.append(new_job(50).nik)
    texts = [r["detail"] for r in audit_rows(store)]
    texts += [json.dumps(v) for v in store.list_jobs(limit=1000)]
    texts += [json.dumps(store.get_job(f"j-{n:04d}")) for n in (1, 2, 3, 4, 5, 6, 50)]
    texts += [json.dumps([dict(r) for r in store.conn.execute("SELECT * FROM printed_records")])]
    texts += [json.dumps([dict(r) for r in store.conn.execute("SELECT * FROM blank_movements")])]
    for nik in niks:
        for text in texts:
            assert nik not in text
    for view in store.list_jobs(limit=1000):
        assert "nik" not in view
        assert view["nik_masked"][6:12] == "******"


# -- random operations ------------------------------------------------------------------------------


class StoreModel:
    """A store beside a model of what it should hold. Each operation checks the store's answer against the model;
    :meth:`check` checks the promises (run after every step)."""

    MAX_ATTEMPTS = 3

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kartud-store-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.clock = ManualClock(START)
        self.store = Store(os.path.join(self.dir, "kartud.db"), self.clock)
        self.store.open()
        self.serial = 0
        self.expected: dict[str, str] = {}     # job_id -> the state the model expects
        self.record_of: dict[str, str] = {}
        self.type_of: dict[str, str] = {}
        self.payloads: dict[str, dict] = {}
        self.batches: dict[str, tuple[str, int]] = {}
        self.model_stock = {t: 0 for t in CARD_TYPES}

    def close(self):
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def jobs_in(self, *states) -> list[str]:
        return sorted(j for j, s in self.expected.items() if s in states)

    def _held(self, record_id):
        return any(self.record_of[j] == record_id and s in J.HOLDS_RECORD for j, s in self.expected.items())

    def submit(self, card_type, priority, record, not_after):
        self.serial += 1
        fields = {"priority": priority, "record_id": f"PRR-{record}"}
        if not_after:
            fields["not_after"] = rfc3339(self.clock.now() + timedelta(minutes=10))
        body = payload(self.serial, card_type, **fields)
        job = validate_submission(body, CARD_TYPES)
        held = self._held(job.record_id)
        try:
            view, resubmitted = self.store.submit_job(job)
        except CommandError as exc:
            assert held and exc.code == "duplicate_record", exc.code
            return
        assert not held and not resubmitted and view["state"] == J.QUEUED
        self.expected[job.job_id] = J.QUEUED
        self.record_of[job.job_id], self.type_of[job.job_id], self.payloads[job.job_id] = \
            job.record_id, card_type, body

    def resubmit(self, job_id, change):
        body = dict(self.payloads[job_id], request_id="again")
        if change:
            body["priority"] = (body["priority"] + 1) % 10
        try:
            view, resubmitted = self.store.submit_job(validate_submission(body, CARD_TYPES))
        except CommandError as exc:
            assert change and exc.code == "job_id_conflict"
            return
        assert not change and resubmitted and view["state"] == self.expected[job_id]

    def claim(self, job_id):
        card_type = self.type_of[job_id]
        try:
            view = self.store.claim(job_id)
        except OutOfBlanks:
            assert self.model_stock[card_type] == 0
            return
        assert self.model_stock[card_type] > 0
        self.model_stock[card_type] -= 1
        assert view["state"] == J.PRINTING
        self.expected[job_id] = J.PRINTING

    def printed(self, job_id):
        assert self.store.mark_printed(job_id, "04" + "AB" * 6)["state"] == J.PRINTED
        self.expected[job_id] = J.PRINTED

    def spoiled(self, job_id):
        attempts = self.store.get_job(job_id)["attempts"]
        view = self.store.mark_spoiled(job_id, "print_failed", self.MAX_ATTEMPTS)
        assert view["state"] == (J.QUEUED if attempts < self.MAX_ATTEMPTS else J.FAILED)
        self.expected[job_id] = view["state"]

    def release(self, job_id):
        self.store.release_claim(job_id, "feeder_empty")
        self.model_stock[self.type_of[job_id]] += 1
        self.expected[job_id] = J.QUEUED

    def recover(self):
        recovered = {v["job_id"] for v in self.store.recover_in_doubt()}
        assert recovered == set(self.jobs_in(J.PRINTING))
        for job_id in recovered:
            self.expected[job_id] = J.IN_DOUBT

    def receive(self, batch, card_type, count):
        batch_id = f"B-{batch}"
        known = self.batches.get(batch_id)
        try:
            in_stock = self.store.receive_blanks(batch_id, card_type, count, None)
        except CommandError as exc:
            assert exc.code == "batch_conflict" and known is not None and known != (card_type, count)
            return
        if known is None:
            self.batches[batch_id] = (card_type, count)
            self.model_stock[card_type] += count
        else:
            assert known == (card_type, count)
        assert in_stock == self.model_stock[card_type]

    def cancel(self, job_id):
        state = self.expected[job_id]
        try:
            view = self.store.cancel_job(job_id)
        except CommandError as exc:
            assert exc.code == "not_cancellable" and state not in (J.QUEUED, J.CANCELLED)
            return
        assert state in (J.QUEUED, J.CANCELLED) and view["state"] == J.CANCELLED
        self.expected[job_id] = J.CANCELLED

    def expire(self, minutes):
        self.clock.advance(minutes * 60)
        now = self.clock.now()
        expired = {v["job_id"] for v in self.store.expire_due(now)}
        due = {j for j in self.jobs_in(J.QUEUED)
               if self.payloads[j].get("not_after") and datetime.fromisoformat(self.payloads[j]["not_after"]) < now}
        assert expired == due
        for job_id in expired:
            self.expected[job_id] = J.EXPIRED

    def check(self):
        store = self.store
        balanced(store)
        stock = store.stock()
        for card_type in CARD_TYPES:
            assert stock[card_type]["in_stock"] == self.model_stock[card_type]
            remaining = store.conn.execute("SELECT COALESCE(SUM(remaining), 0) FROM blank_batches WHERE card_type = ?",
                                           (card_type,)).fetchone()[0]
            assert remaining == stock[card_type]["in_stock"]
            moves = dict(store.conn.execute("SELECT kind, SUM(count) FROM blank_movements WHERE card_type = ?"
                                            " GROUP BY kind", (card_type,)).fetchall())
            get = lambda kind: moves.get(kind, 0)  # noqa: E731
            assert stock[card_type]["received"] == get("received")
            assert stock[card_type]["printed"] == get("printed")
            assert stock[card_type]["spoiled"] == get("spoiled")
            assert stock[card_type]["reserved"] == get("reserved") - get("released") - get("printed") - get("spoiled")
        ledger = store.conn.execute("SELECT record_id, job_id FROM printed_records").fetchall()
        records = [r["record_id"] for r in ledger]
        assert len(records) == len(set(records)), "a record was printed twice"
        rows = {r["job_id"]: r for r in store.conn.execute("SELECT job_id, record_id, state, attempts FROM jobs")}
        assert {j: r["state"] for j, r in rows.items()} == self.expected
        assert {j for j, r in rows.items() if r["state"] == J.PRINTED} == {r["job_id"] for r in ledger}
        for row in rows.values():
            assert row["state"] in J.STATES
            assert 0 <= row["attempts"] <= self.MAX_ATTEMPTS
        held = [r["record_id"] for r in rows.values() if r["state"] in J.HOLDS_RECORD]
        assert len(held) == len(set(held)), "two live jobs for one record"
        reserved = sum(1 for r in rows.values() if r["state"] in (J.PRINTING, J.IN_DOUBT))
        assert sum(s["reserved"] for s in stock.values()) == reserved


def _when_any(*states):
    """A rule that needs a job in one of ``states``."""
    return precondition(lambda self: bool(self.model.jobs_in(*states)))


class StoreMachine(RuleBasedStateMachine):
    """Hypothesis drives a :class:`StoreModel`; the promises are checked after every step."""

    def __init__(self):
        super().__init__()
        self.model = StoreModel()

    def teardown(self):
        self.model.close()

    @initialize(ktp=st.integers(0, 4), kia=st.integers(0, 4))
    def stock_up(self, ktp, kia):
        for card_type, count in (("KTP_EL", ktp), ("KIA", kia)):
            if count:
                self.model.receive(f"init-{card_type}", card_type, count)

    @rule(card_type=st.sampled_from(CARD_TYPES), priority=st.integers(0, 9), record=st.integers(0, 5),
          not_after=st.booleans())
    def submit(self, card_type, priority, record, not_after):
        self.model.submit(card_type, priority, record, not_after)

    @precondition(lambda self: self.model.payloads)
    @rule(data=st.data(), change=st.booleans())
    def resubmit(self, data, change):
        self.model.resubmit(data.draw(st.sampled_from(sorted(self.model.payloads))), change)

    @_when_any(J.QUEUED)
    @rule(data=st.data())
    def claim(self, data):
        self.model.claim(data.draw(st.sampled_from(self.model.jobs_in(J.QUEUED))))

    @_when_any(J.PRINTING, J.IN_DOUBT)
    @rule(data=st.data())
    def printed(self, data):
        self.model.printed(data.draw(st.sampled_from(self.model.jobs_in(J.PRINTING, J.IN_DOUBT))))

    @_when_any(J.PRINTING)
    @rule(data=st.data())
    def spoiled(self, data):
        self.model.spoiled(data.draw(st.sampled_from(self.model.jobs_in(J.PRINTING))))

    @_when_any(J.PRINTING)
    @rule(data=st.data())
    def release(self, data):
        self.model.release(data.draw(st.sampled_from(self.model.jobs_in(J.PRINTING))))

    @rule()
    def recover(self):
        self.model.recover()

    @rule(batch=st.integers(0, 4), card_type=st.sampled_from(CARD_TYPES), count=st.integers(1, 5))
    def receive(self, batch, card_type, count):
        self.model.receive(batch, card_type, count)

    @_when_any(*J.STATES)
    @rule(data=st.data())
    def cancel(self, data):
        self.model.cancel(data.draw(st.sampled_from(sorted(self.model.expected))))

    @rule(minutes=st.integers(0, 15))
    def expire(self, minutes):
        self.model.expire(minutes)

    @invariant()
    def promises_hold(self):
        self.model.check()


StoreMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
test_random_operations_keep_the_promises = StoreMachine.TestCase


@pytest.mark.parametrize("seed", range(4))
def test_a_long_random_day_keeps_the_promises(seed):
    """Longer, weighted random walks than hypothesis makes: many cards printed, spoiled and in doubt."""
    rng = random.Random(seed)
    model = StoreModel()
    try:
        model.receive("init", "KTP_EL", 20)
        operations = [
            (8, lambda: model.submit(rng.choice(CARD_TYPES), rng.randint(0, 9), rng.randint(0, 30), rng.random() < .2)),
            (2, lambda: model.resubmit(rng.choice(sorted(model.payloads)), rng.random() < .5) if model.payloads
             else None),
            (8, lambda: model.claim(rng.choice(model.jobs_in(J.QUEUED))) if model.jobs_in(J.QUEUED) else None),
            (4, lambda: model.printed(rng.choice(model.jobs_in(J.PRINTING, J.IN_DOUBT)))
             if model.jobs_in(J.PRINTING, J.IN_DOUBT) else None),
            (3, lambda: model.spoiled(rng.choice(model.jobs_in(J.PRINTING))) if model.jobs_in(J.PRINTING) else None),
            (2, lambda: model.release(rng.choice(model.jobs_in(J.PRINTING))) if model.jobs_in(J.PRINTING) else None),
            (1, model.recover),
            (2, lambda: model.receive(rng.randint(0, 9), rng.choice(CARD_TYPES), rng.randint(1, 6))),
            (2, lambda: model.cancel(rng.choice(sorted(model.expected))) if model.expected else None),
            (1, lambda: model.expire(rng.randint(0, 15))),
        ]
        weights = [w for w, _ in operations]
        for _ in range(300):
            rng.choices(operations, weights)[0][1]()
            model.check()
        counts = model.store.counts()
        assert counts[J.PRINTED] > 0 and sum(model.store.stock()[t]["spoiled"] for t in CARD_TYPES) > 0
        assert model.store.verify_audit_chain() == len(audit_rows(model.store))
    finally:
        model.close()
