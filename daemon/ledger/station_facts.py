"""What the scheduler and the state document need, derived from the ledger at one instant (never counted).

Cards "started" are claims that fed a card: a claim taken back because nothing was fed (the
feed refused, e.g. head cooling) is not counted. The daemon (its scheduler and its state
document) and kartuctl with the daemon down both read the day through :func:`gather`.

How "today" is determined: the local date of ``station.timezone`` on the wall clock. Two guards
keep a wrong wall clock from printing past the daily limit:

- **forward jump** (an NTP correction, a mistyped date): every card start also records the
  machine's monotonic clock and boot id, and today's count is the larger of the cards started
  since local midnight by the wall clock and the cards started, in this boot, within the same
  number of monotonic seconds. A jump forward within one boot therefore opens no "new day".
- **backward jump** (an RTC-less Pi booting in 1970): if the wall clock reads more than
  ``CLOCK_BEHIND_TOLERANCE_S`` earlier than the newest audit row, the clock is "behind" and the
  station stops with reason ``clock_not_set`` until the clock is right again.

A jump forward across a reboot cannot be seen (monotonic time starts again at boot); keep NTP on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ..rules.calendar import local_day_bounds, seconds_between
from ..rules.clock import rfc3339

CLOCK_BEHIND_TOLERANCE_S = 600.0


@dataclass(frozen=True)
class LedgerFacts:
    started_today: int
    printed_today: int
    spoiled_today: int
    last_start: datetime | None
    clock_behind: bool
    counts: dict[str, int]
    stock: dict[str, dict[str, int]]
    queued_by_type: dict[str, int]
    cards_since_cleaning: int
    in_doubt_ids: list[str]


def _utc(when: datetime) -> str:
    return rfc3339(when.astimezone(timezone.utc))


def gather(store, now: datetime, tz, mono_now: float, boot_id: str) -> LedgerFacts:
    """One consistent read of the ledger (run it on the store's thread), at wall-clock ``now`` and
    monotonic ``mono_now`` of boot ``boot_id``: the one owner of "cards started today"."""
    conn = store.conn
    local = now.astimezone(tz)
    midnight, tomorrow = local_day_bounds(local.date(), tz)
    bounds = (_utc(midnight), _utc(tomorrow))
    by_kind = dict(conn.execute("SELECT kind, COUNT(*) FROM blank_movements WHERE at >= ? AND at < ?"
                                " GROUP BY kind", bounds).fetchall())
    since_midnight = seconds_between(midnight, local)
    window = (boot_id, mono_now - since_midnight)
    same_boot = conn.execute("SELECT COUNT(*) FROM blank_movements WHERE kind = 'reserved' AND boot_id = ?"
                             " AND mono >= ?", window).fetchone()[0] - \
        conn.execute("SELECT COUNT(*) FROM blank_movements WHERE kind = 'released' AND boot_id = ?"
                     " AND mono >= ?", window).fetchone()[0]
    last = conn.execute("SELECT MAX(at) FROM blank_movements WHERE kind = 'reserved' AND at >= ? AND at < ?",
                        bounds).fetchone()[0]
    newest = conn.execute("SELECT MAX(at) FROM audit").fetchone()[0]
    clock_behind = newest is not None and \
        (datetime.fromisoformat(newest) - now).total_seconds() > CLOCK_BEHIND_TOLERANCE_S
    queued = store.queued_counts("card_type")
    in_doubt = [r[0] for r in conn.execute("SELECT job_id FROM jobs WHERE state = 'in_doubt' ORDER BY seq")]
    return LedgerFacts(
        # A claim taken back (the feed failed before a card moved) used no blank and no head time.
        started_today=max(by_kind.get("reserved", 0) - by_kind.get("released", 0), same_boot),
        printed_today=by_kind.get("printed", 0), spoiled_today=by_kind.get("spoiled", 0),
        last_start=datetime.fromisoformat(last).astimezone(tz) if last else None,
        clock_behind=clock_behind, counts=store.counts(), stock=store.stock(), queued_by_type=queued,
        cards_since_cleaning=store.cards_since_cleaning(), in_doubt_ids=in_doubt)
