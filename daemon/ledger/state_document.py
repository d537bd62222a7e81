"""The contract's state document, built in one place for the running daemon and for kartuctl without it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import __version__
from ..ledger.station_facts import LedgerFacts
from ..rules import jobs as J
from ..rules.clock import rfc3339

IN_DOUBT_LISTED = 20    # the document names this many jobs in doubt at most


@dataclass(frozen=True)
class Live:
    """What only a running daemon knows: its scheduler's decision, its faults and its devices."""

    mode: str | None
    reason: str | None
    next_print_at: datetime | None
    faults: dict[str, datetime] = field(default_factory=dict)           # code -> since
    printer: dict[str, Any] = field(default_factory=lambda: {"connected": None})
    encoder: dict[str, Any] = field(default_factory=dict)
    office_link: dict[str, Any] | None = None     # connected, since, last_error (the MQTT link's own view)


# A stopped daemon decides nothing and has no devices; whether its printer is there is unknown.
NOT_RUNNING = Live(mode=None, reason=None, next_print_at=None)


def state_document(config, ledger: LedgerFacts, now: datetime, paused_reason: str | None,
                   live: Live | None) -> dict[str, Any]:
    """The state document at ``now`` from one read of the ledger (:func:`~kartud.ledger.station_facts.gather`)
    and, from a running daemon, its ``live`` parts.

    With ``live`` None (kartuctl reading the database of a stopped daemon) the document says
    ``"daemon": "not_running"``, has no mode, reason, faults, next card or encoder, counts the
    jobs left ``printing`` in ``queue.printing``, and its printer's ``connected`` is None.
    """
    tz, low, counts = config.tz, config.blanks.low_threshold, ledger.counts
    parts = live or NOT_RUNNING
    queue = {"queued": counts[J.QUEUED], "in_doubt": counts[J.IN_DOUBT]}
    if live is None:
        # A card that was mid-way when the daemon stopped: in doubt at its next start.
        queue["printing"] = counts[J.PRINTING]
    document: dict[str, Any] = {"station": config.station.id}
    if live is None:
        document["daemon"] = "not_running"
    document.update({
        "version": __version__,
        "at": rfc3339(now, tz),
        "mode": parts.mode,
        "reason": parts.reason,
        "faults": [{"code": code, "since": rfc3339(since, tz)} for code, since in parts.faults.items()],
        "today": {"date": now.astimezone(tz).date().isoformat(), "printed": ledger.printed_today,
                  "spoiled": ledger.spoiled_today, "limit": config.limits.daily,
                  "started": ledger.started_today},       # extension: what counts against the limit
        "next_print_at": rfc3339(parts.next_print_at, tz) if parts.next_print_at else None,
        "queue": queue,
        "in_doubt_jobs": ledger.in_doubt_ids[:IN_DOUBT_LISTED],   # extension: which jobs wait for job/resolve
        "paused_reason": paused_reason,                            # extension: what queue/pause was given
        "blanks": {t: {"in_stock": ledger.stock[t]["in_stock"], "low": ledger.stock[t]["in_stock"] < low}
                   for t in config.station.card_types},
        "printer": _printer(parts.printer, max(0, config.limits.cleaning_every - ledger.cards_since_cleaning)),
    })
    if live is not None:
        document["encoder"] = live.encoder
        if live.office_link is not None:
            document["office_link"] = live.office_link      # extension: the broker link, in words
    return document


def _printer(printer: dict[str, Any], ledger_until_cleaning: int) -> dict[str, Any]:
    """The contract's printer object, and what the printer said about itself (firmware, ribbon type, its
    counters: :meth:`~kartud.hw.printer.PrinterStatus.as_dict`). ``cards_until_cleaning`` is the printer's own
    count when it reports one, else the ledger's; ``cleaning_count_from`` (extension) says which."""
    own = printer.get("cards_until_cleaning")
    return {**printer, "cards_until_cleaning": own if own is not None else ledger_until_cleaning,
            "cleaning_count_from": "printer" if own is not None else "ledger"}
