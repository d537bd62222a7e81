"""A simulated working week through the real daemon and MQTT: cards per day and the reasons the state gives."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

JAKARTA = ZoneInfo("Asia/Jakarta")
SPEED = 20000          # a simulated hour in 0.18 real seconds


def status_at(office, instant: datetime, timeout: float = 40.0) -> dict:
    """The state document fresh from the daemon once its clock has reached ``instant``."""
    deadline = time.monotonic() + timeout
    while True:
        state = office.request("status/get", {})["data"]
        if datetime.fromisoformat(state["at"]) >= instant:
            return state
        assert time.monotonic() < deadline, f"the daemon's clock never reached {instant}; it says {state['at']}"
        time.sleep(0.002)   # a simulated minute is 3 ms here: look again soon


def status_once_idle(office, instant: datetime, before: datetime) -> dict:
    """The first state document from ``instant`` on that is not mid-card, taken before ``before``.

    A simulated hour is 0.18 real seconds here, so on a loaded machine the first card may still
    be going through the printer at ``instant``; what the test wants is the pause after it.
    """
    state = status_at(office, instant)
    while state["mode"] == "printing":
        state = status_at(office, datetime.fromisoformat(state["at"]))
        time.sleep(0.002)
    assert datetime.fromisoformat(state["at"]) < before, f"the first card was still going at {state['at']}"
    return state


def test_a_working_week_prints_the_daily_limit_inside_hours_and_says_why_it_waits(room):
    room.overrides.update({
        "station.card_types": '["KIA"]',
        "limits.daily": "3",
        "limits.working_hours": '["mon-thu 08:00-14:00", "fri 08:00-11:00"]',
        "limits.pacing": '"even"',
        "sim.clock_speed": str(SPEED),
        "sim.clock_start": '"2026-11-23T03:00:00+07:00"',          # a Monday before dawn: setting up takes hours
        "printer.status_poll_s": "1.0",
    })
    room.start()
    room.receive_blanks(50, "KIA")
    for _ in range(20):
        assert room.submit(room.job("KIA"))["status"] == "ok"
    office = room.office

    early = status_at(office, datetime(2026, 11, 23, 7, 30, tzinfo=JAKARTA))
    assert (early["mode"], early["reason"]) == ("waiting", "outside_working_hours")
    assert early["next_print_at"] == "2026-11-23T08:00:00+07:00"

    paced = status_once_idle(office, datetime(2026, 11, 23, 9, 0, tzinfo=JAKARTA),
                             before=datetime(2026, 11, 23, 10, 0, tzinfo=JAKARTA))
    assert (paced["mode"], paced["reason"]) == ("waiting", "pacing") and paced["today"]["printed"] == 1

    done = status_at(office, datetime(2026, 11, 23, 15, 0, tzinfo=JAKARTA))
    assert (done["mode"], done["reason"]) == ("waiting", "daily_limit_reached")
    assert done["today"] == {"date": "2026-11-23", "printed": 3, "spoiled": 0, "limit": 3, "started": 3}
    assert done["next_print_at"] == "2026-11-24T08:00:00+07:00"

    weekend = status_at(office, datetime(2026, 11, 28, 12, 0, tzinfo=JAKARTA))
    assert (weekend["mode"], weekend["reason"]) == ("waiting", "outside_working_hours")
    assert weekend["next_print_at"] == "2026-11-30T08:00:00+07:00"
    assert weekend["queue"]["queued"] == 20 - 15

    printed = [datetime.fromisoformat(at).astimezone(JAKARTA) for (at,) in room.query(
        "SELECT printed_at FROM printed_records")]
    per_day = Counter(moment.strftime("%a") for moment in printed)
    assert per_day == {"Mon": 3, "Tue": 3, "Wed": 3, "Thu": 3, "Fri": 3}
    for moment in printed:
        closes = 11 if moment.strftime("%a") == "Fri" else 14
        assert 8 <= moment.hour < closes
