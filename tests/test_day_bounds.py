"""One local day, one answer: every count, report and wait uses local_day_bounds for "today"."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from kartud.ledger.daily_report import day_bounds
from kartud.rules.calendar import WorkingCalendar, local_day_bounds, seconds_between
from kartud.rules.scheduler import next_local_midnight

JAKARTA, BERLIN = ZoneInfo("Asia/Jakarta"), ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("day, tz, hours", [
    (date(2026, 11, 28), JAKARTA, 24),
    (date(2026, 3, 29), BERLIN, 23),     # clocks go forward
    (date(2026, 10, 25), BERLIN, 25),    # clocks go back
    (date(2026, 11, 28), timezone.utc, 24),
])
def test_a_local_day_is_as_long_as_the_wall_clock_says(day, tz, hours):
    start, end = local_day_bounds(day, tz)
    assert (start.date(), start.hour, start.minute) == (day, 0, 0)
    assert end.date() == date.fromordinal(day.toordinal() + 1) and (end.hour, end.minute) == (0, 0)
    assert start.tzinfo is tz and end.tzinfo is tz
    assert seconds_between(start, end) == hours * 3600


def test_the_report_stores_the_same_bounds_in_utc():
    start, end = local_day_bounds(date(2026, 11, 28), JAKARTA)
    assert day_bounds(date(2026, 11, 28), JAKARTA) == ("2026-11-27T17:00:00+00:00", "2026-11-28T17:00:00+00:00")
    assert end.astimezone(timezone.utc) == datetime(2026, 11, 28, 17, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("now", [datetime(2026, 11, 28, 23, 59, tzinfo=JAKARTA),
                                 datetime(2026, 10, 25, 12, 0, tzinfo=BERLIN),
                                 datetime(2026, 3, 28, 23, 30, tzinfo=BERLIN)])
def test_the_scheduler_and_the_calendar_wait_for_the_same_midnight(now):
    end = local_day_bounds(now.date(), now.tzinfo)[1]
    assert next_local_midnight(now) == end
    every_day = WorkingCalendar(["mon-sun 00:00-24:00"], [], now.tzinfo)
    assert every_day.next_day_opening(now) == end
    assert every_day.spans_on(now.date()) == [local_day_bounds(now.date(), now.tzinfo)]
