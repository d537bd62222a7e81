"""An in-process print room with its simulated printer in reach, and the blank ledger checked against what left it."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter

from card_faces import SMALL_FRONT
from held_press import MONDAY_9, WAIT_S, closed_port
from print_room import cards_left, chip_sha, read_only_query
from store_fixtures import TEST_KEY, key_file

from kartud.ledger.store import Store
from kartud.room.fake_people import fake_job
from kartud.rules.clock import ManualClock
from kartud.rules.config import from_dict
from kartud.rules.faults import EJECT_WAITS_FOR
from kartud.rules.jobs import validate_submission
from kartud.service.daemon import Daemon
from kartud.service.faces import png_problem

TYPES = ["KTP_EL", "KIA"]


class PhysicalRoom:
    """A daemon in this process on the in-process simulated printer (``sim``) and its contactless station, a
    manual clock, blanks and jobs (``job_types``: one card type a job) put in its database before it starts.
    Use inside ``asyncio.run``; :meth:`quiet` waits for the station to stop moving."""

    def __init__(self, directory, job_types=("KTP_EL", "KTP_EL"), blanks: dict | None = None, chip_blanks: bool = True):
        self.dir = str(directory)
        self.clock = ManualClock(MONDAY_9)
        self.config = from_dict({
            "station": {"id": "physical-01", "card_types": TYPES},
            "store": {"path": os.path.join(self.dir, "kartud.db"), "key_file": key_file(self.dir)},
            # Nobody listens on the broker's port; retrying it often keeps the daemon's stop short.
            "mqtt": {"host": "127.0.0.1", "port": closed_port(), "reconnect_min_s": 0.1, "reconnect_max_s": 0.1},
            "control": {"socket": os.path.join(self.dir, "control.sock")},
            "limits": {"working_hours": ["mon-sun 00:00-24:00"], "pacing": "none"},
            "printer": {"transport": "sim", "status_poll_s": 0.1,
                        "sim": {"output_dir": os.path.join(self.dir, "cards")}},
            "encoder": {"backend": "sim"}, "indicator": {"backend": "none"}})
        rng = random.Random(17)
        self.jobs = [fake_job(rng, n, card_type, job_id=f"j-{n}", record_id=f"PRR-9999-{n:06d}", front_png=SMALL_FRONT)
                     for n, card_type in enumerate(job_types, 1)]
        store = Store(self.config.store.path, self.clock, key=TEST_KEY)
        store.open()
        try:
            for card_type, count in (blanks or {"KTP_EL": 10, "KIA": 10}).items():
                if count:
                    store.receive_blanks(f"B-{card_type}", card_type, count, None)
            for payload in self.jobs:
                store.submit_job(validate_submission(payload, TYPES, png_problem))
        finally:
            store.close()
        self.daemon = Daemon(self.config, self.clock)
        self.sim = self.daemon.printer.transport.device
        self.sim.blanks.refill_chip = chip_blanks
        self.sim.feeder = 0
        self.sim.feeder = self.config.printer.sim.feeder_cards
        self.views: list[dict] = []
        told = self.daemon.job_changed

        def job_changed(view):                 # every job event the office would get, in order
            self.views.append(view)
            told(view)

        self.daemon.job_changed = job_changed
        # Every decision of the press loop, with the faults raised when it was taken.
        self.decisions: list[tuple[object, frozenset]] = []
        decide = self.daemon._decide

        async def recorded():
            faults = frozenset(self.daemon.faults)
            decision = await decide()
            self.decisions.append((decision, faults))
            return decision

        self.daemon._decide = recorded
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.daemon.run())

    async def stop(self) -> int:
        assert not self.task.done(), f"the daemon ended: {self.task.exception()!r}"
        self.daemon.request_stop()
        return await asyncio.wait_for(self.task, WAIT_S)

    async def quiet(self, gone: tuple[str, ...] = ()) -> None:
        """Wait until the station stands still: no card in the press and a decision that no card starts,
        taken since this call with none of the faults ``gone`` raised; or a finished card held at the eject by
        a fault a person clears. (Nothing in the daemon announces "nothing more will happen", so its state is
        looked at every 10 ms.)"""
        seen, deadline = len(self.decisions), time.monotonic() + WAIT_S
        if seen:                               # running: decide once more even if nothing else wakes the loop
            self.daemon.stock_changed()
        while True:
            if self.task.done():
                raise AssertionError(f"the daemon ended: {self.task.exception()!r}")
            press, faults = self.daemon.press, set(self.daemon.faults)
            if len(self.decisions) > seen and not faults & set(gone):
                decision, faults_then = self.decisions[-1]
                if press.current_job is None and decision.mode != "printing" and not faults_then & set(gone):
                    return
            if press.current_job is not None and faults & set(EJECT_WAITS_FOR) and not faults & set(gone) and \
                    self.query("SELECT step FROM jobs WHERE job_id = ?", press.current_job) == [("ejecting",)]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the station did not settle within {WAIT_S} s: {self.daemon.decision}, "
                                     f"{self.daemon.faults}")
            await asyncio.sleep(0.01)

    def load_feeder(self, count: int, chip: bool) -> None:
        """The person empties the feeder and loads ``count`` blanks of one kind."""
        self.sim.feeder = 0
        self.sim.blanks.load(count, chip)

    async def resolve_by_looking(self) -> list[tuple[str, str]]:
        """The operator looks for each in-doubt job's card: in the output hopper, ``printed``, else
        ``spoiled``; sends ``job/resolve``. Returns ``(job_id, outcome)`` of each."""
        out = {c["chip_files_sha256"] for c in self.cards() if c["destination"] == "output"}
        decisions = []
        for job in self.jobs:
            if self.states()[job["job_id"]] == "in_doubt":
                outcome = "printed" if chip_sha(job) in out else "spoiled"
                payload = {"job_id": job["job_id"], "outcome": outcome, "note": "looked in the hopper"}
                answer = await self.ask("job/resolve", payload)
                assert answer["status"] == "ok", answer
                decisions.append((job["job_id"], outcome))
        return decisions

    async def ask(self, command: str, payload: dict) -> dict:
        """A request as a transport hands it over; the response."""
        return await self.daemon.answer(command, json.dumps(payload).encode())

    async def resume(self) -> dict:
        """``queue/resume``, as the person at the station sends it."""
        return await self.ask("queue/resume", {})

    def query(self, sql: str, *args) -> list[tuple]:
        return read_only_query(self.config.store.path, sql, *args)

    def stock(self) -> dict[str, dict[str, int]]:
        rows = self.query("SELECT card_type, received, adjusted, in_stock, reserved, printed, spoiled FROM blank_stock")
        keys = ("received", "adjusted", "in_stock", "reserved", "printed", "spoiled")
        return {row[0]: dict(zip(keys, row[1:])) for row in rows}

    def states(self) -> dict[str, str]:
        return dict(self.query("SELECT job_id, state FROM jobs"))

    def cards(self) -> list[dict]:
        """Every card that physically left the simulated printer, from its own record."""
        return cards_left(self.dir)

    def owners(self) -> list[tuple[str, str]]:
        """``(destination, job_id)`` of every card that left; a chipless or blank card is ``-``."""
        owner = {chip_sha(job): job["job_id"] for job in self.jobs if "chip" in job}
        return [(c["destination"], owner.get(c["chip_files_sha256"], "-")) for c in self.cards()]


def ledger_matches_printer(room: PhysicalRoom) -> list[str]:
    """Every way the blank ledger disagrees with the printer's physical record (empty: none).

    Physically each blank fed is in the output hopper, the reject box, still inside, or was pulled out by
    hand (a jam). The ledger must say: every blank fed is printed, spoiled, or reserved by a job in doubt
    or in the press; the cards in the output hopper are the printed ones, plus at most one a job in doubt
    (whose card a person has yet to look for); no more spoiled than went to the reject box or out by hand;
    no record twice in the output hopper. With no job in doubt and none in the press, all of it exactly."""
    sim, stock, cards = room.sim, room.stock(), room.cards()
    out = [c for c in cards if c["destination"] == "output"]
    rejected = len(cards) - len(out)
    inside = 1 if sim.position is not None else 0
    fed = sim.counters["cards_inserted"]
    printed = sum(s["printed"] for s in stock.values())
    spoiled = sum(s["spoiled"] for s in stock.values())
    reserved = sum(s["reserved"] for s in stock.values())
    open_jobs = list(room.states().values()).count("in_doubt") + (room.daemon.press.current_job is not None)
    problems = []
    if fed != len(out) + rejected + inside + sim.taken_by_hand:
        problems.append(f"the simulator lost a card: fed {fed}, out {len(out)}, rejected {rejected}, inside {inside}")
    if not printed <= len(out) <= printed + open_jobs:
        problems.append(f"printed {printed} but {len(out)} cards in the output hopper ({open_jobs} jobs open)")
    if printed + spoiled + reserved != fed:
        problems.append(f"printed {printed} + spoiled {spoiled} + reserved {reserved} != {fed} blanks fed")
    if spoiled > rejected + sim.taken_by_hand + inside:
        problems.append(f"spoiled {spoiled} but only {rejected} rejected, {sim.taken_by_hand} taken out by hand and "
                        f"{inside} inside")
    if reserved != open_jobs:
        problems.append(f"reserved {reserved} but {open_jobs} jobs in doubt or in the press")
    if not open_jobs and spoiled != rejected + sim.taken_by_hand + inside:
        problems.append(f"spoiled {spoiled} != {rejected} rejected + {sim.taken_by_hand} by hand + {inside} inside")
    # A chip card's record is its chip files; a card without a chip is known by its printed record only.
    twice = [sha for sha, n in Counter(c["chip_files_sha256"] for c in out).items() if n > 1 and sha is not None]
    if twice:
        problems.append(f"{len(twice)} records with two cards in the output hopper")
    if len(room.query("SELECT record_id FROM printed_records")) != printed:
        problems.append("the printed records do not match the blanks printed")
    return problems
