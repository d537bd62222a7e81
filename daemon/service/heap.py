"""Hands the heap a burst of requests left free back to the system (glibc's ``malloc_trim``), once the burst is over.

A burst of submissions (each with its payload, parsed JSON, decoded face and new job) grows the
process by tens of MiB; when they are freed glibc keeps the pages for later, so the daemon stayed at
its peak for good (112 MiB after 10,000 jobs). ``malloc_trim(0)`` returns every whole free page of
every arena. It costs a walk of the free lists (about a millisecond, a few after a large burst), so it
runs once requests were handled and the received messages have then stayed drained for ``QUIET_S``:
by then paho has been acknowledged for the answers and events and has freed them too. Payload bytes
are no measure of what a request costs (a 5 KiB PNG decodes to 2 MiB), so any request counts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

log = logging.getLogger("kartud.heap")
QUIET_S = 1.0                           # seconds without a request before the trim


def _malloc_trim():
    """glibc's ``malloc_trim``, or None on a C library without it (musl: nothing to do). ctypes is imported
    here, at the first trim, and the symbol looked up in the process itself (no search for the library)."""
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class HeapReturn:
    """Trims once the intake, having handled requests, has been quiet for ``quiet_s``. The intake calls
    :meth:`handled` after each group and :meth:`drained` when no request waits; a group that comes before
    the quiet is over puts the trim off."""

    def __init__(self, quiet_s: float = QUIET_S, release: Callable[[], Awaitable[Any]] | None = None):
        self.quiet_s = quiet_s
        self.release = release      # run first: lets go of caches that hold freed memory (SQLite's pages)
        self.owed = 0               # payload bytes handled since the last trim
        self.trims = 0
        self._trim = None
        self._looked_up = False
        self._pending: asyncio.TimerHandle | None = None
        self._task: asyncio.Future | None = None

    def handled(self, payload_bytes: int) -> None:
        self.owed += payload_bytes
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def started(self) -> None:
        """At the intake's start: what starting left free (migrations, the config, the first polls) goes back
        after the first quiet second too (about 0.6 MiB of an idle daemon)."""
        self.owed = max(self.owed, 1)
        self.drained()

    def drained(self) -> None:
        """No request waits: trim after the quiet, if a burst went through (on the running loop)."""
        if self.owed and self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self.quiet_s, self._start_trim)

    def _start_trim(self) -> None:
        self._pending = None
        if self.owed:
            self._task = asyncio.ensure_future(self.trim_now())

    async def trim_now(self) -> None:
        """Give every whole free page back to the system now, if a burst went through since the last time."""
        if not self.owed:
            return
        if self.release is not None:
            try:
                await self.release()
            except Exception as exc:            # a failing store says so itself; the heap is trimmed anyway
                log.debug("could not release the caches before the trim: %s", exc)
        if not self._looked_up:
            self._trim, self._looked_up = _malloc_trim(), True
        if self._trim is None:
            return
        began = time.perf_counter()
        self._trim(0)
        log.debug("free heap returned to the system after %d payload bytes (%.1f ms)", self.owed,
                  (time.perf_counter() - began) * 1e3)
        self.owed, self.trims = 0, self.trims + 1
