"""The paths of a card through the store: claimed, printed, spoiled, released, or left in doubt by a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from clock_fixtures import START
from sample_jobs import CARD_TYPES, new_job
from store_checks import audit_rows, balanced, dump

from kartud.ledger.store import OutOfBlanks
from kartud.rules import jobs as J
from kartud.rules.clock import rfc3339


def test_claim_without_stock_raises_and_changes_nothing(store):
    store.submit_job(new_job(1))
    store.receive_blanks("B-KIA", "KIA", 3, None)  # stock of the other type does not help
    tables = ("jobs", "blank_stock", "blank_movements", "audit", "blank_batches")
    before = dump(store, *tables)
    with pytest.raises(OutOfBlanks):
        store.claim("j-0001")
    assert dump(store, *tables) == before
    assert store.get_job("j-0001")["state"] == J.QUEUED


def test_claim_then_printed(store, manual_clock):
    store.receive_blanks("B-1", "KTP_EL", 2, None)
    store.submit_job(new_job(1))
    balanced(store)
    manual_clock.advance(60)
    claimed = store.claim("j-0001")
    assert claimed["state"] == J.PRINTING and claimed["step"] == "feeding"
    assert claimed["attempts"] == 1 and claimed["batch_id"] == "B-1"
    assert store.stock()["KTP_EL"] == {"received": 2, "adjusted": 0, "in_stock": 1, "reserved": 1, "printed": 0,
                                       "spoiled": 0}
    assert store.queue_position("j-0001") is None
    balanced(store)
    for step in J.STEPS:
        assert store.set_step("j-0001", step)["step"] == step
    manual_clock.advance(60)
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
    # A printed job cannot be printed again, nor claimed: the claim looks and moves on.
    with pytest.raises(J.IllegalTransition):
        store.mark_printed("j-0001", None)
    assert store.claim("j-0001") is None
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
    assert store.claim("j-0001") is None                # a failed job never starts again
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
