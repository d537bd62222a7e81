"""Store calls per batch of submissions (each is a thread hop and a wake-up of the loop), and the promises the
fewer calls keep: a mark committed before anything handles its message, a death after the commit answered from
the ledger."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sample_jobs import payload
from test_request_boundary import daemon_in_process, defect_in_validation, request, rows, serve

from kartud.ledger import quarantine as Q


@pytest.fixture
def daemon(tmp_path, manual_clock):
    """A daemon's intake and store in this process, its MQTT link recording (as test_request_boundary's)."""
    yield from daemon_in_process(tmp_path, manual_clock, ["KIA"])


class Died(BaseException):
    """The process dying here: nothing after it runs, nothing catches it (the intake catches Exception only)."""


def store_calls(daemon, monkeypatch) -> list[str]:
    """The names of the store calls the daemon makes from now on, in order."""
    calls: list[str] = []
    db = daemon.db

    async def counting(fn, *args):
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await db(fn, *args)

    monkeypatch.setattr(daemon, "db", counting)
    return calls


def submissions(serials, **fields) -> list:
    return [request("job/submit", {**payload(n, "KIA"), **fields, "request_id": f"r-{n}"}, n) for n in serials]


@pytest.mark.parametrize("size", [1, 5, 50])
def test_a_batch_of_submissions_takes_one_store_call_whatever_its_size(daemon, monkeypatch, size):
    calls = store_calls(daemon, monkeypatch)
    serve(daemon, submissions(range(1, size + 1)))
    # The marks, then on the store's thread the validations and the jobs' commit with the marks' release.
    assert calls == ["handled_in_hand"]
    assert [a["status"] for a in daemon.mqtt.answers()] == ["ok"] * size
    assert rows(daemon, "SELECT COUNT(*) FROM jobs") == [(size,)]
    assert rows(daemon, "SELECT COUNT(*) FROM requests_handling") == [(0,)]


def test_a_refused_submission_is_released_with_the_others_commit(daemon, monkeypatch):
    calls = store_calls(daemon, monkeypatch)
    batch = submissions([1, 2, 3])
    batch[1] = request("job/submit", {**payload(2, "KIA"), "card_type": "NOPE", "request_id": "r-2"}, 2)
    serve(daemon, batch)
    assert calls == ["handled_in_hand"]
    assert [a["status"] for a in daemon.mqtt.answers()] == ["ok", "error", "ok"]
    assert rows(daemon, "SELECT COUNT(*) FROM requests_handling") == [(0,)]


def test_other_requests_in_the_batch_are_released_after_their_answers(daemon, monkeypatch):
    calls = store_calls(daemon, monkeypatch)
    seen = []

    async def status(body):
        seen.append(rows(daemon, "SELECT command FROM requests_handling WHERE in_hand = 1"))
        return {}

    monkeypatch.setitem(daemon.commands.handlers, "status/get", status)
    serve(daemon, [*submissions([1, 2]), request("status/get", {"request_id": "s"}, 3)])
    assert seen == [[("status/get",)]]                  # the submissions' marks went with their commit
    assert calls == ["take_in_hand", "commit_releasing", "release"]
    assert rows(daemon, "SELECT COUNT(*) FROM requests_handling") == [(0,)]


def test_the_marks_are_committed_before_a_submission_is_validated(daemon, monkeypatch):
    committed = []
    validate = daemon.commands.validate_plain

    def validating(body):
        # What another connection sees is what a death here would leave on the disk.
        with sqlite3.connect(daemon.config.store.path) as other:
            committed.append(other.execute("SELECT COUNT(*) FROM requests_handling WHERE in_hand = 1").fetchone()[0])
        return validate(body)

    monkeypatch.setattr(daemon.commands, "validate_plain", validating)
    serve(daemon, submissions([1, 2, 3]))
    serve(daemon, [*submissions([4, 5]), request("status/get", {}, 6)])     # the usual path
    assert committed == [3, 3, 3, 3, 3]


def test_a_death_while_validating_counts_against_the_messages_in_hand(daemon, monkeypatch):
    validate = daemon.commands.validate_plain

    def dying(body):
        if body["job_id"] == "j-0002":
            raise Died()
        return validate(body)

    monkeypatch.setattr(daemon.commands, "validate_plain", dying)
    with pytest.raises(Died):
        serve(daemon, submissions([1, 2, 3]))
    asyncio.run(daemon.intake.recover())
    assert rows(daemon, "SELECT deaths FROM requests_handling") == [(1,), (1,), (1,)]
    assert rows(daemon, "SELECT COUNT(*) FROM jobs") == [(0,)]


@pytest.mark.parametrize("with_request_id", [True, False])
def test_a_death_between_the_commit_and_the_answer_is_answered_from_the_ledger(daemon, monkeypatch, with_request_id):
    batch = submissions([1, 2, 3]) if with_request_id else \
        [request("job/submit", payload(n, "KIA"), n) for n in (1, 2, 3)]
    send = daemon.intake._send

    def dying(request, response):
        raise Died()                                    # committed; no answer, no PUBACK: the broker redelivers

    monkeypatch.setattr(daemon.intake, "_send", dying)
    with pytest.raises(Died):
        serve(daemon, batch)
    monkeypatch.setattr(daemon.intake, "_send", send)
    asyncio.run(daemon.intake.recover())                # the start-up: nothing was in hand
    assert rows(daemon, "SELECT COUNT(*) FROM requests_handling") == [(0,)]
    serve(daemon, batch)                                # the redelivery
    answers = daemon.mqtt.answers()
    assert [a["status"] for a in answers] == ["ok"] * 3, answers
    assert [a["data"]["job_id"] for a in answers] == ["j-0001", "j-0002", "j-0003"]
    if with_request_id:                                 # the first answers, from the request memory
        assert [a["data"]["queue_position"] for a in answers] == [1, 2, 3]
    else:                                               # the same job_id with the same content: that job
        assert all(a["data"]["resubmitted"] for a in answers)
    assert rows(daemon, "SELECT COUNT(*) FROM jobs") == [(3,)]
    assert rows(daemon, "SELECT COUNT(*) FROM quarantine") == [(0,)]
    assert rows(daemon, "SELECT COUNT(*) FROM requests_handling") == [(0,)]


def test_a_defect_while_validating_in_the_one_call_is_quarantined_on_the_usual_path(daemon, monkeypatch):
    calls = store_calls(daemon, monkeypatch)
    defect_in_validation(daemon, monkeypatch)
    serve(daemon, submissions([1, 2, 3]))
    assert [a["status"] for a in daemon.mqtt.answers()] == ["ok", "error", "ok"]
    assert rows(daemon, "SELECT why FROM quarantine") == [("ValueError",)]
    # The marks taken stand; the usual path validates again, commits, and releases with the commit.
    assert calls[:2] == ["handled_in_hand", "quarantine"] and calls[2:] == ["commit_releasing"]
    assert rows(daemon, "SELECT COUNT(*) FROM requests_handling") == [(0,)]


def test_a_face_for_pillow_takes_the_usual_path_without_new_marks(daemon, monkeypatch):
    calls = store_calls(daemon, monkeypatch)
    monkeypatch.setattr(daemon.commands, "validate_plain", lambda body: None)     # as for an interlaced face
    serve(daemon, submissions([1, 2]))
    assert calls == ["handled_in_hand", "commit_releasing"]
    assert [a["status"] for a in daemon.mqtt.answers()] == ["ok", "ok"]
    assert rows(daemon, "SELECT COUNT(*) FROM requests_handling") == [(0,)]


def test_a_submission_that_died_once_is_still_handled_alone(daemon, monkeypatch):
    batch = submissions([1, 2, 3])
    Q.take_in_hand(daemon.store, [(daemon.intake._sha(batch[1]), "job/submit", len(batch[1].payload))])
    asyncio.run(daemon.intake.recover())
    calls = store_calls(daemon, monkeypatch)
    serve(daemon, batch)
    assert calls == ["handled_in_hand", "commit_releasing", "take_in_hand", "commit_releasing", "take_in_hand",
                     "commit_releasing"]                # the first, then the suspect alone, then the last
    assert [a["status"] for a in daemon.mqtt.answers()] == ["ok"] * 3
    assert rows(daemon, "SELECT COUNT(*) FROM requests_handling") == [(0,)]
