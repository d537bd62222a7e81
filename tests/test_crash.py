"""The crash harness: SIGKILL the real daemon at every transition point and at random instants, then check
the promises against the simulator's record of what physically left the printer.

``KARTUD_CRASH_KILLS`` sets how many random kills the random run makes (200 by default, as in CI;
the documented long run is 2,000: ``KARTUD_CRASH_KILLS=2000 ./scripts/test tests/test_crash.py``).
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections import Counter

import pytest
from print_room import chip_sha
from printer_fixtures import SimProcess

from kartud.service.crashpoints import POINTS
from kartud.ledger.store import verify_audit_chain

RANDOM_KILLS = int(os.environ.get("KARTUD_CRASH_KILLS", "200"))
KILLS_PER_TEST = 40          # each test stays well under a minute; the seeds together make RANDOM_KILLS
SEEDS = list(range(max(1, -(-RANDOM_KILLS // KILLS_PER_TEST))))


def check_promises(room, acknowledged: dict[str, dict]) -> dict:
    """Every promise of DESIGN.md, checked from the outside after the daemon has stopped."""
    conn = sqlite3.connect(f"file:{room.db_path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        verify_audit_chain(conn)
        states = dict(conn.execute("SELECT job_id, state FROM jobs"))
        missing = set(acknowledged) - set(states)
        assert not missing, f"acknowledged jobs lost: {sorted(missing)[:5]}"
        assert set(states.values()) <= {"printed", "in_doubt", "failed"}, Counter(states.values())
        for row in conn.execute("SELECT card_type, received, adjusted, in_stock, reserved, printed, spoiled"
                                " FROM blank_stock"):
            card_type, received, adjusted, in_stock, reserved, printed, spoiled = row
            assert received + adjusted == in_stock + reserved + printed + spoiled, row
            in_doubt = conn.execute("SELECT COUNT(*) FROM jobs WHERE state = 'in_doubt' AND card_type = ?",
                                    (card_type,)).fetchone()[0]
            assert reserved == in_doubt          # a blank stays reserved exactly while its job is in doubt
        ledger = conn.execute("SELECT COUNT(*), COUNT(DISTINCT record_id) FROM printed_records").fetchone()
        assert ledger[0] == ledger[1]
    finally:
        conn.close()
    outputs = Counter(c["chip_files_sha256"] for c in room.cards() if c["destination"] == "output")
    assert not [sha for sha, n in outputs.items() if n > 1], "a record left the printer twice"
    for job_id, job in acknowledged.items():
        out = outputs[chip_sha(job)]
        if states[job_id] == "printed":
            assert out == 1, f"{job_id} printed but not in the output hopper"
        else:
            assert out <= 1
    return Counter(states.values())


def settle(room, correlations=()) -> None:
    """Start the daemon cleanly, let it answer what is outstanding and finish every card, then stop it."""
    room.env.pop("KARTUD_CRASH_AT", None)
    room.overrides["sim.clock_speed"] = "1000"              # drain the queue quickly
    room.start()
    for correlation in correlations:
        assert room.office.wait_answer(correlation, timeout=20)["status"] == "ok"
    # Requests the broker kept for the daemon's session arrive at its connect, ahead of this one: once it is
    # answered they are taken, and an empty queue below is empty for good.
    assert room.office.request("status/get", {}, timeout=20)["status"] == "ok"
    deadline = time.monotonic() + 60
    # The database is the truth; there is no single event that says "all done", so look until it is.
    while room.query("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'printing')") != [(0,)]:
        assert time.monotonic() < deadline, "the queue never drained"
        time.sleep(0.05)
    assert room.stop() == 0


# after_spoiled needs a failing card: test_a_kill_right_after_a_spoiled_card_keeps_every_promise below.
@pytest.mark.parametrize("point", [p for p in POINTS if p != "after_spoiled"])
def test_a_kill_at_every_transition_point_keeps_every_promise(room, point):
    room.env["KARTUD_CRASH_AT"] = point
    room.start()
    room.receive_blanks(10)
    jobs = [room.job() for _ in range(3)]
    correlations = [room.office.send("job/submit", job) for job in jobs]
    assert room.process.wait(30) == -9                      # it died where it was told to
    settle(room, correlations)                              # every request is answered in the end
    counts = check_promises(room, {j["job_id"]: j for j in jobs})
    if point in ("after_claim", "after_feed", "after_encode", "after_print", "after_eject"):
        assert counts["in_doubt"] == 1 and counts["printed"] == 2
        if point == "after_eject":                          # the card had left: it must not leave again
            doubtful = room.query("SELECT job_id FROM jobs WHERE state = 'in_doubt'")[0][0]
            job = next(j for j in jobs if j["job_id"] == doubtful)
            assert Counter(c["chip_files_sha256"] for c in room.cards())[chip_sha(job)] == 1
    else:
        assert counts["printed"] == 3


@pytest.mark.parametrize("seed", SEEDS)
def test_random_kills_while_a_producer_keeps_submitting(room, seed):
    rng = random.Random(4001 + seed)
    kills = min(KILLS_PER_TEST, RANDOM_KILLS - seed * KILLS_PER_TEST)
    room.overrides["sim.clock_speed"] = "150"                # 0.1 s a card: kills land mid-card often
    room.start()
    room.receive_blanks(kills * 4 + 100)
    acknowledged: dict[str, dict] = {}
    refused: list[dict] = []
    stop = threading.Event()

    def producer():
        # Like an office server: send each job until the box answers, then the next.
        while not stop.is_set():
            job = room.job()
            while not stop.is_set():
                try:
                    answer = room.office.request("job/submit", job, timeout=1.0)
                except TimeoutError:
                    continue
                if answer["status"] == "ok":
                    acknowledged[job["job_id"]] = job
                else:
                    refused.append(answer)
                break
            time.sleep(rng.uniform(0.05, 0.3))

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.05, 0.5))               # a random instant is the point of this test
            room.kill()
            # Most starts are killed at once, even mid-start; some get online first, so that on a slow machine
            # the box still gets cards through between kills.
            room.start(wait_online=rng.random() < 0.3)
    finally:
        stop.set()
        thread.join(10)
        room.kill()
    settle(room)
    # A request in hand at two kills in a row cannot be told from one that kills the box (contract 1.1): it is
    # answered internal_error and set aside for a person, never lost. Nothing else is refused.
    died_twice = [a for a in refused if a["error"]["code"] == "internal_error"]
    assert [a for a in refused if a not in died_twice] == []
    assert len(died_twice) <= room.query("SELECT COUNT(*) FROM quarantine WHERE why LIKE 'died twice%'")[0][0]
    counts = check_promises(room, acknowledged)
    assert counts["printed"] > 0 and len(acknowledged) > 0, (dict(counts), len(acknowledged), len(room.cards()))
    print(f"\nseed {seed}, {kills} kills: {len(acknowledged)} jobs acknowledged, {dict(counts)}, "
          f"{len(room.cards())} cards left the printer, {len(died_twice)} set aside after two kills")


def test_a_card_left_in_the_printer_by_a_killed_daemon_goes_to_the_reject_box_at_the_next_start(serial_room):
    room = serial_room
    printer = SimProcess(room.pty_path, os.path.join(room.dir, "cards"), "--no-chip", "--seconds-per-card", "0.3")
    try:
        room.env["KARTUD_CRASH_AT"] = "after_print"          # printed, not yet ejected: the card is inside
        room.start()
        room.receive_blanks(5, "KIA")
        job = room.job("KIA")
        room.submit(job)
        assert room.process.wait(30) == -9
        assert room.cards() == []                            # nothing has left the printer
        room.env.pop("KARTUD_CRASH_AT")
        room.start()
        assert [c["destination"] for c in room.cards()] == ["reject"]
        state = room.office.request("status/get", {})["data"]
        assert state["in_doubt_jobs"] == [job["job_id"]]
        assert "its card was still inside the printer; it is in the reject box" in room.log()
        # The card is charged to the job that left it (its in-doubt episode), never to the next job.
        assert room.query("SELECT job_id FROM audit WHERE kind = 'card_rejected'") == [(job["job_id"],)]
        spoiled = room.office.request("job/resolve", {"job_id": job["job_id"], "outcome": "spoiled",
                                                      "note": "the half-made card was in the reject box"})
        assert spoiled["data"]["state"] == "queued"
        room.wait_state(job["job_id"], "printed")
        assert [c["destination"] for c in room.cards()] == ["reject", "output"]
        assert room.stop() == 0
        check_promises(room, {})
    finally:
        printer.stop()                                       # the room closes with its fixture


def test_a_kill_right_after_a_spoiled_card_keeps_every_promise(serial_room):
    from kartud.hw.sim.sim_control import send_command

    room = serial_room
    control = os.path.join(room.dir, "sim-control.sock")
    printer = SimProcess(room.pty_path, os.path.join(room.dir, "cards"), "--no-chip", "--seconds-per-card", "0.3",
                         "--control", control)
    try:
        assert send_command(control, "arm print ribbon_ended") == "ok"      # the first card fails mid-print
        room.env["KARTUD_CRASH_AT"] = "after_spoiled"
        room.start()
        room.receive_blanks(5, "KIA")
        job = room.job("KIA")
        room.submit(job)
        assert room.process.wait(30) == -9
        assert [c["destination"] for c in room.cards()] == ["reject"]
        assert send_command(control, "clear ribbon_ended") == "ok"
        room.env.pop("KARTUD_CRASH_AT")
        room.start()
        room.wait_state(job["job_id"], "printed")                            # the second blank, once
        assert [c["destination"] for c in room.cards()] == ["reject", "output"]
        assert room.query("SELECT attempts FROM jobs") == [(2,)]
        assert room.query("SELECT printed, spoiled, reserved FROM blank_stock WHERE card_type = 'KIA'") == \
            [(1, 1, 0)]
        assert room.stop() == 0
        check_promises(room, {})
    finally:
        printer.stop()                                       # the room closes with its fixture
