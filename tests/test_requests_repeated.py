"""A changing request sent again with its request_id gets its first answer and changes nothing (contract 1.1)."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from command_desk import Desk
from sample_jobs import new_job, payload
from store_fixtures import TEST_KEY

from kartud.ledger.store import Store
from kartud.service.intake import Intake
from kartud.service.mqtt_link import IncomingRequest

DAY = 86400.0


@pytest.fixture
def desk(store):
    store.receive_blanks("B0", "KTP_EL", 10, None)
    return Desk(store)


def in_doubt(store, job_id):
    store.claim(job_id)
    store.mark_in_doubt(job_id, "interrupted")


# Each scenario: (command, payload, set-up before the first request, a change between the two sendings).
def _submit(desk):
    return "job/submit", payload(1), lambda: None, lambda: desk.ask("job/cancel", {"job_id": "j-0001"})


def _cancel(desk):
    # Refused while the card is in the press; the job then goes back to the queue: the repeat must not cancel it.
    def setup():
        desk.store.submit_job(new_job(1))
        desk.store.claim("j-0001")
    return "job/cancel", {"job_id": "j-0001"}, setup, lambda: desk.store.release_claim("j-0001", "feeder_empty")


def _resolve(desk):
    # Resolved spoiled, then the job is in doubt again after its next try: the old decision must not settle it.
    def setup():
        desk.store.submit_job(new_job(1))
        in_doubt(desk.store, "j-0001")
    return ("job/resolve", {"job_id": "j-0001", "outcome": "spoiled", "note": "bent"}, setup,
            lambda: in_doubt(desk.store, "j-0001"))


def _pause(desk):
    return "queue/pause", {"reason": "lunch"}, lambda: None, lambda: desk.ask("queue/resume", {})


def _resume(desk):
    return ("queue/resume", {}, lambda: desk.ask("queue/pause", {}),
            lambda: desk.ask("queue/pause", {"reason": "ribbon change"}))


def _another_adjustment(desk):
    return desk.ask("blanks/adjust", {"card_type": "KTP_EL", "delta": -1, "reason": "bent", "request_id": "other"})


def _receive(desk):
    return ("blanks/receive", {"batch_id": "B1", "card_type": "KTP_EL", "count": 3}, lambda: None,
            lambda: _another_adjustment(desk))


def _adjust(desk):
    return ("blanks/adjust", {"card_type": "KTP_EL", "delta": 2, "reason": "found 2"}, lambda: None,
            lambda: _another_adjustment(desk))


def _cleaned(desk):
    def card_fed():
        desk.store.submit_job(new_job(1))
        desk.store.claim("j-0001")
    return "maintenance/cleaned", {"note": "rollers"}, lambda: None, card_fed


SCENARIOS = [_submit, _cancel, _resolve, _pause, _resume, _receive, _adjust, _cleaned]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__[1:])
def test_a_repeat_gets_the_first_answer_and_changes_nothing(desk, scenario):
    command, body, setup, between = scenario(desk)
    setup()
    first = desk.ask(command, {**body, "request_id": "r-1"})
    between()
    before = desk.dump()
    announced = len(desk.changed)
    again = desk.ask(command, {**body, "request_id": "r-1"})
    assert again == first
    assert desk.dump() == before, "the repeat changed something"
    assert len(desk.changed) == announced, "the repeat announced a change"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__[1:])
def test_the_memory_outlives_a_restart_and_lasts_the_window(desk, scenario, tmp_path, manual_clock):
    command, body, setup, between = scenario(desk)
    setup()
    first = desk.ask(command, {**body, "request_id": "r-1"})
    between()
    desk.store.close()
    manual_clock.advance(29 * DAY)
    reopened = Store(str(tmp_path / "kartud.db"), manual_clock, key=TEST_KEY)
    reopened.open()
    try:
        desk = Desk(reopened)
        before = desk.dump()
        assert desk.ask(command, {**body, "request_id": "r-1"}) == first
        assert desk.dump() == before
    finally:
        reopened.close()


def test_the_memory_is_pruned_past_the_window(store, manual_clock):
    desk = Desk(store, replay_window_days=2)
    desk.ask("queue/pause", {"request_id": "old"})
    manual_clock.advance(3 * DAY + 60)          # the window and a day: a signed ts may be ahead of the clock
    desk.ask("queue/resume", {"request_id": "new"})
    assert [r[0] for r in store.conn.execute("SELECT request_id FROM requests_done")] == ["new"]


def test_an_effect_is_never_committed_without_its_memory(desk):
    # The memory is written in the effect's own transaction: when it cannot be written, nothing happened.
    desk.store.conn.execute("CREATE TEMP TRIGGER no_memory BEFORE INSERT ON requests_done"
                            " BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    before = desk.dump()
    with pytest.raises(sqlite3.Error):
        desk.ask("blanks/receive", {"batch_id": "B1", "card_type": "KTP_EL", "count": 3, "request_id": "r-1"})
    assert desk.dump() == before


@pytest.mark.parametrize("second", [
    ("queue/resume", {}),                                                              # another command
    ("blanks/receive", {"batch_id": "B2", "card_type": "KTP_EL", "count": 3}),         # other content
    ("blanks/receive", {"batch_id": "B1", "card_type": "KTP_EL", "count": 4}),
])
def test_a_request_id_used_again_for_something_else_is_refused_naming_it(desk, second):
    desk.ask("blanks/receive", {"batch_id": "B1", "card_type": "KTP_EL", "count": 3, "request_id": "r-1"})
    before = desk.dump()
    command, body = second
    answer = desk.ask(command, {**body, "request_id": "r-1"})
    assert answer["status"] == "error" and answer["error"]["code"] == "invalid_payload"
    assert [p["field"] for p in answer["error"]["details"]["problems"]] == ["request_id"]
    assert "new request_id" in answer["error"]["message"]
    assert desk.dump() == before


def test_transport_fields_and_written_out_defaults_are_not_other_content(desk):
    first = desk.ask("job/submit", {**payload(1), "request_id": "r-1"})
    without_default = {k: v for k, v in payload(1).items() if k != "priority"}
    assert desk.ask("job/submit", {**without_default, "request_id": "r-1", "ts": "2026-11-27T08:00:00+07:00"}) == first
    assert desk.ask("queue/pause", {"request_id": "r-2"}) == desk.ask("queue/pause", {"request_id": "r-2",
                                                                                       "reason": None})


@pytest.mark.parametrize("request_id", [5, "", "x" * 129, "a\x00b", "line\nbreak", ["r-1"], "\ud800"])
def test_a_request_id_that_cannot_be_remembered_is_refused(desk, request_id):
    before = desk.dump()
    answer = desk.ask("queue/pause", {"request_id": request_id})
    assert answer["error"]["code"] == "invalid_payload"
    assert [p["field"] for p in answer["error"]["details"]["problems"]] == ["request_id"]
    assert desk.dump() == before


def test_read_only_commands_are_not_remembered(desk):
    for command, body in (("status/get", {}), ("job/list", {}), ("job/get", {"job_id": "j-1"}),
                          ("report/daily", {"date": "2026-11-27"})):
        desk.ask(command, {**body, "request_id": f"read-{command}"})
    assert desk.store.conn.execute("SELECT COUNT(*) FROM requests_done").fetchone()[0] == 0


def test_a_request_refused_before_it_reached_the_ledger_can_be_corrected_under_the_same_id(desk):
    refused = desk.ask("blanks/receive", {"batch_id": "B1", "card_type": "KTP_EL", "count": -3, "request_id": "r-1"})
    assert refused["error"]["code"] == "invalid_payload"
    fixed = desk.ask("blanks/receive", {"batch_id": "B1", "card_type": "KTP_EL", "count": 3, "request_id": "r-1"})
    assert fixed["status"] == "ok" and fixed["data"]["in_stock"] == 13


def test_repeats_within_one_group_commit_get_the_first_answer(desk):
    def request(body: dict, mid: int) -> IncomingRequest:
        return IncomingRequest(command="job/submit", payload=json.dumps(body).encode(), retain=False,
                               response_topic=None, correlation_data=None, mid=mid, qos=1)

    sent, other = {**payload(1), "request_id": "r-1"}, {**payload(2), "request_id": "r-1"}
    answers = asyncio.run(Intake(desk).answer_batch([request(sent, 1), request(sent, 2), request(other, 3)]))
    assert answers[0]["data"] == {"job_id": "j-0001", "state": "queued", "queue_position": 1}
    assert answers[1] == answers[0]
    assert answers[2]["error"]["code"] == "invalid_payload"
    assert [p["field"] for p in answers[2]["error"]["details"]["problems"]] == ["request_id"]
    assert [r[0] for r in desk.store.conn.execute("SELECT job_id FROM jobs")] == ["j-0001"]
    assert asyncio.run(Intake(desk).answer_batch([request(sent, 4)])) == answers[:1]
