"""The boundary around each request, in process: a defect is answered internal_error, acknowledged in order and
quarantined; marks are written before handling and released after; a group commit that meets a defect refuses
only the submission that met it; a message that died with the process is handled alone, then quarantined."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from sample_jobs import payload
from store_fixtures import key_file

from kartud.ledger import quarantine as Q
from kartud.rules.config import from_dict
from kartud.service.boundary import fingerprint
from kartud.service.daemon import Daemon
from kartud.service.mqtt_link import IncomingRequest
from kartud.service.office_link import OfficeLink

ROOT = "kartud/s-1"
PII = "Siti Rahayu binti Slamet"


class RecordingLink:
    """Plays MqttLink for the intake: what was published and acknowledged, in order; the marks held at each PUBACK."""

    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self.sent: list[tuple[str, str, object]] = []     # ("answer", topic, body) or ("ack", "", mid)
        self.link = OfficeLink("broker:1883", daemon.clock.now)   # what the state document reads of the link

    def publish(self, suffix, payload, retain=False, topic=None, correlation_data=None) -> bool:
        self.sent.append(("answer", topic, payload))
        return True

    def ack(self, request: IncomingRequest) -> None:
        self.sent.append(("ack", "", request.mid))

    def answers(self) -> list[dict]:
        return [body for kind, topic, body in self.sent if kind == "answer" and "/response/" in (topic or "")]


def daemon_in_process(tmp_path, clock, card_types: list[str]):
    """A daemon's intake and store in this process, its MQTT link recording (a generator for a fixture)."""
    config = from_dict({"station": {"id": "s-1", "card_types": card_types},
                        "store": {"path": str(tmp_path / "kartud.db"), "key_file": key_file(tmp_path)},
                        "printer": {"transport": "sim"},
                        "encoder": {"backend": "sim"}, "indicator": {"backend": "none"}})
    daemon = Daemon(config, clock)
    daemon._state_dirty, daemon._wake = asyncio.Event(), asyncio.Event()     # what run() would have made
    daemon.store.open()
    daemon.mqtt = RecordingLink(daemon)
    yield daemon
    daemon.store.close()


@pytest.fixture
def daemon(tmp_path, manual_clock):
    yield from daemon_in_process(tmp_path, manual_clock, ["KTP_EL", "KIA"])


def request(command: str, body, mid: int) -> IncomingRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return IncomingRequest(command=command, payload=raw, retain=False, response_topic=None, correlation_data=None,
                           mid=mid, qos=1, topic=f"{ROOT}/request/{command}")


def serve(daemon: Daemon, batch: list[IncomingRequest]) -> None:
    asyncio.run(daemon.intake.serve_batch(batch))


def rows(daemon: Daemon, sql: str) -> list[tuple]:
    return [tuple(row) for row in daemon.store.conn.execute(sql)]


def test_a_defect_in_a_handler_is_answered_acknowledged_logged_without_content_and_quarantined(daemon, caplog,
                                                                                              monkeypatch):
    async def defective(payload):
        raise KeyError(PII)                         # a defect whose message would carry personal data

    monkeypatch.setitem(daemon.commands.handlers, "queue/pause", defective)
    caplog.set_level(logging.INFO, logger="kartud")
    bad = request("queue/pause", {"request_id": "r-bad", "reason": PII}, 1)
    serve(daemon, [bad, request("status/get", {"request_id": "r-next"}, 2)])
    first, second = daemon.mqtt.answers()
    assert first["request_id"] == "r-bad" and first["error"]["code"] == "internal_error"
    assert "kartuctl quarantine" in first["error"]["message"]
    assert second["request_id"] == "r-next" and second["status"] == "ok"
    assert [s[2] for s in daemon.mqtt.sent if s[0] == "ack"] == [1, 2]
    sha = fingerprint(f"{ROOT}/request/queue/pause", bad.payload)
    assert rows(daemon, "SELECT command, size, message_sha256, why FROM quarantine") == \
        [("queue/pause", len(bad.payload), sha, "KeyError")]
    assert rows(daemon, "SELECT COUNT(*) FROM requests_handling") == [(0,)]
    text = caplog.text
    assert PII not in text and "KeyError" in text and sha in text and f"{len(bad.payload)} bytes" in text
    assert PII not in json.dumps(first)
    kinds = rows(daemon, "SELECT kind, detail FROM audit WHERE kind = 'request_quarantined'")
    assert len(kinds) == 1 and PII not in kinds[0][1]


