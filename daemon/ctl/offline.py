"""kartuctl without the daemon: the read-only commands answered from the database file, never writing to it."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from .. import __version__
from ..rules import jobs as J
from ..rules.calendar import local_day_bounds
from ..rules.clock import rfc3339
from ..rules.errors import CommandError
from ..ledger.daily_report import daily_report
from ..ledger.read_only import OfflineStore


class OfflineAnswers:
    """The read-only commands' data, computed as the daemon computes it, for a daemon that is down."""

    def __init__(self, config, store: OfflineStore, now: datetime | None = None):
        self.config = config
        self.store = store
        self.tz = config.tz
        self.now = (now or datetime.now(timezone.utc)).astimezone(self.tz)

    def answer(self, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The ``data`` the daemon would answer, or raise :class:`CommandError` as it would."""
        if command == "status/get":
            return self.status()
        if command == "job/list":
            return {"jobs": self.store.list_jobs(payload.get("state"), payload.get("limit", 100))}
        if command == "job/get":
            view = self.store.get_job(payload["job_id"])
            if view is None:
                raise CommandError("not_found", f"there is no job {payload['job_id']}")
            return view
        if command == "report/daily":
            return daily_report(self.store.conn, date.fromisoformat(payload["date"]), self.tz)
        raise CommandError("unknown_command", f"{command} needs the daemon")

    def status(self) -> dict[str, Any]:
        """What can be known of the station without its daemon: no mode, faults or devices, but the
        day's cards, the queue, the jobs in doubt and the blanks, exactly as the ledger has them."""
        store, low = self.store, self.config.blanks.low_threshold
        today = store.cards_started_between(*local_day_bounds(self.now.date(), self.tz))
        counts = store.counts()
        stock = store.stock()
        in_doubt = [r[0] for r in store.conn.execute("SELECT job_id FROM jobs WHERE state = ? ORDER BY seq LIMIT 20",
                                                     (J.IN_DOUBT,))]
        return {
            "station": self.config.station.id,
            "daemon": "not_running",
            "version": __version__,
            "at": rfc3339(self.now),
            "mode": None,
            "reason": None,
            "paused_reason": store.get_setting("paused_reason"),
            "faults": [],
            "today": {"date": self.now.date().isoformat(), "printed": today["printed"], "spoiled": today["spoiled"],
                      "started": today["started"], "limit": self.config.limits.daily},
            "next_print_at": None,
            # "printing" here is a card that was mid-way when the daemon stopped: in doubt at its next start.
            "queue": {"queued": counts[J.QUEUED], "in_doubt": counts[J.IN_DOUBT], "printing": counts[J.PRINTING]},
            "in_doubt_jobs": in_doubt,
            "blanks": {t: {"in_stock": stock[t]["in_stock"], "low": stock[t]["in_stock"] < low}
                       for t in self.config.station.card_types},
            "printer": {"connected": None, "cards_until_cleaning": max(0, self.config.limits.cleaning_every
                                                                       - store.cards_since_cleaning())},
        }

