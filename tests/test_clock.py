"""The clocks: real, simulated (faster than real) and manual, and RFC 3339 timestamps."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kartud.rules.clock import Clock, ManualClock, SimulatedClock, rfc3339

START = datetime(2026, 11, 27, 1, 0, tzinfo=timezone.utc)
JAKARTA = ZoneInfo("Asia/Jakarta")


# -- the real clock ---------------------------------------------------------------------------------


def test_the_real_clock_is_aware_utc_and_runs_at_speed_one():
    clock = Clock()
    before = datetime.now(timezone.utc)
    now = clock.now()
    assert now.tzinfo is timezone.utc
    assert abs((now - before).total_seconds()) < 1
    assert clock.speed == 1.0
    assert clock.real_seconds(2.5) == 2.5
    assert clock.real_seconds(-3) == 0.0
    a = clock.monotonic()
    assert clock.monotonic() >= a


def test_the_real_clock_sleeps_for_real():
    clock = Clock()
    start = time.monotonic()
    clock.sleep(0.02)
    assert time.monotonic() - start >= 0.02


# -- the simulated clock ----------------------------------------------------------------------------


def test_a_simulated_clock_starts_at_its_start():
    clock = SimulatedClock(START, speed=10)
    assert abs((clock.now() - START).total_seconds()) < 1.0   # well under 0.1 s of real time has passed
    assert clock.now() >= START
    assert 0 <= clock.monotonic() < 1.0


def test_a_start_in_another_zone_is_kept_as_utc():
    start = datetime(2026, 11, 27, 8, 0, tzinfo=JAKARTA)
    clock = SimulatedClock(start, speed=1)
    assert clock.now().tzinfo is timezone.utc
    assert abs((clock.now() - start).total_seconds()) < 0.5


def test_a_simulated_clock_without_a_start_starts_now():
    clock = SimulatedClock(speed=1)
    assert abs((clock.now() - datetime.now(timezone.utc)).total_seconds()) < 1


@pytest.mark.parametrize("speed", [20.0, 600.0])
def test_a_simulated_clock_runs_speed_times_faster(speed):
    clock = SimulatedClock(START, speed=speed)
    wall0, mono0, real0 = clock.now(), clock.monotonic(), time.monotonic()
    time.sleep(0.05)
    wall1, mono1, real1 = clock.now(), clock.monotonic(), time.monotonic()
    real = real1 - real0
    wall = (wall1 - wall0).total_seconds()
    mono = mono1 - mono0
    # Both readings come from one real monotonic reading each, so they agree and scale by ``speed``.
    assert wall == pytest.approx(real * speed, rel=0.1, abs=0.01 * speed)
    assert mono == pytest.approx(real * speed, rel=0.1, abs=0.01 * speed)
    assert mono >= 0.05 * speed * 0.9


def test_simulated_wall_and_monotonic_time_agree():
    clock = SimulatedClock(START, speed=1000)
    for _ in range(5):
        elapsed = clock.monotonic()
        wall = (clock.now() - START).total_seconds()
        assert wall >= elapsed
        assert wall - elapsed < 1000 * 0.05   # the two readings are at most a few ms of real time apart


def test_real_seconds_divides_by_speed():
    clock = SimulatedClock(START, speed=600)
    assert clock.real_seconds(600) == 1.0
    assert clock.real_seconds(60) == pytest.approx(0.1)
    assert clock.real_seconds(0) == 0.0
    assert clock.real_seconds(-10) == 0.0
    assert SimulatedClock(START, speed=0.5).real_seconds(1) == 2.0


def test_a_simulated_sleep_takes_real_seconds():
    clock = SimulatedClock(START, speed=100)
    start = time.monotonic()
    clock.sleep(3)           # 3 simulated seconds = 0.03 real seconds
    took = time.monotonic() - start
    assert 0.03 <= took < 0.5
    assert clock.monotonic() >= 3


def test_a_simulated_asleep_takes_real_seconds():
    clock = SimulatedClock(START, speed=100)
    start = time.monotonic()
    asyncio.run(clock.asleep(2))
    assert 0.02 <= time.monotonic() - start < 0.5


@pytest.mark.parametrize("speed", [0, -1, -0.5])
def test_speed_must_be_positive(speed):
    with pytest.raises(ValueError):
        SimulatedClock(START, speed=speed)


# -- the manual clock --------------------------------------------------------------------------------


def test_a_manual_clock_stands_still_until_told():
    clock = ManualClock(START)
    assert clock.now() == START and clock.monotonic() == 0.0
    time.sleep(0.01)
    assert clock.now() == START and clock.monotonic() == 0.0


def test_advance_moves_wall_and_monotonic_together():
    clock = ManualClock(START)
    clock.advance(90)
    assert clock.now() == START + timedelta(seconds=90)
    assert clock.monotonic() == 90
    clock.advance(0.5)
    assert clock.now() == START + timedelta(seconds=90.5)
    assert clock.monotonic() == 90.5


def test_set_wall_jumps_the_wall_clock_only():
    clock = ManualClock(START)
    clock.advance(10)
    clock.set_wall(datetime(2026, 11, 27, 8, 0, tzinfo=JAKARTA))   # an NTP step: back to 01:00 UTC
    assert clock.now() == START
    assert clock.now().tzinfo is timezone.utc
    assert clock.monotonic() == 10
    clock.set_wall(datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert clock.monotonic() == 10
    clock.advance(5)
    assert clock.now() == datetime(2030, 1, 1, 0, 0, 5, tzinfo=timezone.utc)
    assert clock.monotonic() == 15


def test_a_manual_clock_start_in_another_zone_is_kept_as_utc():
    clock = ManualClock(datetime(2026, 11, 27, 8, 0, tzinfo=JAKARTA))
    assert clock.now() == START and clock.now().tzinfo is timezone.utc


def test_manual_sleep_advances_instead_of_waiting():
    clock = ManualClock(START)
    start = time.monotonic()
    clock.sleep(3600)
    assert time.monotonic() - start < 0.5
    assert clock.now() == START + timedelta(hours=1) and clock.monotonic() == 3600
    clock.sleep(-5)           # a negative sleep is no sleep, never a step back
    assert clock.monotonic() == 3600
    assert clock.real_seconds(100) == 0.0


def test_manual_asleep_advances_and_yields():
    clock = ManualClock(START)
    order = []

    async def other():
        order.append("other")

    async def main():
        task = asyncio.create_task(other())
        await clock.asleep(60)
        order.append("after sleep")
        await task

    asyncio.run(main())
    assert order == ["other", "after sleep"]
    assert clock.monotonic() == 60
    asyncio.run(clock.asleep(-1))
    assert clock.monotonic() == 60


# -- timestamps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("when, tz, text", [
    (START, None, "2026-11-27T01:00:00+00:00"),
    (START, JAKARTA, "2026-11-27T08:00:00+07:00"),
    (START, timezone(timedelta(hours=-3, minutes=-30)), "2026-11-26T21:30:00-03:30"),
    (START + timedelta(microseconds=999_999), None, "2026-11-27T01:00:00+00:00"),   # to the second, truncated
    (datetime(2026, 11, 27, 23, 30, tzinfo=timezone.utc), JAKARTA, "2026-11-28T06:30:00+07:00"),
    (datetime(2026, 11, 27, 8, 0, tzinfo=JAKARTA), None, "2026-11-27T08:00:00+07:00"),
    (datetime(2026, 11, 27, 8, 0, tzinfo=JAKARTA), timezone.utc, "2026-11-27T01:00:00+00:00"),
])
def test_rfc3339(when, tz, text):
    assert rfc3339(when, tz) == text
    assert datetime.fromisoformat(text) == when.replace(microsecond=0)


def test_rfc3339_strings_of_one_zone_sort_like_times():
    """The store compares UTC timestamps as text; that works only because they share one zone and one format."""
    times = [START + timedelta(seconds=s) for s in (0, 9, 10, 59, 3600, 86400 * 40)]
    texts = [rfc3339(t) for t in times]
    assert sorted(texts) == texts