def test_a_group_commit_that_meets_a_defect_refuses_only_the_submission_that_met_it(daemon, monkeypatch):
    original = daemon.store.submit_jobs

    def submit_jobs(jobs):
        if any(job.job_id == "j-0002" for job in jobs):
            raise OverflowError("date value out of range")        # the far-future not_after, say
        return original(jobs)

    monkeypatch.setattr(daemon.store, "submit_jobs", submit_jobs)
    batch = [request("job/submit", {**payload(n, "KIA"), "request_id": f"r-{n}"}, n) for n in (1, 2, 3)]
    serve(daemon, batch)
    answers = daemon.mqtt.answers()
    assert [a.get("request_id") for a in answers] == ["r-1", "r-2", "r-3"], answers
    assert [a["status"] for a in answers] == ["ok", "error", "ok"]
    assert answers[1]["error"]["code"] == "internal_error"
    assert [s[2] for s in daemon.mqtt.sent if s[0] == "ack"] == [1, 2, 3]
    assert rows(daemon, "SELECT job_id FROM jobs ORDER BY job_id") == [("j-0001",), ("j-0003",)]
    assert rows(daemon, "SELECT command, why FROM quarantine") == [("job/submit", "OverflowError")]


def defect_in_validation(daemon, monkeypatch, job_id: str = "j-0002") -> None:
    """Validating ``job_id``'s submission meets a defect (ValueError), on either intake path: both validate
    through ``validate_plain``."""
    original = daemon.commands.validate_plain

    def validate_plain(body):
        if body["job_id"] == job_id:
            raise ValueError("a defect")
        return original(body)

    monkeypatch.setattr(daemon.commands, "validate_plain", validate_plain)


def test_a_defect_while_validating_a_submission_is_quarantined_too(daemon, monkeypatch):
    defect_in_validation(daemon, monkeypatch)
    serve(daemon, [request("job/submit", payload(n, "KIA"), n) for n in (1, 2, 3)])
    assert [a["status"] for a in daemon.mqtt.answers()] == ["ok", "error", "ok"]
    assert rows(daemon, "SELECT why FROM quarantine") == [("ValueError",)]


def test_marks_are_held_while_handling_and_released_after_the_answer(daemon, monkeypatch):
    seen = []

    async def status(payload):
        seen.append(rows(daemon, "SELECT command, deaths, in_hand FROM requests_handling ORDER BY command"))
        return {}

    monkeypatch.setitem(daemon.commands.handlers, "status/get", status)
    serve(daemon, [request("status/get", {"request_id": "a"}, 1), request("job/get", {"job_id": "j-x"}, 2)])
    assert seen == [[("job/get", 0, 1), ("status/get", 0, 1)]]      # the batch's marks, taken in one go
    assert rows(daemon, "SELECT COUNT(*) FROM requests_handling") == [(0,)]


def death(daemon: Daemon, messages: list[IncomingRequest]) -> None:
    """As if the process died while these were in hand, and started again."""
    Q.take_in_hand(daemon.store, [(fingerprint(m.topic, m.payload), m.command, len(m.payload)) for m in messages],
                   alone=True)
    asyncio.run(daemon.intake.recover())


