"""Logging: to journald with structured KARTUD_* fields when it is there, the same content on stderr when not."""

from __future__ import annotations

import logging
import os
import re
import sys

from ..rules.jobs import mask_nik
from ..service.journal_socket import SOCKET_PATH, JournalSocket

JOURNAL_SOCKET = SOCKET_PATH
SYSLOG_IDENTIFIER = "kartud"

# The ``extra=`` keys kartud logs with, and the journal field each becomes:
# ``log.info("job %s printed", job_id, extra={"job": job_id, "message_id": MSG_JOB_PRINTED})``.
FIELDS = {
    "job": "KARTUD_JOB",
    "record": "KARTUD_RECORD",
    "state": "KARTUD_STATE",
    "step": "KARTUD_STEP",
    "fault": "KARTUD_FAULT",
    "card_type": "KARTUD_CARD_TYPE",
    "batch": "KARTUD_BATCH",
    "count": "KARTUD_COUNT",
    "command": "KARTUD_COMMAND",
    "message_id": "MESSAGE_ID",
}

# journald's PRIORITY (syslog levels) for Python's levels; a level in between takes the next one up.
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))

# A NIK is 16 digits. Any such run in a log line is masked the way the job view masks it, whatever
# put it there (a record id that embeds a NIK, an exception message, ...).
_SIXTEEN_DIGITS = re.compile(r"(?<![0-9])[0-9]{16}(?![0-9])")


def scrub(text: str) -> str:
    """``text`` with every 16-digit number masked as a NIK (``357401******0001``)."""
    return _SIXTEEN_DIGITS.sub(lambda m: mask_nik(m.group()), text)


def priority(levelno: int) -> int:
    for level, value in _PRIORITIES:
        if levelno >= level:
            return value
    return 7


_MESSAGE = logging.Formatter("%(message)s")   # the message with any traceback, as journald's MESSAGE


def journal_fields(record: logging.LogRecord) -> dict[str, str]:
    """Every journal field of one record, personal data scrubbed: MESSAGE, PRIORITY, the code location,
    and a KARTUD_* field (or MESSAGE_ID) for each known ``extra`` key the record carries."""
    fields = {
        "MESSAGE": _MESSAGE.format(record),
        "PRIORITY": str(priority(record.levelno)),
        "SYSLOG_IDENTIFIER": SYSLOG_IDENTIFIER,
        "LOGGER": record.name,
        "CODE_FILE": record.pathname or "",
        "CODE_LINE": str(record.lineno),
        "CODE_FUNC": record.funcName or "",
        "THREAD_NAME": record.threadName or "",
    }
    for key, field in FIELDS.items():
        value = getattr(record, key, None)
        if value is not None:
            fields[field] = str(value)
    return {name: scrub(value) for name, value in fields.items()}


def _extra_fields(fields: dict[str, str]) -> str:
    """The record's own fields as ``KARTUD_JOB=j-1 MESSAGE_ID=...`` for a stderr line."""
    return " ".join(f"{name}={fields[name]}" for name in FIELDS.values() if name in fields)


class JournalHandler(logging.Handler):
    """Sends each record to journald over its native protocol (:mod:`kartud.service.journal_socket`).

    If a record cannot be sent (journald restarting, its socket gone), the line goes to stderr
    instead, so nothing is lost silently.
    """

    def __init__(self, fallback: logging.Handler, path: str | None = None):
        super().__init__()
        self.journal = JournalSocket(path or JOURNAL_SOCKET)
        self.fallback = fallback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.journal.send(journal_fields(record).items())
        except OSError:
            self.fallback.handle(record)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.journal.close()
        super().close()


class StderrFormatter(logging.Formatter):
    """One line per record with the journal's content: time, level, logger, message, then the KARTUD_*
    fields. Under systemd without the journal socket the line starts with ``<priority>``, which
    journald reads from a stream (and then stamps the time itself)."""

    def __init__(self, under_systemd: bool):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.under_systemd = under_systemd

    def format(self, record: logging.LogRecord) -> str:
        fields = journal_fields(record)
        extra = _extra_fields(fields)
        if self.under_systemd:
            text = f"<{fields['PRIORITY']}>{record.name}: {fields['MESSAGE']}"
        else:
            text = scrub(super().format(record))
        return f"{text} [{extra}]" if extra else text


def journald_available() -> bool:
    """True when records should go to journald: its socket exists and we are not printing to a person's
    terminal (``kartud run`` typed at a shell shows its log there)."""
    if not os.path.exists(JOURNAL_SOCKET):
        return False
    return bool(os.environ.get("JOURNAL_STREAM")) or not sys.stderr.isatty()


def setup_logging(level: str = "INFO", journal: bool | None = None) -> None:
    """Route every record (kartud's and its libraries') to journald when it is there, else to stderr.

    ``journal`` forces the choice; None decides by :func:`journald_available`.
    """
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(StderrFormatter(under_systemd=bool(os.environ.get("JOURNAL_STREAM"))))
    handler: logging.Handler = stderr
    if journald_available() if journal is None else journal:
        handler = JournalHandler(fallback=stderr)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)   # library warnings (gpiozero's pin factory fallbacks) get the same fields
    # Third-party chatter: only what needs attention.
    logging.getLogger("PIL").setLevel(logging.WARNING)
