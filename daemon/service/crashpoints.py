"""Test-only crash points: die with SIGKILL at a named instant, so crash tests can hit every transition.

Set ``KARTUD_CRASH_AT=<point>[:<n>]`` in the daemon's environment to kill it the n-th time (default
the first) it passes ``<point>``. Unset (always, in production) it costs one dictionary lookup.
``<point>@<subject>`` counts only passes about that subject (``while_handling@queue/pause``: only
while handling that command). ``KARTUD_DEFECT_AT=<point>[@<subject>]`` makes every such pass raise
:class:`InjectedDefect` instead, as a bug would.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after_submit_commit", "after_claim", "after_feed", "after_encode", "after_print", "after_eject",
          "after_printed", "after_spoiled",
          "personal_committed")    # the personal-data file committed, the ledger not yet (@jobs, @erasure)
REQUEST_POINTS = ("while_handling",)    # inside the handling of one request: name its command as the subject

_target = os.environ.get("KARTUD_CRASH_AT", "")
_name, _, _count = _target.partition(":")
_name, _, _subject = _name.partition("@")
_defect, _, _defect_subject = os.environ.get("KARTUD_DEFECT_AT", "").partition("@")
_remaining = int(_count) if _count.isdigit() else 1
for _variable, _point in (("KARTUD_CRASH_AT", _name), ("KARTUD_DEFECT_AT", _defect)):
    if _point and _point not in POINTS + REQUEST_POINTS:
        raise SystemExit(f"{_variable}: unknown point {_point!r}; known: {', '.join(POINTS + REQUEST_POINTS)}")


class InjectedDefect(RuntimeError):
    """The exception a defect point raises: a stand-in for a bug."""


def crash_point(name: str, subject: str | None = None) -> None:
    """Kill this process here if the test asked for it (no cleanup, no flush: a power cut)."""
    global _remaining
    if name != _name or (_subject and subject != _subject):
        return
    _remaining -= 1
    if _remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)


def defect_point(name: str, subject: str | None = None) -> None:
    """Raise :class:`InjectedDefect` here if the test asked for it."""
    if name == _defect and (not _defect_subject or subject == _defect_subject):
        raise InjectedDefect(f"a defect injected at {name} for a test")
