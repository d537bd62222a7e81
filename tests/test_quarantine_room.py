"""Quarantine against the daemon process on a real broker: a defect is answered and set aside; a message that kills
the process while handled is recognised on redelivery and set aside after its second death, its batch unharmed."""

from __future__ import annotations

from print_room import ROOT

from kartud.service.boundary import fingerprint

PII = "Siti Rahayu binti Slamet"


def test_a_request_that_meets_a_defect_is_answered_acknowledged_and_set_aside(room):
    room.env["KARTUD_DEFECT_AT"] = "while_handling@queue/pause"
    room.start()
    raw = f'{{"request_id": "r-bad", "reason": "{PII}"}}'.encode()
    answer = room.office.request("queue/pause", raw)
    assert answer["request_id"] == "r-bad" and answer["error"]["code"] == "internal_error"
    assert room.office.request("status/get", {"request_id": "r-next"})["data"]["mode"] != "paused"
    sha = fingerprint(f"{ROOT}/request/queue/pause", raw)
    assert room.query("SELECT seq, command, size, message_sha256, why FROM quarantine") == \
        [(1, "queue/pause", len(raw), sha, "InjectedDefect")]
    log = room.log()
    assert f"InjectedDefect while handling queue/pause ({len(raw)} bytes, sha256 {sha})" in log
    assert PII not in log

    # It was acknowledged: a restart gets it no more (and the daemon stops cleanly, status 0).
    assert room.stop() == 0
    room.start()
    assert room.office.request("status/get", {"request_id": "r-again"})["status"] == "ok"
    assert room.stop() == 0
    assert room.query("SELECT COUNT(*) FROM quarantine") == [(1,)]
    assert room.query("SELECT * FROM requests_handling") == []    # every mark released after its answer


def test_a_message_that_kills_the_daemon_twice_is_set_aside_and_its_batch_is_not(room):
    room.env["KARTUD_CRASH_AT"] = "while_handling@maintenance/cleaned"   # every run dies handling that command
    room.start()
    office = room.office
    sent = [office.send("blanks/receive", {"request_id": "b-1", "batch_id": "B1", "card_type": "KIA", "count": 5},
                        wait=False),
            office.send("maintenance/cleaned", {"request_id": "k-1", "note": PII}, wait=False),
            office.send("blanks/receive", {"request_id": "b-2", "batch_id": "B2", "card_type": "KIA", "count": 7},
                        wait=False)]
    assert room.process.wait(20) == -9                       # first death
    room.start(wait_online=False)                            # the broker redelivers what was not acknowledged
    assert room.process.wait(20) == -9                       # second death: the killer, handled alone
    room.start()
    answers = [office.wait_answer(correlation, timeout=20) for correlation in sent]
    assert [a["request_id"] for a in answers] == ["b-1", "k-1", "b-2"]
    assert answers[0]["status"] == answers[2]["status"] == "ok"
    assert answers[1]["error"]["code"] == "internal_error" and "stopped twice" in answers[1]["error"]["message"]
    assert room.query("SELECT command, why FROM quarantine") == \
        [("maintenance/cleaned", "died twice with the process while being handled")]
    assert room.query("SELECT batch_id, count FROM blank_batches ORDER BY batch_id") == [("B1", 5), ("B2", 7)]
    assert room.query("SELECT COUNT(*) FROM cleanings") == [(0,)]
    assert office.request("status/get", {"request_id": "next"})["status"] == "ok"
    assert room.process.poll() is None
    assert PII not in room.log()
    assert room.stop() == 0
    assert room.query("SELECT COUNT(*) FROM requests_handling") == [(0,)]
