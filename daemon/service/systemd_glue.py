"""Talking to systemd: READY, STATUS, STOPPING and WATCHDOG notifications on $NOTIFY_SOCKET."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("kartud.systemd")

try:
    from systemd import daemon as _sd_daemon
except ImportError:  # systemd-python missing: notifications are simply not sent
    _sd_daemon = None


def notify(message: str) -> bool:
    """Send one notification; False when there is no service manager to hear it.

    libsystemd reads ``NOTIFY_SOCKET`` on every call, so a test may set it before starting us.
    """
    if _sd_daemon is None or not os.environ.get("NOTIFY_SOCKET"):
        return False
    try:
        return bool(_sd_daemon.notify(message))
    except OSError as exc:  # nobody listens on the socket: the manager is gone, we carry on
        log.debug("cannot notify the service manager: %s", exc)
        return False


def watchdog_interval() -> float | None:
    """Seconds between keep-alive pings (half of WatchdogSec), or None when no watchdog is armed for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6 / 2
    except ValueError:
        return None
