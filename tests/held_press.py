"""An in-process daemon on the simulated printer whose press a test holds at a named point, to force a race."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
from datetime import datetime, timezone

from card_faces import SMALL_FRONT
from print_room import chip_sha
from store_fixtures import TEST_KEY, key_file

from kartud.ledger.store import Store
from kartud.room.fake_people import fake_job
from kartud.rules.clock import ManualClock
from kartud.rules.config import from_dict
from kartud.rules.jobs import validate_submission
from kartud.service.daemon import Daemon
from kartud.service.faces import png_problem

MONDAY_9 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)      # 09:00 in Jakarta
WAIT_S = 30.0                                                      # a test that waits longer has failed


def closed_port() -> int:
    """A loopback port nobody listens on: the daemon's MQTT link keeps trying, which changes nothing here."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PressGate:
    """The press's test hook (``Press.hold``): every point the press passes is queued for the test, in order;
    a point named in ``hold`` stops the press there, the first time, until the test calls :meth:`release`."""

    def __init__(self, *hold: str):
        self.hold = set(hold)
        self.passed: asyncio.Queue = asyncio.Queue()
        self._go: asyncio.Event | None = None

    async def __call__(self, point: str, job: dict) -> None:
        await self.passed.put((point, job))
        if point in self.hold:
            self.hold.discard(point)
            self._go = asyncio.Event()
            await self._go.wait()

    def release(self) -> None:
        self._go.set()


class HeldRoom:
    """A daemon in this process (simulated printer and encoder, a manual clock) with jobs and blanks put in its
    database before it starts, and a :class:`PressGate` on its press. Use inside ``asyncio.run``."""

    def __init__(self, directory, blanks: int = 10, jobs: int = 2, gate: PressGate | None = None,
                 first: dict | None = None, **limits):
        self.dir = str(directory)
        self.clock = ManualClock(MONDAY_9)
        self.config = from_dict({
            "station": {"id": "held-01", "card_types": ["KTP_EL"]},
            "store": {"path": os.path.join(self.dir, "kartud.db"), "key_file": key_file(self.dir)},
            "mqtt": {"host": "127.0.0.1", "port": closed_port()},
            "control": {"socket": os.path.join(self.dir, "control.sock")},
            "limits": {"working_hours": ["mon-sun 00:00-24:00"], "pacing": "none", **limits},
            "printer": {"transport": "sim", "sim": {"output_dir": os.path.join(self.dir, "cards")}},
            "encoder": {"backend": "sim"}, "indicator": {"backend": "none"}})
        rng = random.Random(13)
        self.jobs = [fake_job(rng, n, job_id=f"j-{n}", record_id=f"PRR-9999-{n:06d}", front_png=SMALL_FRONT)
                     for n in range(1, jobs + 1)]
        self.jobs[0].update(first or {})          # e.g. a not_after for the job the press chooses first
        store = Store(self.config.store.path, self.clock, key=TEST_KEY)
        store.open()
        try:
            if blanks:
                store.receive_blanks("B-1", "KTP_EL", blanks, None)
            for payload in self.jobs:
                store.submit_job(validate_submission(payload, ["KTP_EL"], png_problem))
        finally:
            store.close()
        self.gate = gate or PressGate()
        self.daemon = Daemon(self.config, self.clock)
        self.daemon.press.hold = self.gate
        self.views: asyncio.Queue = asyncio.Queue()
        told = self.daemon.job_changed

        def job_changed(view):                 # every job event the office would get, in order
            self.views.put_nowait(view)
            told(view)

        self.daemon.job_changed = job_changed
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.daemon.run())

    async def _or_died(self, awaitable):
        """``awaitable``'s result; fails when the daemon ends first or nothing comes within WAIT_S."""
        waiter = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait({waiter, self.task}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self.task in done:
                raise AssertionError(f"the daemon ended: {self.task.exception()!r}")
            raise AssertionError(f"nothing within {WAIT_S} s")
        return waiter.result()

    async def point(self) -> tuple[str, dict]:
        """The next point the press passes: ``(name, job)``."""
        return await self._or_died(self.gate.passed.get())

    async def until(self, job_id: str, state: str) -> dict:
        """The first job event (from now on) that shows ``job_id`` in ``state``."""
        while True:
            view = await self._or_died(self.views.get())
            if (view["job_id"], view["state"]) == (job_id, state):
                return view

    async def ask(self, command: str, payload: dict) -> dict:
        """A request as a transport hands it over; the response."""
        return await self.daemon.answer(command, json.dumps(payload).encode())

    async def stop(self) -> int:
        assert not self.task.done(), f"the daemon ended: {self.task.exception()!r}"
        self.daemon.request_stop()
        return await asyncio.wait_for(self.task, WAIT_S)

    def stock(self) -> dict:
        """The KTP_EL stock row, read beside the daemon (read-only)."""
        import sqlite3

        conn = sqlite3.connect(f"file:{self.config.store.path}?mode=ro", uri=True)
        try:
            conn.row_factory = sqlite3.Row
            return dict(conn.execute("SELECT * FROM blank_stock WHERE card_type = 'KTP_EL'").fetchone())
        finally:
            conn.close()

    def cards(self) -> list[tuple[str, str]]:
        """``(destination, job_id)`` of every card that physically left the simulated printer, from its record."""
        path = os.path.join(self.dir, "cards", "cards.jsonl")
        if not os.path.exists(path):
            return []
        owner = {chip_sha(job): job["job_id"] for job in self.jobs}
        with open(path) as handle:
            lines = [json.loads(line) for line in handle if line.strip()]
        return [(line["destination"], owner.get(line["chip_files_sha256"], "?")) for line in lines]


def balanced(stock: dict) -> bool:
    """DESIGN.md promise 3 for one card type."""
    return stock["received"] + stock["adjusted"] == \
        stock["in_stock"] + stock["reserved"] + stock["printed"] + stock["spoiled"]
