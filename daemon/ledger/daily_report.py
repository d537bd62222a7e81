"""The daily blank report, recomputed from the append-only blank movements and audit rows for any local date."""

from __future__ import annotations

from datetime import date, timezone
from zoneinfo import ZoneInfo

from ..rules.calendar import local_day_bounds
from ..rules.card_types import CARD_TYPES
from ..rules.clock import rfc3339

# The job outcomes the report counts, by the state a job moved to that day.
OUTCOMES = ("failed", "cancelled", "expired", "in_doubt")


def day_bounds(day: date, tz: ZoneInfo) -> tuple[str, str]:
    """The UTC timestamps (as stored) where the local ``day`` begins and the next one begins."""
    start, end = local_day_bounds(day, tz)
    return rfc3339(start.astimezone(timezone.utc)), rfc3339(end.astimezone(timezone.utc))


def _on_hand(sums: dict[str, int]) -> int:
    """Blanks the station holds (in stock or in the printer): what came in less what was used up."""
    return sums.get("received", 0) + sums.get("adjusted", 0) - sums.get("printed", 0) - sums.get("spoiled", 0)


def _sums(conn, card_type: str, where: str, args: tuple) -> dict[str, int]:
    rows = conn.execute(f"SELECT kind, SUM(count) FROM blank_movements WHERE card_type = ? AND {where} GROUP BY kind",
                        (card_type, *args)).fetchall()
    return {kind: total for kind, total in rows}


def daily_report(conn, day: date, tz: ZoneInfo) -> dict:
    """The contract's daily report for the local ``day``, plus the list of spoiled cards (for the berita
    acara of destroyed blanks). Per card type ``closing = opening + received - printed - spoiled +
    adjusted`` holds by construction, and the figures are the same however often it is recomputed."""
    start, end = day_bounds(day, tz)
    blanks = {}
    for card_type in CARD_TYPES:
        before = _sums(conn, card_type, "at < ?", (start,))
        during = _sums(conn, card_type, "at >= ? AND at < ?", (start, end))
        opening = _on_hand(before)
        figures = {kind: during.get(kind, 0) for kind in ("received", "printed", "spoiled", "adjusted")}
        blanks[card_type] = {"opening": opening, **figures,
                             "closing": opening + figures["received"] - figures["printed"] - figures["spoiled"]
                             + figures["adjusted"]}
    spoiled_rows = conn.execute(
        "SELECT m.job_id, m.card_type, m.reason, m.at, m.batch_id FROM blank_movements m WHERE m.kind = 'spoiled'"
        " AND m.at >= ? AND m.at < ? ORDER BY m.id", (start, end)).fetchall()
    spoiled: dict[str, int] = {}
    for row in spoiled_rows:
        spoiled[row[2] or "unknown"] = spoiled.get(row[2] or "unknown", 0) + 1
    outcomes = dict(conn.execute(
        "SELECT json_extract(detail, '$.to') AS moved_to, COUNT(*) FROM audit WHERE at >= ? AND at < ?"
        " AND job_id IS NOT NULL AND json_extract(detail, '$.to') IN ('failed', 'cancelled', 'expired', 'in_doubt')"
        " GROUP BY moved_to", (start, end)).fetchall())
    return {
        "date": day.isoformat(),
        "printed": sum(b["printed"] for b in blanks.values()),
        "spoiled": spoiled,
        **{outcome: outcomes.get(outcome, 0) for outcome in OUTCOMES},
        "blanks": blanks,
        "spoiled_cards": [{"job_id": r[0], "card_type": r[1], "reason": r[2], "at": r[3], "batch_id": r[4]}
                          for r in spoiled_rows],
    }
