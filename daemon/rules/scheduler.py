"""The one answer to "may the next card start now, and if not, why and when?", derived from the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ..rules.calendar import local_day_bounds, seconds_between
from ..rules.card_types import CHIP_CARD_TYPES

if TYPE_CHECKING:
    from ..rules.calendar import WorkingCalendar

PRINTER_FAULTS_THAT_WAIT = ("head_cooling",)  # clear by themselves: the station waits, no person needed


@dataclass(frozen=True)
class Facts:
    """What the decision rests on, gathered from the store and the devices at one instant."""

    now: datetime                       # aware; the station's local time zone
    paused: bool
    printer_faults: tuple[str, ...]
    encoder_fault: bool
    queued_by_type: dict[str, int]      # queued jobs per card type
    in_doubt: int
    in_stock: dict[str, int]            # blanks in stock per card type
    started_today: int                  # cards fed today (printed, spoiled or in hand)
    daily_limit: int
    chip_types: tuple[str, ...] = CHIP_CARD_TYPES
    in_press: bool = False              # a card is on its way through the printer right now
    cards_since_cleaning: int = 0       # blanks fed since the last maintenance/cleaned
    cleaning_every: int = 1000
    calendar: "WorkingCalendar | None" = None   # None: no working-hours rule (tests of the other rules)
    pacing: str = "none"                # "even": spread the day's remaining cards over its remaining hours
    last_start: datetime | None = None  # when the last card of today was fed
    clock_behind: bool = False          # the wall clock reads earlier than the ledger's last entry
    day_ends_at: datetime | None = None  # when the day that started_today counts ends; None: local midnight


@dataclass(frozen=True)
class Decision:
    """``mode`` and ``reason`` as the state document names them; ``card_types`` may start now."""

    mode: str
    reason: str | None
    next_print_at: datetime | None = None
    card_types: tuple[str, ...] = ()

    @property
    def may_start(self) -> bool:
        return self.mode == "printing"


def next_local_midnight(now: datetime) -> datetime:
    """The start of the next local day of ``now``'s time zone."""
    return local_day_bounds(now.date(), now.tzinfo)[1]


def decide(facts: Facts) -> Decision:
    """Apply the station's rules in order of who must act: the operator, the printer, then the limits.

    A card already in the press is finished whatever else holds (mode ``printing``). Each waiting
    decision says when it may change by itself (``next_print_at``) where that is known.
    """
    if facts.in_press:
        return Decision("printing", None, None, ())
    if facts.paused:
        return Decision("paused", "paused_by_operator")
    blocking = [f for f in facts.printer_faults if f not in PRINTER_FAULTS_THAT_WAIT]
    if blocking:
        return Decision("fault", "printer_fault")
    queued = {t: n for t, n in facts.queued_by_type.items() if n > 0}
    if not queued:
        return Decision("idle", "in_doubt_jobs" if facts.in_doubt else "queue_empty")
    if facts.clock_behind:
        # Printing on a clock that went back (an RTC-less boot in 1970) could start a "new day".
        return Decision("fault", "clock_not_set")
    calendar = facts.calendar
    if facts.started_today >= facts.daily_limit:
        # After a wall-clock jump the day that holds the limit can end before local midnight.
        turn = facts.day_ends_at or next_local_midnight(facts.now)
        return Decision("waiting", "daily_limit_reached", calendar.next_opening(turn) if calendar else turn)
    if facts.cards_since_cleaning >= facts.cleaning_every:
        return Decision("waiting", "cleaning_due")
    if calendar is not None and not calendar.is_working(facts.now):
        return Decision("waiting", "outside_working_hours", calendar.next_opening(facts.now))
    if facts.printer_faults:
        return Decision("waiting", "printer_fault")
    stocked = tuple(t for t in queued if facts.in_stock.get(t, 0) > 0)
    if not stocked:
        return Decision("waiting", "out_of_blanks")
    printable = tuple(t for t in stocked if not (facts.encoder_fault and t in facts.chip_types))
    if not printable:
        return Decision("fault", "encoder_fault")
    if facts.pacing == "even" and calendar is not None and facts.last_start is not None:
        due = paced_start(facts.now, facts.last_start, calendar.remaining_today(facts.now),
                          facts.daily_limit - facts.started_today)
        if due > facts.now:
            return Decision("waiting", "pacing", due)
    return Decision("printing", None, facts.now, printable)


def paced_start(now: datetime, last_start: datetime, remaining_s: float, remaining_cards: int) -> datetime:
    """When the next card may start under even pacing.

    The rule: a card starts once the time since the last start is at least the remaining working
    time divided by the cards still allowed today. As working time runs out while waiting, the
    instant solves ``t - last = (remaining_now - (t - now)) / n``; a late start therefore catches up
    with shorter gaps, and never faster than the printer itself, which takes its own time a card.
    """
    n = max(1, remaining_cards)
    since_last = seconds_between(last_start, now)
    if since_last * n >= remaining_s:
        return now
    elapsed_at_due = (remaining_s + since_last) / (n + 1)
    return (last_start.astimezone(timezone.utc) + timedelta(seconds=elapsed_at_due)).astimezone(now.tzinfo)
