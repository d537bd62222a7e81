"""The eraser: personal data leaves on time, on its own timer, whether the station prints or stands idle.

It asks the store when the next personal data falls due (a job that ended, a quarantined payload,
``store.pii_retention_days`` later) and wakes at that instant; it also looks again for jobs that
ended since, every retention period (between :data:`LOOK_MIN_S` and :data:`LOOK_MAX_S` of clock
time): a job that ends just after a look falls due a retention period later, after the next look,
which then knows when to wake. Each run erases everything due and truncates both write-ahead logs.
So nothing is held past its due time longer than one run takes (with a retention of 0 days, up to
:data:`LOOK_MIN_S`), however long the station has had nothing else to do. (Before, erasure ran only
when the press loop woke, and an idle station kept a NIK and a face for days.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

if TYPE_CHECKING:
    from ..ledger.store import Store
    from ..rules.clock import Clock
    from ..rules.config import Config

log = logging.getLogger("kartud.eraser")
LOOK_MIN_S = 30.0       # clock seconds: the shortest time between two looks (for a retention of 0 days)
LOOK_MAX_S = 3600.0     # and the longest
RETRY_S = 5.0           # clock seconds before trying again to truncate a log a reader held
MIN_WAIT_S = 0.05       # real seconds: a clock that does not move by itself (tests) must not spin the loop


class EraserHost(Protocol):
    """What the eraser needs from the service (the :class:`~kartud.service.daemon.Daemon` is one)."""

    config: Config                  # store.pii_retention_days
    clock: Clock
    store: Store

    async def db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a store call on the store's one thread."""


class Eraser:
    """Runs erasure on time. ``wait`` (clock seconds) is how it sleeps: real time scaled by the clock's
    speed by default; a test passes one that moves a manual clock."""

    def __init__(self, host: EraserHost, wait: Callable[[float], Awaitable[None]] | None = None):
        self.host = host
        self.wait = wait or self._sleep
        self.runs = 0

    async def _sleep(self, clock_seconds: float) -> None:
        await asyncio.sleep(max(self.host.clock.real_seconds(clock_seconds), MIN_WAIT_S))

    async def run_once(self) -> dict[str, Any]:
        """Erase everything due now; log what went."""
        host = self.host
        days = host.config.store.pii_retention_days
        erased = await host.db(host.store.erase_due, host.clock.now(), days)
        self.runs += 1
        if erased["jobs"] or erased["payloads"]:
            log.info("erased the personal data of %d finished jobs and %d quarantined payloads "
                     "(store.pii_retention_days = %d)", erased["jobs"], erased["payloads"], days,
                     extra={"count": erased["jobs"]})
        if not erased["checkpointed"]:
            log.warning("a reader of the database kept its write-ahead log from being truncated after an erasure; "
                        "trying again in %d seconds", RETRY_S)
        return erased

    async def serve(self) -> None:
        """Run for ever (the supervisor's part "the eraser")."""
        host = self.host
        days = host.config.store.pii_retention_days
        look = min(max(days * 86400.0, LOOK_MIN_S), LOOK_MAX_S)
        erased = await self.run_once()
        while True:
            due = await host.db(host.store.next_erasure, days)
            span = look if erased["checkpointed"] else RETRY_S
            if due is not None:
                span = min(span, (due - host.clock.now()).total_seconds())
            await self.wait(max(span, 0.0))
            erased = await self.run_once()
