"""The one manual clock of the tests: time moves only when a test says so."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kartud.rules.clock import ManualClock

START = datetime(2026, 11, 27, 1, 0, tzinfo=timezone.utc)  # 08:00 in Jakarta, a Friday


@pytest.fixture
def manual_clock() -> ManualClock:
    """A :class:`ManualClock` standing at :data:`START`, its monotonic time at 0; its sleeps advance it at once.

    A test that needs another start calls ``manual_clock.set_wall(when)`` before anything reads the clock:
    that is the same as a clock built at ``when`` (monotonic time does not move)."""
    return ManualClock(START)
