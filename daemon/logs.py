"""Logging to stderr in plain words, with syslog priority prefixes that journald reads when it runs us."""

from __future__ import annotations

import logging
import os
import sys

# journald turns a leading "<N>" on a stderr line into the record's priority (SyslogLevelPrefix=).
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


class _Formatter(logging.Formatter):
    def __init__(self, journald: bool):
        super().__init__("%(message)s" if journald else "%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if self.journald:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{text}"
        return text


def setup_logging(level: str = "INFO") -> None:
    """Send kartud's log records to stderr; under systemd, journald picks them up with their priority."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(journald=bool(os.environ.get("JOURNAL_STREAM"))))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # paho logs nothing we need; keep third-party chatter down.
    logging.getLogger("PIL").setLevel(logging.WARNING)
