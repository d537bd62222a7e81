"""Trying to break the promises: SIGKILL mid-card, broker killed, SIGTERM with a card in hand, systemd's view."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter

from print_room import chip_sha

from kartud.room.sim_room import start_daemon

# Armed with WATCHDOG_USEC, the daemon's health watchdog probes its store's one thread every half interval and logs
# when the probe is not answered: the sign that a commit waits on the locked database, so the request that made it
# is in the daemon's hands, not yet committed. (Nothing else writes while these tests hold the lock.)
WATCHDOG_USEC = "1000000"                          # a tick every 0.5 s; the store must answer within 0.25 s
STORE_HELD = "the store's thread did not answer"


def _outputs_by_chip(room) -> Counter:
    return Counter(c["chip_files_sha256"] for c in room.cards() if c["destination"] == "output")


def _blank_equation_holds(room) -> bool:
    for received, adjusted, in_stock, reserved, printed, spoiled in room.query(
            "SELECT received, adjusted, in_stock, reserved, printed, spoiled FROM blank_stock"):
        if received + adjusted != in_stock + reserved + printed + spoiled:
            return False
    return True


def test_sigkill_with_jobs_queued_prints_each_once_and_the_card_in_hand_never_again(room):
    room.overrides["sim.clock_speed"] = "10"          # 1.5 s a card: the kill lands mid-card
    room.start()
    room.receive_blanks(100)
    jobs = [room.job() for _ in range(6)]
    for job in jobs:
        assert room.submit(job)["status"] == "ok"
    victim = jobs[0]
    room.wait_event(lambda j: j["job_id"] == victim["job_id"] and j["step"] == "printing")
    room.kill()

    room.overrides["sim.clock_speed"] = "200"
    room.start()
    for job in jobs[1:]:
        room.wait_state(job["job_id"], "printed")
    room.office.wait_state(lambda s: s["mode"] == "idle")

    assert room.office.request("job/get", {"job_id": victim["job_id"]})["data"]["state"] == "in_doubt"
    outputs = _outputs_by_chip(room)
    assert all(outputs[chip_sha(job)] == 1 for job in jobs[1:])
    assert outputs[chip_sha(victim)] == 0                     # the card in hand died with the printer's process
    state = room.office.request("status/get", {})["data"]
    assert state["queue"] == {"queued": 0, "in_doubt": 1} and state["reason"] == "in_doubt_jobs"
    stock = room.query("SELECT in_stock, reserved, printed, spoiled FROM blank_stock WHERE card_type = 'KTP_EL'")
    assert stock == [(94, 1, 5, 0)]                           # the doubtful blank stays reserved until resolved
    assert "in doubt" in room.log()


def test_random_sigkills_never_print_a_record_twice_nor_lose_a_job(room):
    rng = random.Random(2026)
    room.start()
    room.receive_blanks(100)
    jobs = [room.job() for _ in range(12)]
    for job in jobs:
        assert room.submit(job)["status"] == "ok"
    for _ in range(5):
        time.sleep(rng.uniform(0.0, 0.4))  # a random instant is the point of this test
        room.kill()
        room.start()
    room.office.wait_state(lambda s: s["queue"]["queued"] == 0 and s["mode"] != "printing", timeout=30)

    states = dict(room.query("SELECT job_id, state FROM jobs"))
    assert sorted(states) == sorted(j["job_id"] for j in jobs)        # every acknowledged job is there
    assert set(states.values()) <= {"printed", "in_doubt"}
    outputs = _outputs_by_chip(room)
    for job in jobs:
        assert outputs[chip_sha(job)] == (1 if states[job["job_id"]] == "printed" else 0) \
            or (states[job["job_id"]] == "in_doubt" and outputs[chip_sha(job)] <= 1)
    assert max(outputs.values()) == 1
    assert _blank_equation_holds(room)
    assert room.query("PRAGMA integrity_check") == [("ok",)]


def test_the_broker_dies_printing_goes_on_and_the_daemon_comes_back(room):
    room.overrides["sim.clock_speed"] = "20"          # 0.75 s a card
    room.start()
    room.receive_blanks(10)
    jobs = [room.job() for _ in range(3)]
    for job in jobs:
        room.submit(job)
    room.wait_state(jobs[0]["job_id"], "printing")
    room.broker.kill()
    deadline = time.monotonic() + 20
    while len(room.cards()) < 3 and time.monotonic() < deadline:  # no broker, so no event to await: watch the printer
        time.sleep(0.05)
    assert len(room.cards()) == 3

    office = room.office
    with office.state_changed:
        office.state, office.availability = None, None
    room.broker.start()                                  # same port, an empty broker: no retained messages left
    office.wait_availability("online", timeout=20)
    state = office.wait_state(lambda s: s["today"]["printed"] == 3, timeout=20)
    assert state["queue"]["queued"] == 0
    assert "lost the broker" in room.log()


def test_sigkill_leaves_the_last_will(room):
    room.start()
    room.kill()
    room.office.wait_availability("offline")


def test_systemd_sees_ready_status_and_stopping_and_sigterm_finishes_the_card_in_hand(room, notify_socket):
    room.env["NOTIFY_SOCKET"] = notify_socket.path
    room.env["WATCHDOG_USEC"] = "400000"             # pings every 0.2 s
    room.overrides["sim.clock_speed"] = "10"
    room.start(wait_online=False)
    notify_socket.wait_for("READY=1")
    notify_socket.wait_for("WATCHDOG=1")
    # READY only after the store is open, migrated and checked.
    conn = sqlite3.connect(room.db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    conn.close()

    office = room.connect()
    office.wait_availability("online")
    room.receive_blanks(5)
    job = room.job()
    room.submit(job)
    room.wait_event(lambda j: j["job_id"] == job["job_id"] and j["step"] == "printing")
    room.process.terminate()
    notify_socket.wait_for("STOPPING=1")
    assert room.process.wait(30) == 0
    assert any(m.startswith("STATUS=printing") for m in notify_socket.messages)

    assert room.query("SELECT state FROM jobs WHERE job_id = ?", job["job_id"]) == [("printed",)]
    assert _outputs_by_chip(room)[chip_sha(job)] == 1
    office.wait_availability("offline")
    assert "stopped cleanly" in room.log()


def test_a_request_is_acknowledged_only_after_its_commit(room):
    """With the database locked the daemon cannot commit; killed then, it must not have sent the PUBACK,
    so the broker hands the request to the restarted daemon, which commits and answers it."""
    room.env["WATCHDOG_USEC"] = WATCHDOG_USEC
    room.start()
    blocker = sqlite3.connect(room.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")              # the daemon's commit now waits on this lock
    held = room.log().count(STORE_HELD)
    job = room.job()
    correlation = room.office.send("job/submit", job)  # returns once the broker holds the request
    room.wait_log(STORE_HELD, more_than=held)       # the daemon has it: its commit waits on the lock
    room.kill()
    blocker.execute("ROLLBACK")
    blocker.close()
    assert room.query("SELECT COUNT(*) FROM jobs") == [(0,)]

    room.start()
    answer = room.office.wait_answer(correlation, timeout=20)
    assert answer["status"] == "ok" and answer["data"]["job_id"] == job["job_id"]
    assert room.query("SELECT job_id FROM jobs") == [(job["job_id"],)]


def test_the_daemon_starts_without_a_broker_and_connects_when_it_comes(room, notify_socket):
    room.env["NOTIFY_SOCKET"] = notify_socket.path
    room.broker.stop()
    room.start(wait_online=False)
    notify_socket.wait_for("READY=1")                # ready without the broker: the queue is local
    room.broker.start()
    room.connect().wait_availability("online", timeout=20)
    assert room.office.request("status/get", {})["data"]["mode"] == "idle"


def test_a_request_whose_message_expiry_passes_while_it_waits_is_answered_expired(room):
    room.env["WATCHDOG_USEC"] = WATCHDOG_USEC
    room.start()
    blocker = sqlite3.connect(room.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")                       # holds the daemon on the first request
    held = room.log().count(STORE_HELD)
    first = room.office.send("job/submit", room.job())
    room.wait_log(STORE_HELD, more_than=held)  # the first is alone in the daemon's commit: the second waits behind it
    late = room.office.send("job/submit", room.job(), expiry_s=1)
    time.sleep(1.5)                                          # the passing of time is what is under test
    blocker.execute("ROLLBACK")
    blocker.close()
    assert room.office.wait_answer(first)["status"] == "ok"
    answer = room.office.wait_answer(late)
    assert answer["status"] == "error" and answer["error"]["code"] == "expired"
    assert room.query("SELECT COUNT(*) FROM jobs") == [(1,)]


def test_a_second_daemon_on_the_same_database_refuses_to_start(room):
    room.start()
    second = start_daemon(room.config_path, room.log_path + ".second")
    assert second.wait(30) == 1
    with open(room.log_path + ".second") as handle:
        assert "another kartud is already running" in handle.read()
    assert room.office.request("status/get", {})["status"] == "ok"     # the first one is unharmed
