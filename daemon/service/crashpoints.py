"""Test-only crash points: die with SIGKILL at a named instant, so crash tests can hit every transition.

Set ``KARTUD_CRASH_AT=<point>[:<n>]`` in the daemon's environment to kill it the n-th time (default
the first) it passes ``<point>``. Unset (always, in production) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after_submit_commit", "after_claim", "after_feed", "after_encode", "after_print", "after_eject",
          "after_printed", "after_spoiled")

_target = os.environ.get("KARTUD_CRASH_AT", "")
_name, _, _count = _target.partition(":")
_remaining = int(_count) if _count.isdigit() else 1
if _name and _name not in POINTS:
    raise SystemExit(f"KARTUD_CRASH_AT: unknown point {_name!r}; known: {', '.join(POINTS)}")


def crash_point(name: str) -> None:
    """Kill this process here if the test asked for it (no cleanup, no flush: a power cut)."""
    global _remaining
    if name != _name:
        return
    _remaining -= 1
    if _remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
