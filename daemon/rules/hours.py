"""Working hours: parse "mon-thu 08:00-14:00" entries and answer whether a local time is inside them."""

from __future__ import annotations

import re
from datetime import datetime

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ENTRY = re.compile(r"(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))? (?P<start>\d\d:\d\d)-(?P<end>\d\d:\d\d)")


def _minutes(text: str, entry: str, allow_24: bool) -> int:
    hours, minutes = int(text[:2]), int(text[3:])
    if allow_24 and hours == 24 and minutes == 0:
        return 24 * 60
    if hours > 23 or minutes > 59:
        raise ValueError(f"{entry!r}: {text} is not a time of day (00:00-23:59, or 24:00 as an end)")
    return hours * 60 + minutes


def parse_working_hours(entries: list[str]) -> dict[int, list[tuple[int, int]]]:
    """Map weekday (0 = Monday) to its working spans in minutes after local midnight.

    >>> parse_working_hours(["mon-thu 08:00-14:00", "fri 08:00-11:00"])[4]
    [(480, 660)]
    """
    spans: dict[int, list[tuple[int, int]]] = {day: [] for day in range(7)}
    for entry in entries:
        match = _ENTRY.fullmatch(entry.strip().lower())
        if not match:
            raise ValueError(f"{entry!r} is not \"<day>[-<day>] HH:MM-HH:MM\" (e.g. \"mon-thu 08:00-14:00\")")
        first, last = match["first"], match["last"] or match["first"]
        for day in (first, last):
            if day not in DAYS:
                raise ValueError(f"{entry!r}: {day!r} is not a day; use {', '.join(DAYS)}")
        start = _minutes(match["start"], entry, allow_24=False)
        end = _minutes(match["end"], entry, allow_24=True)
        if end <= start:
            raise ValueError(f"{entry!r}: the end must be after the start")
        first_i, last_i = DAYS.index(first), DAYS.index(last)
        if last_i < first_i:
            raise ValueError(f"{entry!r}: {first}-{last} runs backwards; write the days in week order")
        for day in range(first_i, last_i + 1):
            spans[day].append((start, end))
    for day, day_spans in spans.items():
        day_spans.sort()
        for (_, end_a), (start_b, _) in zip(day_spans, day_spans[1:]):
            if start_b < end_a:
                raise ValueError(f"two entries overlap on {DAYS[day]}")
    return spans


def is_working_time(spans: dict[int, list[tuple[int, int]]], local: datetime) -> bool:
    """Whether the local time ``local`` falls inside a working span."""
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in spans[local.weekday()])
