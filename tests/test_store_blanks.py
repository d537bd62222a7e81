"""Blank accounting in the store: batches received once, used oldest first, and a stock that always balances."""

from __future__ import annotations

import sqlite3

import pytest
from sample_jobs import new_job
from store_checks import audit_rows, balanced, dump

from kartud.rules.errors import CommandError


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


def test_batches_are_used_oldest_first(store, manual_clock):
    store.receive_blanks("B-Z-old", "KTP_EL", 1, None)
    manual_clock.advance(3600)
    store.receive_blanks("B-A-new", "KTP_EL", 2, None)
    manual_clock.advance(3600)
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


def test_a_released_blank_goes_back_to_its_batch(store, manual_clock):
    store.receive_blanks("B-old", "KTP_EL", 1, None)
    manual_clock.advance(60)
    store.receive_blanks("B-new", "KTP_EL", 1, None)
    store.submit_job(new_job(1))
    store.claim("j-0001")
    store.release_claim("j-0001", "feeder_empty")
    assert store.claim("j-0001")["batch_id"] == "B-old"
