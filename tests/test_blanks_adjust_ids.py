"""blanks/adjust carries an id (request_id or adjustment_id), is applied once per id, and names the id it was sent."""

from __future__ import annotations

import pytest
from command_desk import Desk

ADJUST = {"card_type": "KTP_EL", "delta": 2, "reason": "stocktake found 2"}


@pytest.fixture
def desk(store):
    store.receive_blanks("B0", "KTP_EL", 10, None)
    return Desk(store)


def stock(desk) -> int:
    return desk.store.stock()["KTP_EL"]["in_stock"]


def test_without_any_id_it_is_refused_naming_request_id_and_twice_changes_nothing(desk):
    before = desk.dump()
    for _ in range(2):
        answer = desk.ask("blanks/adjust", ADJUST)
        assert answer["status"] == "error" and answer["error"]["code"] == "invalid_payload"
        assert [p["field"] for p in answer["error"]["details"]["problems"]] == ["request_id"]
        assert "adjustment_id" in answer["error"]["message"]
    assert desk.dump() == before and stock(desk) == 10


@pytest.mark.parametrize("sent", ["request_id", "adjustment_id"])
def test_an_id_used_again_for_another_adjustment_is_refused_naming_the_field_sent(desk, sent):
    assert desk.ask("blanks/adjust", {**ADJUST, sent: "a-1"})["data"]["in_stock"] == 12
    answer = desk.ask("blanks/adjust", {**ADJUST, "delta": 3, sent: "a-1"})
    assert answer["error"]["code"] == "invalid_payload"
    assert [p["field"] for p in answer["error"]["details"]["problems"]] == [sent]
    assert stock(desk) == 12


@pytest.mark.parametrize("sent", ["request_id", "adjustment_id"])
def test_an_adjustment_counts_once_even_after_the_request_memory_forgot_it(store, manual_clock, sent):
    store.receive_blanks("B0", "KTP_EL", 10, None)
    desk = Desk(store, replay_window_days=1)
    desk.ask("blanks/adjust", {**ADJUST, sent: "a-1"})
    manual_clock.advance(3 * 86400)
    desk.ask("queue/pause", {"request_id": "later"})           # prunes what is past the window
    again = desk.ask("blanks/adjust", {**ADJUST, sent: "a-1"})
    assert again["status"] == "ok" and stock(desk) == 12


def test_both_ids_given_are_one_adjustment(desk):
    desk.ask("blanks/adjust", {**ADJUST, "request_id": "r-1", "adjustment_id": "a-1"})
    desk.ask("blanks/adjust", {**ADJUST, "request_id": "r-2", "adjustment_id": "a-1"})
    assert stock(desk) == 12
