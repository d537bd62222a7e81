"""One simulated print room for the tests: its config, daemon process, office client, and what left the printer."""

from __future__ import annotations

import base64
import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import time

from card_faces import SMALL_FRONT

from kartud.hw.sim.card import files_sha256
from kartud.room.fake_people import fake_job
from kartud.room.office import OfficeClient
from kartud.room.sim_room import PrivateBroker, sim_config, start_daemon

STATION = "test-room-01"
ROOT = f"kartud/{STATION}"


class Room:
    """One simulated print room: config, daemon process, office client, and what left the printer."""

    def __init__(self, directory, broker: PrivateBroker):
        self.dir = str(directory)
        self.broker = broker
        self.process: subprocess.Popen | None = None
        self.office: OfficeClient | None = None
        self.rng = random.Random(7)
        self.serial = 0
        self.overrides: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.seen: list[dict] = []

    @property
    def config_path(self) -> str:
        return sim_config(self.dir, self.broker.port, station=STATION, **self.overrides)

    @property
    def db_path(self) -> str:
        return os.path.join(self.dir, "kartud.db")

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, "daemon.log")

    def start(self, wait_online: bool = True) -> "Room":
        if wait_online:
            office = self.connect()
            with office.state_changed:             # wait for this daemon's "online", not a retained one
                office.availability = None
        self.process = start_daemon(self.config_path, self.log_path, self.env)
        if wait_online:
            self.office.wait_availability("online", timeout=20)
        return self

    def connect(self) -> OfficeClient:
        if self.office is None:
            self.office = OfficeClient("127.0.0.1", self.broker.port, ROOT)
        return self.office

    def kill(self) -> None:
        """SIGKILL the daemon, as a power cut would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(30)

    def log(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def wait_log(self, text: str, more_than: int = 0, timeout: float = 20.0) -> int:
        """Wait until ``text`` is in the daemon's log more than ``more_than`` times; returns how many times.
        For inner events that only the log tells of: the file is read every 20 ms."""
        deadline = time.monotonic() + timeout
        while (count := self.log().count(text)) <= more_than:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not in the daemon's log {more_than + 1} times within {timeout} s")
            time.sleep(0.02)
        return count

    def job(self, card_type: str = "KTP_EL", **fields) -> dict:
        """A new fake job payload (a fresh person, record and chip files each time)."""
        self.serial += 1
        return {**fake_job(self.rng, self.serial, card_type, job_id=f"j-{self.serial:04d}",
                           record_id=f"PRR-9999-{self.serial:06d}", front_png=SMALL_FRONT), **fields}

    def wait_event(self, predicate, timeout: float = 20.0) -> dict:
        """The first job event (from now on) whose job view satisfies ``predicate``; all are kept in ``seen``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching job event within {timeout} s")
            try:
                event = self.office.events.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(event)
            if predicate(event["job"]):
                return event

    def wait_state(self, job_id: str, state: str, timeout: float = 20.0) -> dict:
        """Wait for ``job_id`` to reach ``state`` (or find it already there)."""
        if any(e["job"]["job_id"] == job_id and e["job"]["state"] == state for e in self.seen):
            return next(e for e in self.seen if e["job"]["job_id"] == job_id and e["job"]["state"] == state)
        return self.wait_event(lambda j: j["job_id"] == job_id and j["state"] == state, timeout)

    def steps_to_printed(self, job_id: str) -> list[tuple]:
        """``(state, step)`` of each event of ``job_id`` since it last went back to the queue: the run that took
        its card through the printer.

        An earlier run is allowed only as a release before any blank moved: the feed refused because the
        printer did not answer in time (one reply later than ``reply_timeout_s`` on a starved machine; CI saw
        it on 2026-12-02), so its attempt did not count. The caller checks on the simulator's own record
        (:meth:`cards`) that nothing else left the printer."""
        events = [e["job"] for e in self.seen if e["job"]["job_id"] == job_id]
        last = max(i for i, job in enumerate(events) if job["state"] == "queued")
        for earlier in events[1:last + 1]:
            if earlier["state"] == "queued":
                assert (earlier["reason"], earlier["attempts"]) == ("printer_disconnected", 0), \
                    f"the job went back to the queue ({earlier['reason']}, attempt {earlier['attempts']}); " \
                    f"see {self.log_path}"
        return [(job["state"], job["step"]) for job in events[last:]]

    def submit(self, job: dict) -> dict:
        return self.office.request("job/submit", job)

    def receive_blanks(self, count: int = 100, card_type: str = "KTP_EL", batch_id: str | None = None) -> dict:
        return self.office.request("blanks/receive", {"batch_id": batch_id or f"B-{card_type}-{count}",
                                                      "card_type": card_type, "count": count})

    def cards(self) -> list[dict]:
        """Every card that physically left the simulated printer, from its own record."""
        return cards_left(self.dir)

    def query(self, sql: str, *args) -> list[tuple]:
        """Read the daemon's database from outside (read-only), as an auditor would."""
        return read_only_query(self.db_path, sql, *args)

    def close(self) -> None:
        if self.office is not None:
            self.office.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def cards_left(directory: str) -> list[dict]:
    """Every card that physically left the simulated printer of the room in ``directory``, from its own record."""
    path = os.path.join(directory, "cards", "cards.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_only_query(db_path: str, sql: str, *args) -> list[tuple]:
    """Rows of ``sql`` from a daemon's database, opened read-only (as an auditor would, beside the daemon)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def chip_sha(job: dict) -> str:
    """The contract's chip_files_sha256 of a job's chip files."""
    files = {int(fid, 16): base64.b64decode(data) for fid, data in job["chip"]["files"].items()}
    return files_sha256(files)
