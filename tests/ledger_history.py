"""Three working days of a station written through the real store, with a tally of what each day should report."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from card_faces import SMALL_FRONT
from store_fixtures import TEST_KEY

from kartud.rules.clock import ManualClock
from kartud.room.fake_people import fake_job
from kartud.rules.jobs import validate_submission
from kartud.ledger.store import Store

JAKARTA = ZoneInfo("Asia/Jakarta")
DAYS = (date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4))
STATION_TYPES = ["KTP_EL", "KIA"]


class History:
    """Writes the days through :class:`Store`, counting per day and card type what the report must show."""

    def __init__(self, path: str):
        self.clock = ManualClock(datetime.combine(DAYS[0], datetime.min.time(), JAKARTA))
        self.store = Store(path, self.clock, key=TEST_KEY)
        self.store.open()
        self.rng = random.Random(5)
        self.serial = 0
        self.tally = defaultdict(lambda: defaultdict(int))        # (day, card_type) -> figure -> n
        self.spoiled: list[tuple[str, str, str]] = []              # (day, job_id, reason)
        self.outcomes = defaultdict(lambda: defaultdict(int))     # day -> outcome -> n
        self.day = DAYS[0]

    def at(self, day: date, hour: int, minute: int = 0) -> None:
        self.day = day
        self.clock.set_wall(datetime(day.year, day.month, day.day, hour, minute, tzinfo=JAKARTA))

    def new_job(self, card_type: str = "KTP_EL", **extra) -> str:
        self.serial += 1
        payload = {**fake_job(self.rng, self.serial, card_type, job_id=f"j-{self.serial:03d}",
                              record_id=f"PRR-{self.serial:05d}", front_png=SMALL_FRONT), **extra}
        self.store.submit_job(validate_submission(payload, STATION_TYPES))
        return payload["job_id"]

    def card_type(self, job_id: str) -> str:
        return self.store.get_job(job_id)["card_type"]

    def receive(self, batch: str, card_type: str, count: int) -> None:
        self.store.receive_blanks(batch, card_type, count, None)
        self.tally[self.day, card_type]["received"] += count

    def adjust(self, card_type: str, delta: int, reason: str) -> None:
        self.store.adjust_blanks(card_type, delta, reason, None)
        self.tally[self.day, card_type]["adjusted"] += delta

    def printed(self, job_id: str) -> None:
        self.store.claim(job_id)
        self.store.mark_printed(job_id, None)
        self.tally[self.day, self.card_type(job_id)]["printed"] += 1

    def spoil(self, job_id: str, reason: str, max_attempts: int = 3) -> None:
        self.store.claim(job_id)
        view = self.store.mark_spoiled(job_id, reason, max_attempts)
        self.tally[self.day, self.card_type(job_id)]["spoiled"] += 1
        self.spoiled.append((self.day.isoformat(), job_id, reason))
        if view["state"] == "failed":
            self.outcomes[self.day]["failed"] += 1

    def in_doubt(self, job_id: str) -> None:
        self.store.claim(job_id)
        self.store.mark_in_doubt(job_id, "interrupted")
        self.outcomes[self.day]["in_doubt"] += 1

    def resolve_spoiled(self, job_id: str) -> None:
        self.store.resolve_in_doubt(job_id, "spoiled", "card bent in the reject box", 3)
        self.tally[self.day, self.card_type(job_id)]["spoiled"] += 1
        self.spoiled.append((self.day.isoformat(), job_id, "in_doubt_spoiled"))


def write_history(path: str) -> History:
    """Monday: blanks arrive, cards print, a chip fails. Tuesday: a jam, a stocktake, a cancel, a card in
    doubt settled as spoiled and printed again. Wednesday: a job runs out of attempts, one expires, one
    is left in doubt and one queued. The store is closed cleanly at the end (no -wal file left)."""
    h = History(path)
    monday, tuesday, wednesday = DAYS
    h.at(monday, 8)
    h.receive("B-KTP-1", "KTP_EL", 50)
    h.receive("B-KIA-1", "KIA", 20)
    jobs = [h.new_job() for _ in range(5)] + [h.new_job("KIA") for _ in range(2)]
    h.at(monday, 9)
    h.spoil(jobs[0], "encode_failed")
    for job_id in jobs:
        h.printed(job_id)
    h.at(tuesday, 8, 30)
    jobs = [h.new_job() for _ in range(5)]
    h.spoil(jobs[0], "card_jam")
    for job_id in jobs[:3]:
        h.printed(job_id)
    h.adjust("KTP_EL", -2, "stocktake: two blanks bent in the box")
    h.store.cancel_job(jobs[3])
    h.outcomes[tuesday]["cancelled"] += 1
    h.at(tuesday, 11)
    h.in_doubt(jobs[4])
    h.resolve_spoiled(jobs[4])
    h.printed(jobs[4])
    h.at(wednesday, 8)
    doomed = h.new_job()
    h.spoil(doomed, "encode_failed", max_attempts=1)
    late = h.new_job(not_after="2026-11-04T09:00:00+07:00")
    h.at(wednesday, 9, 30)
    h.store.expire_due(h.clock.now())
    h.outcomes[wednesday]["expired"] += 1
    h.doubtful_job = h.new_job()
    h.in_doubt(h.doubtful_job)
    h.queued_job = h.new_job("KIA")
    h.failed_job, h.late_job = doomed, late
    h.store.close()
    return h
