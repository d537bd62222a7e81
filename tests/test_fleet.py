"""A fleet on one broker: at least 20 daemons (simulated printers) and the office's dispatcher placing jobs on them.

The long variant is a documented command (docs/fleet.md)::

    KARTUD_FLEET_STATIONS=100 KARTUD_FLEET_JOBS=1000 ./scripts/test tests/test_fleet.py -s
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import time

import pytest
from card_faces import SMALL_FRONT
from print_room import chip_sha

from kartud.room.dispatcher import Dispatcher
from kartud.room.dispatcher import main as dispatcher_main
from kartud.room.fake_people import fake_job
from kartud.room.office import FleetClient
from kartud.room.sim_room import sim_config, start_daemon

STATIONS = int(os.environ.get("KARTUD_FLEET_STATIONS", "20"))
JOBS = int(os.environ.get("KARTUD_FLEET_JOBS", "60"))
DELIVER_WITHIN_S = 2.0               # the dispatcher's Message Expiry on job/submit, short for the test
WAIT_S = 60 + STATIONS + JOBS // 4    # the longest wait for the fleet; the default run takes about 20 s
VICTIM = "fleet-01"                  # a KTP_EL station, paused, then frozen, then killed


# About 20 s on two quiet cores; the margin is for machines as loaded as this project's (load average 20-45
# seen: 20 daemons then take 20 s just to start).
pytestmark = pytest.mark.timeout(120 if (STATIONS, JOBS) == (20, 60) else 4 * WAIT_S)


def station_name(i: int) -> str:
    return f"fleet-{i:02d}"


def layout(i: int) -> tuple[str, int]:
    """Station ``i``'s card type and the blanks it receives: every fifth prints KIA; a few KTP_EL ones have none."""
    if i % 5 == 4:
        return "KIA", max(20, 2 * JOBS // STATIONS)
    return "KTP_EL", 0 if i % 7 == 3 else max(20, 3 * JOBS // STATIONS)


class Fleet:
    """The daemons of one test, each in its own folder with its own simulated printer."""

    def __init__(self, root, broker_port: int):
        self.root, self.port = root, broker_port
        self.configs: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        for i in range(STATIONS):
            name, (card_type, _) = station_name(i), layout(i)
            directory = str(root / name)
            os.makedirs(directory)
            # Fast settings: 0.15 s a card (15 s of simulated time at 100 times speed). The victim's clock runs
            # at real speed: restarted minutes later, a clock 100 times fast would start hours behind its own
            # ledger, and the daemon would hold its queue for a wrong clock (clock_not_set).
            speed, seconds = ("1.0", "0.15") if name == VICTIM else ("100.0", "15.0")
            self.configs[name] = sim_config(directory, broker_port, station=name, **{
                "station.card_types": f'["{card_type}"]', "printer.sim.seconds_per_card": seconds,
                "sim.clock_speed": speed, "printer.status_poll_s": "1.0"})

    def start(self, name: str) -> None:
        self.processes[name] = start_daemon(self.configs[name], str(self.root / name / "daemon.log"))

    def cards(self, name: str) -> list[dict]:
        """Every card that physically left ``name``'s simulated printer, from its own record."""
        path = self.root / name / "cards" / "cards.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def fleet(tmp_path, broker):
    fleet = Fleet(tmp_path, broker.port)
    yield fleet
    fleet.close()


def everyone_up(names):
    return lambda f: all(f.availability.get(n) == "online" and n in f.states for n in names)


def test_a_dispatcher_places_jobs_on_twenty_stations_and_reroutes_only_what_was_never_acknowledged(fleet, broker):
    names = [station_name(i) for i in range(STATIONS)]
    rng = random.Random(17)
    jobs = [fake_job(rng, n, "KIA" if n % 5 == 0 else "KTP_EL", job_id=f"f-{n:05d}",
                     record_id=f"PRR-9999-{n:06d}", front_png=SMALL_FRONT) for n in range(1, JOBS + 1)]
    with FleetClient("127.0.0.1", broker.port) as office:
        began = time.monotonic()
        for name in names:
            fleet.start(name)
        office.wait_for(everyone_up(names), timeout=WAIT_S)
        startup_s = time.monotonic() - began
        for i, name in enumerate(names):
            card_type, count = layout(i)
            if count == 0:
                continue                        # no blanks received: this station cannot take a job
            answer = office.request(name, "blanks/receive", {"batch_id": f"B-{name}", "card_type": card_type,
                                                             "count": count, "request_id": f"blanks-{name}"},
                                    timeout=30)
            assert answer["status"] == "ok", answer
        office.wait_for(lambda f: all(sum(b["in_stock"] for b in f.states[n]["blanks"].values()) == layout(i)[1]
                                      for i, n in enumerate(names)), timeout=30)
        dispatcher = Dispatcher(office, deliver_within_s=DELIVER_WITHIN_S)
        dispatched = time.monotonic()

        # Phase 1: a third of the jobs, two of them pinned to the victim; all acknowledged where they went.
        # The victim is paused first, so that its acknowledged jobs are still queued when it dies (a card
        # mid-way would be in doubt, waiting for a person) and no other job is chosen for it.
        assert office.request(VICTIM, "queue/pause", {"reason": "test", "request_id": "pause"}, timeout=30)["status"] == "ok"
        office.wait_for(lambda f: f.states[VICTIM]["mode"] == "paused")
        first, rest = jobs[: JOBS // 3], jobs[JOBS // 3:]
        pinned = [j for j in first if j["card_type"] == "KTP_EL"][:2]
        for job in first:
            assert dispatcher.submit(job, station=VICTIM if job in pinned else None) is not None
        dispatcher.wait_until(lambda d: d.count("sent") == 0, timeout=WAIT_S)
        acknowledged_at_victim = {p.job["job_id"] for p in dispatcher.placements.values() if p.station == VICTIM}
        assert len(acknowledged_at_victim) >= 2

        # Phase 2: the victim freezes (still "online" to the broker), two jobs go to it and stay unanswered,
        # then it dies: its Last Will. The rest of the jobs are placed meanwhile.
        fleet.processes[VICTIM].send_signal(signal.SIGSTOP)
        unanswered = [j for j in rest if j["card_type"] == "KTP_EL"][:2]
        for job in unanswered:
            assert dispatcher.submit(job, station=VICTIM) == VICTIM
        for job in rest:
            if job not in unanswered:
                dispatcher.submit(job)
        fleet.processes[VICTIM].send_signal(signal.SIGKILL)
        fleet.processes[VICTIM].wait()
        office.wait_for(lambda f: f.availability.get(VICTIM) == "offline", timeout=20)
        assert fleet.cards(VICTIM) == []            # its acknowledged jobs were still queued there

        # Everything but the victim's acknowledged jobs prints elsewhere; what it never answered is re-routed.
        others = {j["job_id"] for j in jobs} - acknowledged_at_victim
        dispatcher.wait_until(lambda d: all(d.placements[j].state == "printed" for j in others), timeout=WAIT_S)
        moved = {job_id for job_id, old, new in dispatcher.rerouted}
        assert {j["job_id"] for j in unanswered} <= moved and not moved & acknowledged_at_victim
        assert all(old == VICTIM and new != VICTIM for _, old, new in dispatcher.rerouted)
        assert all(dispatcher.placements[j].station == VICTIM for j in acknowledged_at_victim)   # they stay

        # The victim returns: its acknowledged jobs print there; the expired requests never reach it.
        office.availability.pop(VICTIM)
        fleet.start(VICTIM)
        office.wait_for(lambda f: f.availability.get(VICTIM) == "online", timeout=30)
        assert office.request(VICTIM, "queue/resume", {"request_id": "resume"}, timeout=30)["status"] == "ok"
        dispatcher.wait_until(lambda d: all(p.state == "printed" for p in d.placements.values()), timeout=WAIT_S)
        total_s = time.monotonic() - dispatched
        assert dispatcher.late == []

    # The physical truth: every record exactly once across the fleet's printers, each where the dispatcher
    # says, and nothing at stations without blanks of the type.
    placed = {p.job["job_id"]: p.station for p in dispatcher.placements.values()}
    by_chip = {chip_sha(j): j for j in jobs if j["card_type"] == "KTP_EL"}
    chips = collections.Counter()
    kia_cards = collections.Counter()
    for i, name in enumerate(names):
        for card in fleet.cards(name):
            assert card["destination"] == "output"
            if card["chip_files_sha256"] is None:
                kia_cards[name] += 1
            else:
                chips[card["chip_files_sha256"]] += 1
                assert placed[by_chip[card["chip_files_sha256"]]["job_id"]] == name
    assert chips == collections.Counter({sha: 1 for sha in by_chip})
    assert kia_cards == collections.Counter(s for j, s in placed.items() if dispatcher.placements[j].card_type == "KIA")
    assert all(layout(int(s[-2:]))[0] == dispatcher.placements[j].card_type and layout(int(s[-2:]))[1] > 0
               for j, s in placed.items())
    print(f"\nfleet: {STATIONS} daemons online {startup_s:.1f} s after the first start; {JOBS} jobs printed "
          f"{total_s:.1f} s after the first dispatch (victim frozen, killed and restarted); "
          f"{len(dispatcher.rerouted)} re-routed")


def test_the_dispatcher_command_places_a_file_of_jobs_and_says_where(room, tmp_path, capsys):
    room.start()
    room.receive_blanks(5)
    jobs = [room.job(), room.job()]
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    assert dispatcher_main(["--port", str(room.broker.port), "--timeout", "30", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [[job["job_id"], "test-room-01"] for job in jobs]
    assert all(line.split("\t")[2] in ("acknowledged", "queued", "printing", "printed") for line in lines)
    for job in jobs:
        room.wait_state(job["job_id"], "printed")
    assert sorted(c["chip_files_sha256"] for c in room.cards()) == sorted(chip_sha(j) for j in jobs)


@pytest.mark.parametrize("text, problem", [("not json\n", "jobs.jsonl:1: not JSON"),
                                           ('{"job_id": "j-1"}\n', "jobs.jsonl:1: a job needs at least")])
def test_the_dispatcher_command_names_the_line_of_a_bad_jobs_file(tmp_path, capsys, text, problem):
    path = tmp_path / "jobs.jsonl"
    path.write_text(text)
    assert dispatcher_main(["--port", "1", str(path)]) == 2
    error = capsys.readouterr().err
    assert problem in error and "Traceback" not in error