def test_a_message_that_died_once_is_handled_alone_after_the_others_are_answered(daemon, monkeypatch):
    suspect = request("status/get", {"request_id": "suspect"}, 2)
    death(daemon, [suspect])
    marks_when_handled = []

    async def status(payload):
        marks_when_handled.append((payload["request_id"], rows(daemon, "SELECT in_hand FROM requests_handling "
                                                                         "WHERE in_hand = 1")))
        return {}

    monkeypatch.setitem(daemon.commands.handlers, "status/get", status)
    batch = [request("status/get", {"request_id": "before"}, 1), suspect,
             request("status/get", {"request_id": "after"}, 3)]
    serve(daemon, batch)
    # "before" was answered and released before the suspect was taken in hand, alone.
    assert [r for r, _ in marks_when_handled] == ["before", "suspect", "after"]
    assert marks_when_handled[1][1] == [(1,)]
    order = [s[0] if s[0] == "ack" else s[2]["request_id"] for s in daemon.mqtt.sent if s[0] == "ack" or
             "/response/" in s[1]]
    assert order == ["before", "ack", "suspect", "ack", "after", "ack"]
    assert rows(daemon, "SELECT COUNT(*) FROM requests_handling") == [(0,)]
    assert rows(daemon, "SELECT COUNT(*) FROM quarantine") == [(0,)]


def test_a_message_that_died_twice_is_quarantined_answered_and_never_handled(daemon, monkeypatch, caplog):
    killer = request("queue/pause", {"request_id": "k-1", "reason": PII}, 7)
    death(daemon, [killer])
    death(daemon, [killer])
    handled = []
    monkeypatch.setitem(daemon.commands.handlers, "queue/pause", lambda payload: handled.append(payload))
    caplog.set_level(logging.INFO, logger="kartud")
    serve(daemon, [killer])
    serve(daemon, [request("queue/pause", {"request_id": "k-1", "reason": PII}, 8)])   # sent again later
    assert handled == []
    for answer in daemon.mqtt.answers():
        assert answer["request_id"] == "k-1" and answer["error"]["code"] == "internal_error"
    assert rows(daemon, "SELECT command, why FROM quarantine") == [("queue/pause", Q.DIED_TWICE)]
    assert PII not in caplog.text


def test_a_quarantined_payload_is_erased_with_the_retention_its_fingerprint_stays(daemon, manual_clock):
    seq = Q.quarantine(daemon.store, "ab" * 32, "job/submit", PII.encode(), "KeyError")
    assert daemon.store.erase_due(manual_clock.now(), 30)["payloads"] == 0
    manual_clock.advance(31 * 86400)
    assert daemon.store.erase_due(manual_clock.now(), 30)["payloads"] == 1
    assert rows(daemon, "SELECT payload_kept FROM quarantine") == [(0,)] and daemon.store.personal.payload(seq) is None
    listed = Q.quarantined(daemon.store.conn)
    assert listed[0]["seq"] == seq and listed[0]["payload_erased"] and listed[0]["message_sha256"] == "ab" * 32


def test_an_empty_retained_request_is_only_acknowledged(daemon):
    cleared = request("queue/pause", b"", 5)
    cleared.retain = True
    serve(daemon, [cleared])
    assert daemon.mqtt.sent == [("ack", "", 5)]


def test_a_defect_of_the_intake_itself_answers_what_is_left_and_the_intake_goes_on(daemon, monkeypatch):
    async def broken(requests, alone=False):
        raise AttributeError("a defect in the intake")

    monkeypatch.setattr(daemon.intake, "_take_in_hand", broken)
    serve(daemon, [request("status/get", {"request_id": "r-1"}, 1), request("status/get", b"{", 2)])
    answers = daemon.mqtt.answers()
    assert [a.get("request_id") for a in answers] == ["r-1", None]
    assert {a["error"]["code"] for a in answers} == {"internal_error"}
    assert [s[2] for s in daemon.mqtt.sent if s[0] == "ack"] == [1, 2]
