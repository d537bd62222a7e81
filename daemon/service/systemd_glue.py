"""Talking to systemd: READY, STATUS, STOPPING and WATCHDOG notifications on $NOTIFY_SOCKET."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("kartud.systemd")


def notify_address(value: str | None) -> str | None:
    """The socket address ``$NOTIFY_SOCKET`` names, or None when it names none we can reach.

    sd_notify(3): a path, or ``@name`` for the abstract namespace (a leading NUL for the kernel). Other
    forms (``vsock:``, from systemd 253) are not ones a box's service manager hands a service.
    """
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    return value if value.startswith("/") else None


def notify(message: str) -> bool:
    """Send one notification; False when there is no service manager to hear it.

    The protocol of sd_notify(3), spoken with the standard library: the message as one datagram to the
    AF_UNIX socket in ``NOTIFY_SOCKET`` (libsystemd, which did this before, cost 0.8 MiB of the idle
    daemon: docs/performance.md, "Memory"). The variable is read on every call, so a test may set it
    before starting us; the kernel adds our credentials, from which systemd sees that the main process
    (``NotifyAccess=main``) sent it.
    """
    address = notify_address(os.environ.get("NOTIFY_SOCKET"))
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)
        return True
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
