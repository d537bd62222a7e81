"""The one clock of the daemon: wall time for records, monotonic time for waits, optionally accelerated."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone


class Clock:
    """Real time. Every part of kartud asks its clock, never :mod:`time` directly.

    ``now()`` is an aware UTC datetime (what is written to the ledger); ``monotonic()`` measures
    durations and never jumps. ``sleep``/``asleep`` wait a span of this clock's time.

    >>> clock = Clock()
    >>> clock.now().tzinfo is timezone.utc
    True
    """

    speed = 1.0

    @property
    def boot_id(self) -> str:
        """Names the span of ``monotonic()`` readings that can be compared: one boot of the machine
        (CLOCK_MONOTONIC is system-wide and survives restarts of the daemon, not of the machine)."""
        if not hasattr(self, "_boot_id"):
            try:
                with open("/proc/sys/kernel/random/boot_id") as handle:
                    self._boot_id = handle.read().strip()
            except OSError:
                self._boot_id = uuid.uuid4().hex       # no /proc: readings compare within this process only
        return self._boot_id

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    def real_seconds(self, clock_seconds: float) -> float:
        """How long, in real seconds, a span of this clock's seconds lasts."""
        return max(0.0, clock_seconds) / self.speed

    def sleep(self, seconds: float) -> None:
        """Block the calling (worker) thread for ``seconds`` of clock time."""
        time.sleep(self.real_seconds(seconds))

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` of clock time in the event loop."""
        await asyncio.sleep(self.real_seconds(seconds))


class SimulatedClock(Clock):
    """A clock that starts at ``start`` and runs ``speed`` times faster than real time.

    Used with the simulated printer (``[sim] clock_speed``/``clock_start``), so a working day
    passes in minutes. Both wall and monotonic time are derived from one real monotonic reading,
    so the two never disagree.

    >>> clock = SimulatedClock(datetime(2026, 11, 27, 1, 0, tzinfo=timezone.utc), speed=600)
    >>> clock.real_seconds(600)
    1.0
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._boot_id = uuid.uuid4().hex               # simulated time is its own "boot" per process
        self._start = (start or datetime.now(timezone.utc)).astimezone(timezone.utc)
        self._real_origin = time.monotonic()

    def _elapsed(self) -> float:
        return (time.monotonic() - self._real_origin) * self.speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed())

    def monotonic(self) -> float:
        return self._elapsed()


class ManualClock(Clock):
    """A clock that moves only when told to: for unit tests of time-dependent logic.

    ``sleep`` and ``asleep`` advance the clock instead of waiting, so code under test runs at
    full speed and deterministically.

    >>> clock = ManualClock(datetime(2026, 11, 27, 1, 0, tzinfo=timezone.utc))
    >>> clock.advance(90); clock.now().isoformat()
    '2026-11-27T01:01:30+00:00'
    """

    def __init__(self, start: datetime):
        self._now = start.astimezone(timezone.utc)
        self._mono = 0.0
        self._boot_id = uuid.uuid4().hex
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds

    def set_wall(self, when: datetime) -> None:
        """Jump the wall clock (as NTP or an RTC-less boot would); monotonic time does not move."""
        with self._lock:
            self._now = when.astimezone(timezone.utc)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def real_seconds(self, clock_seconds: float) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def rfc3339(when: datetime, tz=None) -> str:
    """An RFC 3339 timestamp, in ``tz`` if given, to the second."""
    if tz is not None:
        when = when.astimezone(tz)
    return when.isoformat(timespec="seconds")
