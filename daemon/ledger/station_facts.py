"""What the scheduler and the state document need, derived from the ledger at one instant (never counted).

Cards "started" are claims that fed a card: a claim taken back because nothing was fed (the
feed refused, e.g. head cooling) is not counted. The daemon (its scheduler and its state
document) and kartuctl with the daemon down both read the day through :func:`gather`.

How "today" is determined: the local date of ``station.timezone`` on the wall clock. Two guards
keep a wrong wall clock from printing past the daily limit:

- **forward jump** (an NTP correction, a mistyped date): every card start also records the
  machine's monotonic clock and boot id. Today's count is the larger of the cards started since
  local midnight by the wall clock, and, for each wall clock a card of this boot was started under
  in the last two days, the cards started in this boot since that clock's local midnight, counted
  on the monotonic clock (:func:`started_in_any_frame`). A jump forward within one boot therefore
  opens no "new day", whatever the working hours: the day of the cards before the jump holds until
  it ends, and ``day_ends_at`` says when that is.
- **backward jump** (an RTC-less Pi booting in 1970): if the wall clock reads more than
  ``CLOCK_BEHIND_TOLERANCE_S`` earlier than the newest audit row, the clock is "behind" and the
  station stops with reason ``clock_not_set`` until the clock is right again.

A jump forward across a reboot cannot be seen (monotonic time starts again at boot); keep NTP on.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..rules.calendar import local_day_bounds
from ..rules.clock import rfc3339

CLOCK_BEHIND_TOLERANCE_S = 600.0
RECENT_S = 2 * 86400.0         # a day in progress began less than this long ago, on any wall clock


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
    day_ends_at: datetime | None = None     # when the day that started_today counts ends (a jump can make it soon)


def _utc(when: datetime) -> str:
    return rfc3339(when.astimezone(timezone.utc))


def started_in_any_frame(conn, now: datetime, tz, mono_now: float, boot_id: str) -> tuple[int, datetime]:
    """Cards started in this boot during the day in progress, by every wall clock the boot's claims were
    recorded under (a "frame": wall time minus monotonic time, which a jump changes): the largest count,
    and when the day that has it ends, as the wall clock reads now.

    Each claim's own record says which frame it was made in and when, on the monotonic clock, so the
    day in progress of each frame begins at a known monotonic instant: counting from there needs no
    wall time reconstructed. A frame's day can have begun at most a day and a DST hour ago, so only
    the claims of the last two days matter.
    """
    recent = (boot_id, mono_now - RECENT_S)
    claims = conn.execute("SELECT at, mono FROM blank_movements WHERE kind = 'reserved' AND boot_id = ?"
                          " AND mono >= ?", recent).fetchall()
    starts = sorted(mono for _, mono in claims)
    taken_back = sorted(row[0] for row in conn.execute(     # claims taken back: nothing was fed
        "SELECT mono FROM blank_movements WHERE kind = 'released' AND boot_id = ? AND mono >= ?", recent))
    # Rounded to the second, as the ledger records wall time: one frame gives one or two offsets.
    frames = {round(now.timestamp() - mono_now)} | \
        {round(datetime.fromisoformat(at).timestamp() - mono) for at, mono in claims}
    most, ends = 0, None
    for offset in frames:
        frame_now = datetime.fromtimestamp(mono_now + offset, tz)      # what that wall clock would read now
        began, end = (bound.timestamp() - offset for bound in local_day_bounds(frame_now.date(), tz))
        count = len(starts) - bisect_left(starts, began) - (len(taken_back) - bisect_left(taken_back, began))
        if ends is None or count > most or (count == most and end < ends):
            most, ends = count, end
    return most, (now + timedelta(seconds=ends - mono_now)).astimezone(tz)


def clock_behind(conn, now: datetime) -> bool:
    """Whether the wall clock reads more than ``CLOCK_BEHIND_TOLERANCE_S`` earlier than the newest audit row:
    the clock is not set (``clock_not_set``). The scheduler stops printing then, and a signed request's
    ``ts`` is not judged (see :func:`kartud.rules.signing.check_fresh`)."""
    newest = conn.execute("SELECT MAX(at) FROM audit").fetchone()[0]
    return newest is not None and (datetime.fromisoformat(newest) - now).total_seconds() > CLOCK_BEHIND_TOLERANCE_S


def gather(store, now: datetime, tz, mono_now: float, boot_id: str) -> LedgerFacts:
    """One consistent read of the ledger (run it on the store's thread), at wall-clock ``now`` and
    monotonic ``mono_now`` of boot ``boot_id``: the one owner of "cards started today"."""
    conn = store.conn
    local = now.astimezone(tz)
    midnight, tomorrow = local_day_bounds(local.date(), tz)
    bounds = (_utc(midnight), _utc(tomorrow))
    by_kind = dict(conn.execute("SELECT kind, COUNT(*) FROM blank_movements WHERE at >= ? AND at < ?"
                                " GROUP BY kind", bounds).fetchall())
    by_wall = by_kind.get("reserved", 0) - by_kind.get("released", 0)
    same_boot, same_boot_ends = started_in_any_frame(conn, now, tz, mono_now, boot_id)
    last = conn.execute("SELECT MAX(at) FROM blank_movements WHERE kind = 'reserved' AND at >= ? AND at < ?",
                        bounds).fetchone()[0]
    behind = clock_behind(conn, now)
    queued = store.queued_counts("card_type")
    in_doubt = [r[0] for r in conn.execute("SELECT job_id FROM jobs WHERE state = 'in_doubt' ORDER BY seq")]
    return LedgerFacts(
        # A claim taken back (the feed failed before a card moved) used no blank and no head time.
        started_today=max(by_wall, same_boot),
        day_ends_at=tomorrow if by_wall > same_boot else min(tomorrow, same_boot_ends, key=datetime.timestamp),
        printed_today=by_kind.get("printed", 0), spoiled_today=by_kind.get("spoiled", 0),
        last_start=datetime.fromisoformat(last).astimezone(tz) if last else None,
        clock_behind=behind, counts=store.counts(), stock=store.stock(), queued_by_type=queued,
        cards_since_cleaning=store.cards_since_cleaning(), in_doubt_ids=in_doubt)
