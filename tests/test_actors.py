"""Who did what: every audit row names its actor inside the hashed content, and kartuctl verify checks actors and erasure rows."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pwd
import socket
import sqlite3
from datetime import timedelta

import pytest
from control_fixtures import FakeDaemon
from fuzz_requests import KEY
from fuzz_station import ROOT, START, Station
from sample_jobs import new_job, payload

from kartud.ledger.actors import acting_as, current_actor
from kartud.ledger.read_only import verify
from kartud.ledger.store import verify_audit_chain
from kartud.rules.clock import rfc3339
from kartud.rules.errors import StorageError
from kartud.rules.signing import key_id, public_key_base64, sign_request
from kartud.service.mqtt_link import IncomingRequest

ME = f"unix:{pwd.getpwuid(os.getuid()).pw_name}"


def actors(conn, kind: str | None = None) -> list[tuple]:
    """``(kind, job_id, actor)`` of every audit row (of ``kind``), in order."""
    rows = conn.execute("SELECT kind, job_id, detail FROM audit ORDER BY id").fetchall()
    return [(k, j, json.loads(d).get("actor")) for k, j, d in rows if kind is None or k == kind]


def test_a_change_names_kartud_unless_a_request_named_someone(store):
    store.receive_blanks("B-1", "KTP_EL", 5, None)
    with acting_as("unix:operator1"):
        store.submit_job(new_job(1))
        assert current_actor() == "unix:operator1"
    store.claim("j-0001")
    assert actors(store.conn) == [("blanks_received", None, "kartud"), ("job_submitted", "j-0001", "unix:operator1"),
                                  ("job_claimed", "j-0001", "kartud")]


def test_the_actor_is_inside_the_hashed_content(store, tmp_path):
    with acting_as("unix:operator1"):
        store.receive_blanks("B-1", "KTP_EL", 5, None)
    store.receive_blanks("B-2", "KIA", 5, None)
    assert verify_audit_chain(store.conn) == 2
    tamper = sqlite3.connect(str(tmp_path / "kartud.db"))
    tamper.execute("DROP TRIGGER audit_no_update")            # someone with the file, not the daemon
    tamper.execute("UPDATE audit SET detail = replace(detail, 'unix:operator1', 'unix:operator2') WHERE id = 1")
    tamper.commit()
    tamper.close()
    with pytest.raises(StorageError, match="row 1"):
        verify_audit_chain(store.conn)


def incoming(command: str, body: dict | bytes, client: str | None = None, serial: int = 0) -> IncomingRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return IncomingRequest(command=command, payload=raw, retain=False, response_topic=None,
                           correlation_data=b"c", mid=serial, qos=1, topic=f"{ROOT}/request/{command}", client=client)


def signed(command: str, body: dict, request_id: str) -> dict:
    fresh = {"request_id": request_id, "ts": rfc3339(START), **body}
    return sign_request(f"{ROOT}/request/{command}", fresh, KEY)


@pytest.fixture
def optional_station(tmp_path):
    station = Station(tmp_path / "optional", "optional")
    yield station
    station.close()


def test_mqtt_requests_are_named_by_their_key_or_the_client_they_claim(optional_station):
    station = optional_station
    jobs = [payload(n, record_id=f"PRR-7777-{n:06d}") for n in (101, 102, 103, 104)]
    batch = [incoming("job/submit", signed("job/submit", jobs[0], "r-1"), client="office-1", serial=1),
             incoming("job/submit", jobs[1], client="office-2", serial=2),     # one group commit, two actors
             incoming("job/submit", jobs[2], serial=3),
             incoming("job/submit", jobs[3], client="Budi Santoso (laptop)", serial=4),   # no plain id: not kept
             incoming("queue/pause", signed("queue/pause", {"reason": "lunch"}, "r-2"), serial=5),
             incoming("queue/resume", {}, client="office-2", serial=6)]
    answers = station.loop.run_until_complete(station.daemon.intake.answer_batch(batch))
    assert [a["status"] for a in answers] == ["ok"] * 6, answers
    signer = key_id(public_key_base64(KEY))
    rows = station._store(lambda store: actors(store.conn))[-6:]
    assert rows == [("job_submitted", jobs[0]["job_id"], signer), ("job_submitted", jobs[1]["job_id"], "mqtt:office-2"),
                    ("job_submitted", jobs[2]["job_id"], "mqtt"), ("job_submitted", jobs[3]["job_id"], "mqtt"),
                    ("queue_paused", None, signer), ("queue_resumed", None, "mqtt:office-2")]
    assert signer.startswith("key:") and len(signer) == 20


class WhoAsked(FakeDaemon):
    """A fake daemon that records who the control socket says is asking."""

    async def answer(self, command, raw, retained=False, topic=None):
        self.actors = getattr(self, "actors", []) + [current_actor()]
        return await super().answer(command, raw, retained, topic)


def test_the_control_socket_names_the_unix_user_at_the_other_end(served):
    server = served(WhoAsked())
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(server.path)
        sock.sendall(b'{"command": "queue/pause", "payload": {}}\n')
        assert json.loads(sock.makefile("rb").readline())["status"] == "ok"
    assert server.daemon.actors == [ME]


# -- kartuctl verify ----------------------------------------------------------------------------------


def append_row(conn, kind: str, detail: dict) -> None:
    """An audit row chained as the store chains them, written straight to the file (as a defect or an older
    kartud would have written it)."""
    prev = (conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone() or ["0" * 64])[0]
    at, body = rfc3339(START), json.dumps(detail, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256("\n".join([prev, at, kind, "", body]).encode()).hexdigest()
    conn.execute("INSERT INTO audit (at, kind, job_id, detail, prev_hash, hash) VALUES (?, ?, NULL, ?, ?, ?)",
                 (at, kind, body, prev, digest))


def test_verify_finds_a_row_that_names_nobody_after_actors_began(store):
    append_row(store.conn, "printer_cleaned", {"note": "an older kartud"})   # before actors: legacy
    store.record_cleaning("named")
    assert verify(store.conn)["actors"] == {"named": 1, "legacy": 1, "unnamed": [], "unnamed_count": 0, "ok": True}
    append_row(store.conn, "printer_cleaned", {"note": "a defect"})
    append_row(store.conn, "printer_cleaned", {"note": "someone", "actor": "root"})
    result = verify(store.conn)
    assert result["audit_broken_at"] is None                 # the chain holds; the rows still name nobody
    assert result["actors"]["unnamed"] == [3, 4] and not result["ok"]


def end_and_erase(store, manual_clock, serials) -> None:
    store.receive_blanks(f"B-{serials[0]}", "KTP_EL", len(serials), None)
    for serial in serials:
        store.submit_job(new_job(serial))
        store.claim(f"j-{serial:04d}")
        store.mark_printed(f"j-{serial:04d}", None)
    manual_clock.advance(2 * 86400)
    assert store.erase_personal_data(manual_clock.now(), 1) == len(serials)


def test_verify_finds_personal_data_erased_without_an_erasure_row(store, manual_clock):
    end_and_erase(store, manual_clock, [1, 2, 3])
    end_and_erase(store, manual_clock, [4])
    erasure = verify(store.conn)["erasure"]
    assert (erasure["runs"], erasure["erased_jobs"], erasure["counted"], erasure["ok"]) == (2, 4, 4, True)
    assert [a for _, _, a in actors(store.conn, "personal_data_erased")] == ["kartud", "kartud"]
    store.submit_job(new_job(5))
    store.cancel_job("j-0005")
    # Erased behind the audit's back (a defect, or someone with the file): no run counts it.
    store.conn.execute("UPDATE jobs SET pii_erased_at = ? WHERE job_id = 'j-0005'",
                       (rfc3339(manual_clock.now() + timedelta(seconds=1)),))
    result = verify(store.conn)
    assert not result["erasure"]["ok"] and not result["ok"]
    assert (result["erasure"]["erased_jobs"], result["erasure"]["counted"]) == (5, 4)


def test_verify_answers_for_a_whole_station_that_named_everyone(optional_station):
    station = optional_station
    station.ask([("queue/pause", json.dumps(signed("queue/pause", {}, "r-9")).encode()),
                 ("queue/resume", b"{}")])
    result = station._store(lambda store: verify(store.conn))
    assert result["ok"] and result["actors"]["legacy"] == 0 and result["actors"]["named"] == result["audit_rows"]


def test_the_store_thread_sees_the_actor_of_the_task_that_called_it(optional_station):
    daemon = optional_station.daemon

    async def ask():
        with acting_as("unix:operator1"):
            return await daemon.db(current_actor)

    assert optional_station.loop.run_until_complete(ask()) == "unix:operator1"
    assert optional_station.loop.run_until_complete(daemon.db(current_actor)) == "kartud"
    assert asyncio.iscoroutinefunction(daemon.db)
