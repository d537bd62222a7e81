"""An asyncio event loop on virtual time: sleeps and timeouts pass at once, and a test can make the loop 'hang'."""

from __future__ import annotations

import asyncio


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """``time()`` is a counter. When nothing is ready the loop jumps it to the next timer instead of waiting,
    so a coroutine's schedule is followed exactly and at once. :meth:`hang` makes the clock jump while a
    callback holds the loop, as a blocking call on the loop would.

    Only for coroutines that wait on timers and on each other: a thread's result would arrive "late".
    """

    def __init__(self):
        super().__init__()
        self._now = 0.0
        real_select = self._selector.select

        def select(timeout=None):
            events = real_select(0)
            if events or timeout is None:
                return events or real_select(None)
            self._now += timeout       # nothing to do until the next timer: be there now
            return []

        self._selector.select = select

    def time(self) -> float:
        return self._now

    def hang(self, seconds: float) -> None:
        """Call from a callback: the loop was blocked for ``seconds`` (nothing else ran meanwhile)."""
        self._now += seconds


def run_virtual(coro):
    """Run ``coro`` to completion on a fresh :class:`VirtualTimeLoop`."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
