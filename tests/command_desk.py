"""A desk for the commands without a daemon: :class:`Commands` on a real store, answered on the test's thread."""

from __future__ import annotations

import asyncio
from typing import Any

from kartud.ledger.store import Store
from kartud.rules.clock import rfc3339
from kartud.rules.config import from_dict
from kartud.rules.errors import CommandError
from kartud.service.commands import Commands

TABLES = ("jobs", "printed_records", "blank_stock", "blank_batches", "blank_movements", "blank_adjustments",
          "cleanings", "settings", "audit")


class Desk:
    """A :class:`~kartud.service.commands.CommandsHost` on ``store``: every store call runs at once, the state
    document is a small stand-in read from the store, and the jobs announced are kept in ``changed``."""

    def __init__(self, store: Store, **security: Any):
        self.store = store
        self.clock = store.clock
        self.config = from_dict({"station": {"id": "desk-01", "card_types": ["KTP_EL", "KIA"]},
                                 "security": security})
        self.tz = self.config.tz
        self.commands = Commands(self)
        self.changed: list[dict[str, Any]] = []
        self.mqtt = None

    async def db(self, fn, *args):
        return fn(*args)

    async def cpu(self, fn, *args):
        return fn(*args)

    def job_changed(self, view):
        self.changed.append(view)

    def stock_changed(self):
        pass

    async def set_paused(self, reason):
        self.store.set_setting("paused_reason", reason, "queue_paused" if reason else "queue_resumed",
                               {"reason": reason})

    async def state_document(self):
        return {"at": rfc3339(self.clock.now()), "paused_reason": self.store.get_setting("paused_reason"),
                "queue": self.store.counts(), "blanks": self.store.stock(),
                "cards_since_cleaning": self.store.cards_since_cleaning()}

    def ask(self, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The response body to one request, as the intake would give it (without the echoed request_id)."""
        try:
            return {"status": "ok", "data": asyncio.run(self.commands.handle(command, payload))}
        except CommandError as error:
            return {"status": "error", "error": error.as_error()}

    def dump(self) -> list:
        """Everything the box keeps about its work (not the request memory itself)."""
        return [[tuple(row) for row in self.store.conn.execute(f"SELECT * FROM {table}")] for table in TABLES]
