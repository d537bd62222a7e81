"""The health-fed watchdog on virtual time: pings only while loop, store and devices answer; and a stopped daemon."""

from __future__ import annotations

import asyncio
import doctest
import os
import signal
import time

import pytest

from kartud.service import watchdog as watchdog_module
from kartud.service.watchdog import HealthWatchdog
from virtual_loop import run_virtual

INTERVAL = 5.0


def watch(seconds: float, setup=None, **probes):
    """Run a HealthWatchdog for ``seconds`` of virtual time; the loop times of its pings, and the watchdog.

    ``setup(loop, watchdog)`` may schedule what happens meanwhile.
    """
    pings: list[float] = []

    async def scenario():
        loop = asyncio.get_running_loop()
        watchdog = HealthWatchdog(INTERVAL, notify=lambda message: pings.append((loop.time(), message)),
                                  clock=loop.time, **probes)
        if setup is not None:
            setup(loop, watchdog)
        task = asyncio.create_task(watchdog.run())
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return watchdog

    watchdog = run_virtual(scenario())
    assert {message for _, message in pings} <= {"WATCHDOG=1"}
    return [at for at, _ in pings], watchdog


async def answers_at_once():
    return None


def test_a_healthy_daemon_pings_every_interval():
    pings, watchdog = watch(21.0, answers={"store": answers_at_once}, busy_since={"device": lambda: None})
    assert pings == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert watchdog.problems == []


def test_a_blocked_loop_stops_the_pings_within_one_interval():
    blocked_at, blocked_for = 7.0, 30.0

    def setup(loop, _):
        loop.call_at(blocked_at, loop.hang, blocked_for)      # a blocking call on the loop, 30 s long

    pings, watchdog = watch(50.0, setup, answers={"store": answers_at_once})
    before = [p for p in pings if p <= blocked_at]
    assert before == [0.0, 5.0] and blocked_at - before[-1] <= INTERVAL
    assert not [p for p in pings if blocked_at < p <= blocked_at + blocked_for]
    # The tick that was due at 10 s runs at 37 s, 27 s late: it does not ping. The next one, on time, does.
    assert pings == [0.0, 5.0, 42.0, 47.0]


def test_a_loop_late_by_less_than_the_bound_still_pings():
    def setup(loop, _):
        loop.call_at(7.0, loop.hang, 5.0)          # blocked 7-12 s: the 10 s tick runs 2 s late (bound 2.5 s)

    pings, _ = watch(20.0, setup)
    assert pings == [0.0, 5.0, 12.0, 15.0]             # and the schedule carries on where it was


def test_a_store_that_stops_answering_stops_the_pings_until_it_answers():
    gate = {}

    async def store():
        await gate["open"].wait()

    def setup(loop, _):
        gate["open"] = asyncio.Event()
        gate["open"].set()
        loop.call_at(7.0, gate["open"].clear)
        loop.call_at(21.0, gate["open"].set)

    pings, _ = watch(31.0, setup, answers={"store": store})
    # Ticks at 10, 15 and 20 wait 2.5 s for the same pending probe (never a second one); it answers at 21 s.
    assert pings == [0.0, 5.0, 21.0, 25.0, 30.0]


def test_a_stuck_probe_is_not_asked_again_until_it_answers():
    calls = []

    async def store():
        calls.append(asyncio.get_running_loop().time())
        await asyncio.Event().wait()            # never answers

    pings, watchdog = watch(23.0, answers={"store": store})
    assert pings == [] and calls == [0.0]
    assert watchdog.problems == ["store did not answer within 2.5 s"]


def test_a_failing_probe_is_a_problem():
    async def store():
        raise OSError("disk I/O error")

    pings, watchdog = watch(6.0, answers={"store": store})
    assert pings == []
    assert watchdog.problems == ["store failed: OSError('disk I/O error')"]


def test_a_device_worker_stuck_in_one_call_stops_the_pings():
    busy = {"since": None}

    def setup(loop, _):
        loop.call_at(3.0, busy.update, {"since": 3.0})     # a printer call starts at 3 s...
        loop.call_at(17.0, busy.update, {"since": None})   # ...and returns at 17 s

    pings, _ = watch(26.0, setup, busy_since={"device": lambda: busy["since"]}, stuck_after=10.0)
    assert pings == [0.0, 5.0, 10.0, 20.0, 25.0]          # 15 s: in the call for 12 s > 10 s


def test_health_changes_are_logged_once_each(caplog):
    gate = {}

    async def store():
        await gate["open"].wait()

    def setup(loop, _):
        gate["open"] = asyncio.Event()
        loop.call_at(12.0, gate["open"].set)

    caplog.set_level("INFO", logger="kartud.watchdog")
    watch(20.0, setup, answers={"store": store})
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["not feeding systemd's watchdog: store did not answer within 2.5 s",
                        "healthy again; feeding systemd's watchdog"]


def test_watchdog_docstring_example_runs():
    assert doctest.testmod(watchdog_module).failed == 0


def test_an_interval_must_be_positive():
    with pytest.raises(ValueError):
        HealthWatchdog(0.0)


# -- the daemon as systemd sees it -----------------------------------------------------------------


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_a_stopped_daemon_sends_no_pings_and_resumes_when_continued(room, notify_socket):
    room.env["NOTIFY_SOCKET"] = notify_socket.path
    room.env["WATCHDOG_USEC"] = "400000"                 # pings every 0.2 s
    room.start()
    notify_socket.wait_for("READY=1")
    notify_socket.wait_for("WATCHDOG=1")
    room.process.send_signal(signal.SIGSTOP)           # what systemd's watchdog exists for: a hung process
    try:
        while process_state(room.process.pid) != "T":
            time.sleep(0.01)
        time.sleep(0.2)                                  # datagrams sent just before the stop are read
        with notify_socket.changed:
            stopped_at = len(notify_socket.messages)
        time.sleep(1.0)                                  # five intervals: waiting for nothing to happen
        with notify_socket.changed:
            assert notify_socket.messages[stopped_at:] == []
    finally:
        room.process.send_signal(signal.SIGCONT)
    with notify_socket.changed:
        assert notify_socket.changed.wait_for(lambda: "WATCHDOG=1" in notify_socket.messages[stopped_at:], 10)
    assert room.stop() == 0
    assert os.path.exists(room.db_path)
