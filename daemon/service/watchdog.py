"""systemd's watchdog fed by health, not a timer: WATCHDOG=1 only while the loop, store and devices answer."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from ..service.journal_ids import MSG_UNHEALTHY
from ..service.systemd_glue import notify as systemd_notify

log = logging.getLogger("kartud.watchdog")

DEFAULT_STUCK_AFTER_S = 180.0   # longer than any one printer or encoder call may take, however slow


class HealthWatchdog:
    """Sends ``WATCHDOG=1`` every ``interval`` seconds, but only while everything it watches is healthy.

    It runs as a task on the daemon's event loop, so a loop that is blocked sends nothing at all.
    At each tick it checks:

    - the loop itself: the tick must start within ``loop_lag_bound`` of its schedule (a loop that
      was blocked for longer misses that ping even if it runs again now);
    - ``answers``: async callables that must finish within ``answer_within`` (for the store: a
      no-op sent through its one writer thread). One that has not finished is not asked again
      until it does, so a stuck thread does not pile up probes;
    - ``busy_since``: callables giving the ``clock()`` time at which a worker started the call it
      is in, or None when it is idle; a worker in one call for more than ``stuck_after`` is stuck;
    - ``alive``: callables saying whether a part that should run for ever (a task of the loop) still
      runs; a dead one is named.

    With systemd's ``WatchdogSec=W`` the daemon passes ``interval = W / 2``: a stall is noticed
    by systemd at most ``W`` after the last ping.

    >>> import asyncio
    >>> pings = []
    >>> async def store_round_trip():
    ...     await asyncio.sleep(0)
    >>> async def one_tick():
    ...     watchdog = HealthWatchdog(15.0, answers={"store": store_round_trip}, notify=pings.append)
    ...     return await watchdog.tick()
    >>> asyncio.run(one_tick()), pings
    ([], ['WATCHDOG=1'])
    """

    def __init__(self, interval: float, *, answers: dict[str, Callable[[], Awaitable]] | None = None,
                 busy_since: dict[str, Callable[[], float | None]] | None = None,
                 alive: dict[str, Callable[[], bool]] | None = None,
                 notify: Callable[[str], object] = systemd_notify, clock: Callable[[], float] = time.monotonic,
                 loop_lag_bound: float | None = None, answer_within: float | None = None,
                 stuck_after: float = DEFAULT_STUCK_AFTER_S):
        if interval <= 0:
            raise ValueError("the watchdog interval must be positive")
        self.interval = interval
        self.answers = dict(answers or {})
        self.busy_since = dict(busy_since or {})
        self.alive = dict(alive or {})
        self.notify = notify
        self.clock = clock
        self.loop_lag_bound = interval / 2 if loop_lag_bound is None else loop_lag_bound
        self.answer_within = interval / 2 if answer_within is None else answer_within
        self.stuck_after = stuck_after
        self.problems: list[str] = []
        self._pending: dict[str, asyncio.Future] = {}

    async def run(self) -> None:
        """Tick every ``interval`` until cancelled."""
        due = self.clock()
        try:
            while True:
                await self.tick(lag=self.clock() - due)
                due += self.interval
                now = self.clock()
                if due < now:       # after a stall, a fresh schedule rather than a burst of catch-up ticks
                    due = now + self.interval
                await asyncio.sleep(due - now)
        finally:
            for future in self._pending.values():
                future.cancel()

    async def tick(self, lag: float = 0.0) -> list[str]:
        """Check once and ping if healthy; returns the problems found (empty when it pinged)."""
        problems = []
        if lag > self.loop_lag_bound:
            problems.append(f"the event loop ran {lag:.1f} s late")
        problems += await self._unanswered()
        problems += self._stuck()
        problems += [f"{name} is not running" for name, running in self.alive.items() if not running()]
        if not problems:
            self.notify("WATCHDOG=1")
        self._report(problems)
        return problems

    async def _unanswered(self) -> list[str]:
        for name, probe in self.answers.items():
            if name not in self._pending:
                self._pending[name] = asyncio.ensure_future(probe())
        if not self._pending:
            return []
        await asyncio.wait(self._pending.values(), timeout=self.answer_within)
        problems = []
        for name, future in list(self._pending.items()):
            if not future.done():
                problems.append(f"{name} did not answer within {self.answer_within:.1f} s")
                continue
            del self._pending[name]
            if future.cancelled():
                problems.append(f"{name}'s probe was cancelled")
            elif future.exception() is not None:
                problems.append(f"{name} failed: {future.exception()!r}")
        return problems

    def _stuck(self) -> list[str]:
        now = self.clock()
        problems = []
        for name, since in self.busy_since.items():
            started = since()
            if started is not None and now - started > self.stuck_after:
                problems.append(f"{name} has been in one call for {now - started:.0f} s")
        return problems

    def _report(self, problems: list[str]) -> None:
        """Log when health changes, not at every tick."""
        if problems and problems != self.problems:
            log.warning("not feeding systemd's watchdog: %s", "; ".join(problems),
                        extra={"message_id": MSG_UNHEALTHY})
        elif not problems and self.problems:
            log.info("healthy again; feeding systemd's watchdog")
        self.problems = problems
