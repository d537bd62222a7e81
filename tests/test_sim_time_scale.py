"""The simulator's one time scale: seconds_per_card scales every time constant, the head's cooling included."""

from __future__ import annotations

import os
import time
from datetime import datetime

import pytest
from printer_fixtures import SimProcess, wait_until

from kartud.hw.printer import protocol as p
from kartud.hw.printer.panels import PanelSettings
from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings
from kartud.hw.sim.sim_control import send_command
from kartud.rules.config import from_dict
from kartud.service.devices import build_devices

OK = b"OK\r"
SMALL_PANELS = PanelSettings(width=64, height=100)     # the card's time is the same; composing its face is cheaper
WHOLE_FRONT = [p.start_sequence(), p.front_side(),
               *(p.download_panel(panel, 6, bytes(64 * 100 * 6 // 8)) for panel in "ymc"),
               *(p.download_panel(panel, 1, bytes(64 * 100 // 8)) for panel in "ko"), p.end_sequence()]
HEAD_TEMP = p.FAULT_REPLIES["head_cooling"].encode() + b"\r"


def in_a_row(clock, seconds_per_card: float, cards: int = 60) -> list[tuple[int, float]]:
    """Print ``cards`` cards back to back on ``clock``; a feed the hot head refuses is tried again every
    1/150 of a card's time until it goes. Returns each cooling pause as (cards printed before it, its length
    in seconds of the simulator's clock)."""
    sim = EvolisSim(clock, None, SimSettings(seconds_per_card=seconds_per_card, feeder_cards=cards,
                                             hopper_capacity=cards, chip_cards=False, panels=SMALL_PANELS))
    pauses = []
    for printed in range(cards):
        started, reply = clock.monotonic(), sim.feed(p.insert_card())
        while reply == HEAD_TEMP:
            clock.advance(seconds_per_card / 150)
            reply = sim.feed(p.insert_card())
        assert reply == OK
        if clock.monotonic() - started > 0.15 * seconds_per_card * 1.001:    # more than the feed's own time
            pauses.append((printed, clock.monotonic() - started - 0.15 * seconds_per_card))
        for frame in WHOLE_FRONT:
            assert sim.feed(frame) == OK
    return pauses


# What the head did at 15 s a card before the time scale existed (measured on main at 857d902 with this
# helper): the first pause after 18 cards in a row, about 3.5 minutes to cool from just over 60 degrees to
# 45, then a pause every 11 cards. (At 0.2 s a card the same main paused after 13 cards, for 231 s each.)
TODAY_AT_15_S = [(18, 212.2), (29, 211.3), (40, 211.4), (51, 211.4)]


def test_the_default_pace_keeps_the_head_of_today(manual_clock):
    pauses = in_a_row(manual_clock, SimSettings().seconds_per_card)
    assert [n for n, _ in pauses] == [n for n, _ in TODAY_AT_15_S]
    assert [s for _, s in pauses] == pytest.approx([s for _, s in TODAY_AT_15_S], abs=0.2)


@pytest.mark.parametrize("seconds_per_card", [0.2, 1.0, 60.0])
def test_the_head_cools_on_the_same_time_scale_as_the_cards_move(manual_clock, seconds_per_card):
    scale = seconds_per_card / 15.0
    pauses = in_a_row(manual_clock, seconds_per_card)
    assert [n for n, _ in pauses] == [n for n, _ in TODAY_AT_15_S]          # the same cards overheat it
    assert [s for _, s in pauses] == pytest.approx([s * scale for _, s in TODAY_AT_15_S], rel=0.01, abs=scale * 0.2)


@pytest.mark.parametrize("seconds_per_card", [0.2, 15.0])
def test_a_card_and_a_cleaning_take_their_time_on_the_same_scale(manual_clock, seconds_per_card):
    sim = EvolisSim(manual_clock, None, SimSettings(seconds_per_card=seconds_per_card, chip_cards=False,
                                                    panels=SMALL_PANELS))
    spans = []
    for frame in (p.insert_card(), *WHOLE_FRONT, p.clean_printer()):
        started = manual_clock.monotonic()
        assert sim.feed(frame) == OK
        spans.append(manual_clock.monotonic() - started)
    *card, cleaning = spans
    assert spans[0] == pytest.approx(0.15 * seconds_per_card)          # the feed
    assert sum(card) == pytest.approx(seconds_per_card)                 # feed, five panels, eject
    assert cleaning == pytest.approx(2 * seconds_per_card)              # a cleaning card's passes


def test_the_in_process_simulator_scales_the_same_way(tmp_path, manual_clock):
    config = from_dict({"station": {"id": "x-1", "card_types": ["KIA"]},
                        "store": {"path": str(tmp_path / "kartud.db")},
                        "printer": {"transport": "sim", "sim": {"seconds_per_card": 0.2}},
                        "encoder": {"backend": "none"}})
    printer, _ = build_devices(config, manual_clock)
    sim = printer.transport.device
    assert sim.settings.seconds_per_card == 0.2
    sim.inject("head_cooling")                       # at its limit: 60 degrees, cooling to 45
    manual_clock.advance(2.7)                        # 300 s x ln 2 x 0.2/15 = 2.77 s
    assert sim.head.cooling()
    manual_clock.advance(0.1)
    assert not sim.head.cooling()


# No test asserts a time (a loaded machine would make it flaky): the wall time is printed, and the figure
# issue 15 asks for (under a minute) is measured and kept in docs/performance.md.
@pytest.mark.timeout(120)
def test_a_hundred_cards_in_a_row_at_a_fifth_of_a_second_all_leave_with_the_head_modelled(serial_room):
    """100 KIA cards through the daemon, over a pty, to ``kartud-sim printer --seconds-per-card 0.2``: all of
    them leave the simulator (its cards.jsonl), with the head still modelled (quiet machine: about 40 s).

    Nothing but the printer holds cards back: ``limits.daily`` is 1000, and the room's config has
    ``limits.pacing = "none"`` and working hours all day every day. Whether the head overheats by itself
    here depends on how fast the daemon turns a card around, so after card 50 the next feed is made to
    find the head at its limit: the feed is refused, and printing goes on only when the head has cooled
    to 45 degrees, 300 s x ln 2 x 0.2/15 = 2.8 s later (at the unscaled constant: 3.5 minutes)."""
    room = serial_room
    room.overrides["limits.daily"] = "1000"
    control = os.path.join(room.dir, "sim.sock")
    sim = SimProcess(room.pty_path, os.path.join(room.dir, "cards"), "--no-chip", "--seconds-per-card", "0.2",
                     "--feeder", "100", "--control", control)
    try:
        room.start()
        room.receive_blanks(100, "KIA")
        jobs = [room.job("KIA") for _ in range(100)]
        started = time.monotonic()
        for job in jobs:
            assert room.submit(job)["status"] == "ok"
        wait_until(lambda: len(room.cards()) >= 50, timeout=60, what="50 cards out")
        room.wait_fault("head_cooling", active=False, timeout=15)
        armed_at = time.monotonic()               # the head cannot be back at 45 degrees sooner than 2.8 s from here
        assert send_command(control, "arm feed head_cooling") == "ok"
        room.wait_fault("head_cooling", timeout=15)
        room.wait_fault("head_cooling", active=False, timeout=15)
        pause = time.monotonic() - armed_at
        wait_until(lambda: len(room.cards()) >= 100, timeout=60, what="100 cards out")
        wall = time.monotonic() - started
        for job in jobs:                          # the last eject answered before the printer goes away
            room.wait_state(job["job_id"], "printed")
    finally:
        assert sim.stop() == 0
    cards = room.cards()
    print(f"100 cards at 0.2 s a card: {wall:.1f} s of wall time; the armed cooling pause {pause:.1f} s")
    assert [c["destination"] for c in cards] == ["output"] * 100
    assert 2.7 <= pause < 15
    at = [datetime.fromisoformat(c["at"]) for c in cards]
    assert max((b - a).total_seconds() for a, b in zip(at, at[1:])) >= 2      # the pause, in the printer's record


def test_a_printer_that_takes_no_time_has_a_head_that_cools_at_once(manual_clock):
    sim = EvolisSim(manual_clock, None, SimSettings(seconds_per_card=0.0, chip_cards=False))
    sim.inject("head_cooling")
    assert sim.feed(p.insert_card()) == HEAD_TEMP          # no time has passed yet
    manual_clock.advance(0.001)
    assert sim.feed(p.insert_card()) == OK
