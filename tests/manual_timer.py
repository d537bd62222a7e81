"""A timer whose clock moves only when a test advances it: exact, thread-free timing for pattern tests."""

from __future__ import annotations

import heapq
import itertools


class ManualHandle:
    """What ``call_later`` returns: ``cancel()`` it, as an asyncio TimerHandle."""

    def __init__(self, when: float, callback):
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualTimer:
    """``call_later`` and ``time`` like an asyncio loop; callbacks run inside :meth:`advance`, in time order,
    with ``time()`` equal to the instant each was due."""

    def __init__(self, start: float = 0.0):
        self.now = start
        self._queue: list[tuple[float, int, ManualHandle]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback) -> ManualHandle:
        handle = ManualHandle(self.now + delay, callback)
        heapq.heappush(self._queue, (handle.when, next(self._order), handle))
        return handle

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, running every callback due by then (including ones they schedule)."""
        target = self.now + seconds
        while self._queue and self._queue[0][0] <= target:
            when, _, handle = heapq.heappop(self._queue)
            if handle.cancelled:
                continue
            self.now = when
            handle.callback()
        self.now = target

    @property
    def pending(self) -> int:
        return sum(1 for _, _, handle in self._queue if not handle.cancelled)
