"""The office link as people see it: connected or not, since when, and the last error in plain words."""

from __future__ import annotations

import errno
import logging
import sys
from datetime import datetime
from typing import Any, Callable

from ..rules.clock import rfc3339
from ..service.journal_ids import MSG_LINK_DOWN, MSG_LINK_UP

log = logging.getLogger("kartud.mqtt")

# MQTT 5 CONNACK reason codes (and their 3.1.1 return codes) that say who we are is not welcome.
REFUSAL_WORDS = {
    0x84: "the broker does not speak this MQTT version",
    0x85: "the broker refused our client id",
    0x86: "bad user name or password",
    0x87: "not authorised",
    0x88: "the broker is unavailable",
    0x89: "the broker is busy",
    0x8A: "banned by the broker",
    0x8C: "bad authentication method",
    0x97: "the broker's quota is exceeded",
    0x9F: "the broker limits how often we may connect",
}


def error_words(exc: BaseException, where: str) -> str:
    """A failed connection attempt in plain words, e.g. ``connection refused at 10.0.0.5:8883``.

    >>> error_words(ConnectionRefusedError(111, "Connection refused"), "10.0.0.5:8883")
    'connection refused at 10.0.0.5:8883'
    """
    ssl = sys.modules.get("ssl")        # loaded only when the link speaks TLS (kartud.service.cli)
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {(exc.verify_message or exc.reason or str(exc)).rstrip('.')} (the broker at {where})"
    if ssl is not None and isinstance(exc, ssl.SSLError):
        reason = (exc.reason or str(exc)).lower().replace("_", " ").replace("sslv3 alert ", "")
        return f"TLS: {reason} (the broker at {where})"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused at {where}"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where}"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"no route to {where}"
    if isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return f"the broker at {where} closed the connection"
    if exc.__class__.__name__ == "gaierror":
        return f"cannot find the broker's address {where.rsplit(':', 1)[0]}"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{text[:1].lower()}{text[1:]} ({where})"


def refusal_words(reason_code, where: str) -> str:
    """A CONNACK that said no, in words: ``not authorised (the broker at 10.0.0.5:8883)``."""
    value = getattr(reason_code, "value", reason_code)
    words = REFUSAL_WORDS.get(value, str(reason_code).lower())
    return f"{words} (the broker at {where})"


def lost_words(reason: str, where: str) -> str:
    """The words for a connection that was up and went away."""
    if "keep alive" in reason.lower() or "keepalive" in reason.lower():
        return f"no answer from {where} (keepalive timeout)"
    return f"lost the broker at {where} ({reason})"


class OfficeLink:
    """Whether the broker is connected, since when, and the last error; owned by the event loop.

    The journal hears of a failure once, again only when the words change, and once when the link is
    back: endless reconnects never flood it.

    >>> from datetime import timezone
    >>> link = OfficeLink("127.0.0.1:1883", lambda: datetime(2026, 12, 1, tzinfo=timezone.utc))
    >>> link.down("connection refused at 127.0.0.1:1883")
    True
    >>> link.down("connection refused at 127.0.0.1:1883")
    False
    >>> link.status(timezone.utc)["connected"]
    False
    """

    def __init__(self, where: str, now: Callable[[], datetime],
                 protocol: Callable[[], dict[str, str]] | None = None):
        self.where = where
        self.now = now
        self.protocol = protocol        # the MQTT version spoken and why (ProtocolChoice.status)
        self.connected = False
        self.since = now()              # of the current state: up since, or down since
        self.last_error: str | None = None
        self._failing = False           # a failure was logged and the link is not back yet

    def up(self) -> bool:
        """The broker accepted us; True when this changes anything."""
        if self.connected:
            return False
        self.connected, self.since = True, self.now()
        if self._failing:
            log.info("the office link is back: connected to %s (the last error was: %s)", self.where,
                     self.last_error, extra={"message_id": MSG_LINK_UP})
        self._failing = False
        return True

    def down(self, error: str) -> bool:
        """A connection attempt failed or the connection was lost; True when this changes anything."""
        changed = self.connected or error != self.last_error or not self._failing
        if self.connected:
            self.connected, self.since = False, self.now()
        if not changed:
            return False
        self.last_error = error
        self._failing = True
        log.warning("the office link is down: %s; printing goes on, reconnecting (said again only when this "
                    "changes)", error, extra={"message_id": MSG_LINK_DOWN})
        return True

    def status(self, tz) -> dict[str, Any]:
        """The state document's ``office_link``: ``connected``, ``since``, ``broker``, ``last_error`` (None
        before any), and with a protocol source ``protocol`` ("5" or "3.1.1") and ``protocol_reason`` in words."""
        status = {"connected": self.connected, "since": rfc3339(self.since, tz), "broker": self.where,
                  "last_error": self.last_error}
        if self.protocol is not None:
            status.update(self.protocol())
        return status
