"""The station's working calendar: working spans per weekday, holidays, in the station's time zone.

All arithmetic is on aware datetimes, so a day with a daylight-saving change (in a zone that has
one) is 23 or 25 hours long and a span is as long as the clock on the wall says. Asia/Jakarta has
had no DST since 1964, so there every day is 24 hours.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from ..rules.hours import parse_working_hours

LOOK_AHEAD_DAYS = 370   # how far to look for the next opening (a year of holidays is still found)
UTC = ZoneInfo("UTC")
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")   # [0-9]: \d also takes Arabic-Indic and fullwidth digits


# The first and last local dates whose day, in any time zone (UTC-12 to UTC+14), has bounds that a
# datetime can hold: 0001-01-01 in UTC+14 begins in year 0, 9999-12-31 ends in year 10000.
FIRST_DAY, LAST_DAY = date(1, 1, 2), date(9999, 12, 30)


def parse_day(text: Any) -> date | None:
    """The date ``text`` writes as ``YYYY-MM-DD``, or None: none of the other forms Python's
    ``date.fromisoformat`` also takes (``20261202``, ``2026-W49-3``), no date that does not exist, and
    none outside :data:`FIRST_DAY`-:data:`LAST_DAY` (its day's bounds would not fit a datetime).

    >>> parse_day("2026-12-02"), parse_day("20261202"), parse_day("2026-W49-3"), parse_day("2026-02-30")
    (datetime.date(2026, 12, 2), None, None, None)
    >>> parse_day("0001-01-01"), parse_day("9999-12-31")
    (None, None)
    """
    if not isinstance(text, str) or not ISO_DAY.fullmatch(text):
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def local_day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """Where the local date ``day`` of time zone ``tz`` begins and where the next one begins, as aware
    datetimes: the half-open span ``[start, end)`` that "today" means for counts and reports.

    >>> start, end = local_day_bounds(date(2026, 11, 28), ZoneInfo("Asia/Jakarta"))
    >>> start.isoformat(), end.isoformat()
    ('2026-11-28T00:00:00+07:00', '2026-11-29T00:00:00+07:00')
    >>> start.astimezone(UTC).isoformat()
    '2026-11-27T17:00:00+00:00'
    """
    return (datetime.combine(day, time(0, 0), tzinfo=tz),
            datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=tz))


def seconds_between(start: datetime, end: datetime) -> float:
    """Elapsed seconds. Python subtracts two datetimes of the same zone as wall times (a DST day would
    come out 24 hours long), so both go to UTC first."""
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()


class WorkingCalendar:
    """When the station works.

    >>> cal = WorkingCalendar(["mon-fri 08:00-14:00"], [], ZoneInfo("Asia/Jakarta"))
    >>> cal.next_opening(datetime(2026, 11, 28, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))).isoformat()
    '2026-11-30T08:00:00+07:00'
    """

    def __init__(self, working_hours: list[str], holidays: list[str], tz: ZoneInfo):
        self.tz = tz
        self.weekly = parse_working_hours(working_hours)
        self.holidays = {date.fromisoformat(d) for d in holidays}

    def spans_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working spans of a local date as aware datetimes (none on a holiday)."""
        if day in self.holidays:
            return []
        midnight, next_midnight = local_day_bounds(day, self.tz)
        spans = []
        for start_min, end_min in self.weekly[day.weekday()]:
            start = self._at(day, start_min)
            end = self._at(day, end_min) if end_min < 24 * 60 else next_midnight
            if end > start >= midnight:
                spans.append((start, end))
        return spans

    def _at(self, day: date, minutes: int) -> datetime:
        # A wall time that a DST change skips (e.g. 02:30) becomes the instant the clocks jump to.
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.tz)
        return local.astimezone(UTC).astimezone(self.tz)

    def is_working(self, now: datetime) -> bool:
        local = now.astimezone(self.tz)
        instant = _instant(now)
        return any(_instant(start) <= instant < _instant(end) for start, end in self.spans_on(local.date()))

    def next_opening(self, now: datetime) -> datetime | None:
        """The first span start after ``now`` (or ``now`` itself when inside a span)."""
        local = now.astimezone(self.tz)
        for offset in range(LOOK_AHEAD_DAYS):
            for start, end in self.spans_on(local.date() + timedelta(days=offset)):
                if _instant(end) > _instant(local):
                    return max(start, local, key=_instant)
        return None

    def next_day_opening(self, now: datetime) -> datetime | None:
        """The first span start on a later local date than ``now``'s."""
        local = now.astimezone(self.tz)
        return self.next_opening(local_day_bounds(local.date(), self.tz)[1])

    def remaining_today(self, now: datetime) -> float:
        """Working seconds left today from ``now``."""
        local = now.astimezone(self.tz)
        return sum(max(0.0, seconds_between(max(start, local, key=_instant), end))
                   for start, end in self.spans_on(local.date()))

    def working_seconds(self, day: date) -> float:
        return sum(seconds_between(start, end) for start, end in self.spans_on(day))


def _instant(when: datetime) -> datetime:
    return when.astimezone(UTC)
