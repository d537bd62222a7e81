"""``kartud run`` for the storm: the real daemon, its ``time.sleep`` a select wait so libfaketime can move its clock.

libfaketime 0.9.10 (Debian 12) with the monotonic clock left alone (``FAKETIME_DONT_FAKE_MONOTONIC=1``)
makes Python's ``time.sleep`` fail with EINVAL: Python sleeps with ``clock_nanosleep(CLOCK_MONOTONIC,
TIMER_ABSTIME)`` and libfaketime rewrites the absolute deadline. A select timeout is relative and
unaffected; paho's reconnect wait is the one ``time.sleep`` on the daemon's path. Nothing else changes.
"""

from __future__ import annotations

import select
import sys
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    select.select([], [], [], seconds)


def main(argv: list[str] | None = None) -> int:
    time.sleep = _sleep
    from ..service.cli import main as kartud_main

    return kartud_main(argv)


if __name__ == "__main__":
    sys.exit(main())
