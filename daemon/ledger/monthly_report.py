"""The monthly blank report: one daily report per day, summed, so that every day and the month balance."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any, Callable, Iterable

FIGURES = ("opening", "received", "printed", "spoiled", "adjusted", "closing")
MOVEMENTS = ("received", "printed", "spoiled", "adjusted")
OUTCOMES = ("failed", "cancelled", "expired", "in_doubt")


def month_days(year: int, month: int, today: date) -> list[date]:
    """The days of the month that have begun (all of them for a past month, none for a future one)."""
    last = min(date(year, month, calendar.monthrange(year, month)[1]), today)
    first = date(year, month, 1)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def month_report(daily: Callable[[date], dict[str, Any]], days: Iterable[date]) -> dict[str, Any]:
    """``{"month", "from", "to", "days": [daily report...], "totals": {...}, "spoiled_cards": [...]}``.

    ``daily`` is the daily report for one local date (over the control socket or from the database);
    the totals add up the days, so the month's opening is its first day's, its closing the last day's,
    and ``closing = opening + received - printed - spoiled + adjusted`` holds for the month because it
    holds for every day and each day opens where the one before closed.
    """
    reports = [daily(day) for day in days]
    if not reports:
        raise ValueError("no day of this month has begun")
    card_types = list(reports[0]["blanks"])
    blanks = {}
    for card_type in card_types:
        figures = {kind: sum(r["blanks"][card_type][kind] for r in reports) for kind in MOVEMENTS}
        blanks[card_type] = {"opening": reports[0]["blanks"][card_type]["opening"], **figures,
                             "closing": reports[-1]["blanks"][card_type]["closing"]}
    spoiled: dict[str, int] = {}
    for report in reports:
        for reason, count in report["spoiled"].items():
            spoiled[reason] = spoiled.get(reason, 0) + count
    first = date.fromisoformat(reports[0]["date"])
    return {
        "month": first.strftime("%Y-%m"),
        "from": reports[0]["date"],
        "to": reports[-1]["date"],
        "days": reports,
        "totals": {"printed": sum(r["printed"] for r in reports), "spoiled": spoiled,
                   **{outcome: sum(r[outcome] for r in reports) for outcome in OUTCOMES}, "blanks": blanks},
        "spoiled_cards": [card for r in reports for card in r.get("spoiled_cards", [])],
    }


def shown_card_types(blanks: dict[str, dict[str, int]], station_types: Iterable[str]) -> list[str]:
    """The card types a report shows: the station's own, plus any other that moved or is held."""
    station_types = list(station_types)
    return [t for t in blanks if t in station_types or any(blanks[t][k] for k in FIGURES)]


def spoiled_by_type(cards: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """``{reason: {card_type: count}}`` from a list of spoiled cards, reasons in order of first appearance."""
    table: dict[str, dict[str, int]] = {}
    for card in cards:
        row = table.setdefault(card.get("reason") or "unknown", {})
        row[card["card_type"]] = row.get(card["card_type"], 0) + 1
    return table
