"""kartuctl without the daemon: the read-only commands answered from the database file, never writing to it."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from ..rules.errors import CommandError
from ..ledger.daily_report import daily_report
from ..ledger.quarantine import quarantined
from ..ledger.read_only import OfflineStore
from ..ledger.state_document import state_document
from ..ledger.station_facts import gather


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
        if command == "quarantine/list":
            return {"quarantined": quarantined(self.store.conn)}
        raise CommandError("unknown_command", f"{command} needs the daemon")

    def status(self) -> dict[str, Any]:
        """What can be known of the station without its daemon: no mode, faults or devices, but the
        day's cards, the queue, the jobs in doubt and the blanks, exactly as the ledger has them."""
        store = self.store
        # The daemon's own read of the ledger; on this machine kartuctl's monotonic clock and boot id
        # are the daemon's, so a wall clock that jumped forward opens no new day here either.
        ledger = gather(store, self.now, self.tz, store.clock.monotonic(), store.clock.boot_id)
        return state_document(self.config, ledger, self.now, store.get_setting("paused_reason"), live=None)
