"""The loop's parts as named tasks: one that ends when it should not is logged by name and stops the daemon.

A task of the loop that dies (an exception) or returns when it should run for ever leaves the
daemon half-alive: answering nothing, or printing nothing, while systemd sees a running process.
The :class:`Supervisor` turns that into a clean stop with status 1 (systemd restarts the daemon
whole), and lends the health watchdog a probe per part so that its health says which part died.

>>> import asyncio
>>> async def main():
...     failures = []
...     parts = Supervisor(on_failure=lambda: failures.append(True))
...     async def dies():
...         raise RuntimeError("a defect")
...     task = parts.start("the example", dies())
...     await asyncio.wait({task})
...     return failures, {name: alive() for name, alive in parts.alive().items()}
>>> asyncio.run(main())
([True], {'the example': False})
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from typing import Callable, Coroutine

from ..service.journal_ids import MSG_INTERNAL_ERROR
from ..service.systemd_glue import notify, watchdog_interval
from ..service.watchdog import HealthWatchdog

log = logging.getLogger("kartud")


class Supervisor:
    """Starts the parts; calls ``on_failure()`` once any of them ends in a way its ``may_end`` does not allow."""

    def __init__(self, on_failure: Callable[[], None]):
        self.on_failure = on_failure
        self.tasks: list[asyncio.Task] = []
        self._may_end: dict[asyncio.Task, Callable[[], bool]] = {}

    def start(self, name: str, coro: Coroutine, may_end: Callable[[], bool] = lambda: False) -> asyncio.Task:
        """Run ``coro`` as the part ``name``. ``may_end()`` says, when it returns, whether that is no failure
        (the press once a stop was asked); an exception always is one, a cancellation never."""
        task = asyncio.create_task(coro, name=name)
        self.tasks.append(task)
        self._may_end[task] = may_end
        task.add_done_callback(self._ended)
        return task

    def alive(self) -> dict[str, Callable[[], bool]]:
        """A probe per part, for :class:`~kartud.service.watchdog.HealthWatchdog`'s ``alive``."""
        return {task.get_name(): (lambda task=task: not task.done()) for task in self.tasks}

    def _ended(self, task: asyncio.Task) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None and self._may_end[task]():
            return
        how = f"failed: {type(error).__name__}: {error}" if error is not None else "ended by itself"
        log.critical("%s %s; kartud stops to be restarted", task.get_name(), how, exc_info=error,
                     extra={"message_id": MSG_INTERNAL_ERROR})
        self.on_failure()


async def watch_thread(alive: Callable[[], bool], every: float = 1.0) -> None:
    """Return when ``alive()`` turns false: a thread outside the loop (paho's) as a part of it."""
    while alive():
        await asyncio.sleep(every)


async def watch_health(store_thread: Executor, device_busy_since: Callable[[], float | None],
                       parts: Supervisor) -> None:
    """Feed systemd's watchdog while the loop, the store's thread, the device thread and every part are
    well (returns at once when no watchdog is armed for us)."""
    interval = watchdog_interval()
    if interval is None:
        return
    loop = asyncio.get_running_loop()
    # A no-op through the store's one thread (not Daemon.db(): a slow probe is no storage_error), and the
    # device thread's call in progress; HealthWatchdog pings only while they answer and every part runs.
    await HealthWatchdog(
        interval, notify=notify,
        answers={"the store's thread": lambda: loop.run_in_executor(store_thread, lambda: None)},
        busy_since={"the device thread": device_busy_since}, alive=parts.alive()).run()
