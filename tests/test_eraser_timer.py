"""On time, busy or idle: the eraser runs on its own timer, and nothing personal is held a minute past retention.

The eraser is driven by the manual clock: its waits move the clock by what it asked, and while it
sleeps the test's station ends jobs at random moments (busy stretches, then days of nothing). After
every wait, before the eraser runs again, the oldest personal data still held must be due less than a
minute ago. The same is then seen in the daemon process on its accelerated clock (tests/test_retention.py).
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from erased_station import KEY, person

from kartud.ledger.store import Store
from kartud.rules.jobs import validate_submission
from kartud.service.eraser import LOOK_MAX_S, LOOK_MIN_S, Eraser

MINUTE = timedelta(minutes=1)


class Done(Exception):
    """The test's span of simulated time is over."""


class Station:
    """A store on the manual clock whose jobs end when the test says, with the ground truth of what is due."""

    def __init__(self, store: Store, clock, retention_days: int):
        self.store, self.clock, self.retention = store, clock, timedelta(days=retention_days)
        self.rng = random.Random(41)
        self.serial = 0
        self.ended: dict[str, datetime] = {}        # job id -> when it ended
        store.receive_blanks("B-1", "KTP_EL", 10000, None)

    def end_a_job(self) -> None:
        self.serial += 1
        job = validate_submission(person(self.rng, self.serial).job, ["KTP_EL"])
        job.job_id, job.record_id = f"j-{self.serial:05d}", f"PRR-9999-{self.serial:06d}"
        self.store.submit_job(job)
        self.store.claim(job.job_id)
        self.store.mark_printed(job.job_id, None)
        self.ended[job.job_id] = self.clock.now()

    def oldest_held_due(self) -> datetime | None:
        held = {r[0] for r in self.store.conn.execute("SELECT job_id FROM jobs WHERE pii_erased_at IS NULL")}
        assert held >= self.store.personal.held()[0]            # nothing personal outside the unerased jobs
        dues = [self.ended[j] + self.retention for j in held if j in self.ended]
        return min(dues) if dues else None


def host_for(store: Store, clock, retention_days: int) -> SimpleNamespace:
    async def db(fn, *args):
        return fn(*args)

    config = SimpleNamespace(store=SimpleNamespace(pii_retention_days=retention_days))
    return SimpleNamespace(config=config, clock=clock, store=store, db=db)


@pytest.mark.parametrize("retention_days", [0, 1, 7])
def test_nothing_is_held_a_minute_past_retention_busy_or_idle(tmp_path, manual_clock, retention_days):
    store = Store(str(tmp_path / "kartud.db"), manual_clock, key=KEY)
    store.open()
    station = Station(store, manual_clock, retention_days)
    horizon = manual_clock.now() + timedelta(days=retention_days + 4)
    # Busy on the first two days (a job every 0-3 hours), then nothing at all: an idle station.
    events, at = [], manual_clock.now()
    while at < manual_clock.now() + timedelta(days=2):
        at += timedelta(seconds=station.rng.uniform(0, 3 * 3600))
        events.append(at)
    worst = timedelta(0)

    async def wait(seconds: float) -> None:
        nonlocal worst
        target = manual_clock.now() + timedelta(seconds=seconds)
        while events and events[0] <= target:
            manual_clock.advance((events.pop(0) - manual_clock.now()).total_seconds())
            station.end_a_job()
        manual_clock.advance((target - manual_clock.now()).total_seconds())
        due = station.oldest_held_due()
        if due is not None:
            assert manual_clock.now() - due <= MINUTE, f"personal data held {manual_clock.now() - due} past retention"
            worst = max(worst, manual_clock.now() - due)
        if manual_clock.now() >= horizon:
            raise Done

    eraser = Eraser(host_for(store, manual_clock, retention_days), wait=wait)
    try:
        with pytest.raises(Done):
            asyncio.run(eraser.serve())
        assert len(station.ended) > 10 and station.oldest_held_due() is None
        assert store.personal.held() == (set(), set())
        assert worst <= MINUTE
        # Idle for days, the eraser did not spin: it slept until something was due, or for a look.
        look = min(max(retention_days * 86400, LOOK_MIN_S), LOOK_MAX_S)
        assert eraser.runs <= (retention_days + 4) * 86400 / look + 2 * len(station.ended) + 10
    finally:
        store.close()
