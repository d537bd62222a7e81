"""The lamp, buzzer and button on gpiozero's mock pins: each pattern's exact states and timing, and the button."""

from __future__ import annotations

import asyncio
import doctest

import gpiozero.pins.mock
import pytest
from gpiozero.pins.mock import MockFactory

from kartud.service import annunciator as station
from kartud.service.annunciator import (BEEPING, PRINTING, READY, STOPPED, WAITING, Annunciator, fault_pattern,
                                     indicator_settings, lamp_pattern, open_annunciator)
from kartud.hw import indicator as hw_indicator
from kartud.hw.indicator import OFF, GpioIndicator, Pattern
from manual_timer import ManualTimer

LED_PIN, BUZZER_PIN, BUTTON_PIN = 17, 27, 22


@pytest.fixture
def timer(monkeypatch):
    timer = ManualTimer()
    # MockPin stamps each change with gpiozero.pins.mock.monotonic: make that our clock, so durations are exact.
    monkeypatch.setattr(gpiozero.pins.mock, "monotonic", timer.time)
    return timer


@pytest.fixture
def box(timer):
    """A GpioIndicator on a fresh MockFactory; its button acknowledges ``box.annunciator``."""
    factory = MockFactory()
    holder = []
    box = GpioIndicator(LED_PIN, BUZZER_PIN, BUTTON_PIN, timer, on_button=lambda: holder[0].acknowledge(),
                        pin_factory=factory)
    box.annunciator = Annunciator(box)
    holder.append(box.annunciator)
    yield box
    box.close()
    factory.reset()


def states(device) -> list[bool]:
    # Not assert_states: it zips, so it passes when fewer states happened than expected (rig.md).
    return [s.state for s in device.pin.states]


def durations(device) -> list[float]:
    """Seconds between each change and the one before (MockPin's timestamps), the first being the start."""
    return [s.timestamp for s in device.pin.states]


def press(box) -> None:
    box.button.pin.drive_low()   # the button pulls its pin to ground
    box.button.pin.drive_high()


# -- each pattern, exactly -------------------------------------------------------------------------


def test_steady_lights_the_lamp_once_and_schedules_nothing(box, timer):
    box.show(READY)
    timer.advance(60.0)
    assert states(box.led) == [False, True]
    assert durations(box.led) == [0.0, 0.0]
    assert timer.pending == 0


@pytest.mark.parametrize("pattern, seconds, expected_states, expected_durations", [
    (WAITING, 4.0, [False, True, False, True, False, True], [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]),
    (PRINTING, 2.0, [False, True, False, True, False, True], [0.0, 0.0, 0.125, 0.875, 0.125, 0.875]),
    (STOPPED, 0.5, [False, True, False, True, False, True], [0.0, 0.0, 0.125, 0.125, 0.125, 0.125]),
    (fault_pattern(1), 5.0, [False, True, False, True, False, True], [0.0, 0.0, 0.25, 2.25, 0.25, 2.25]),
    (fault_pattern(3), 3.5, [False, True, False, True, False, True, False, True],
     [0.0, 0.0, 0.25, 0.25, 0.25, 0.25, 0.25, 2.25]),
], ids=["slow-blink", "short-pulses", "fast-blink", "fault-1", "fault-3"])
def test_lamp_pattern_states_and_timing(box, timer, pattern, seconds, expected_states, expected_durations):
    box.show(pattern)
    timer.advance(seconds)
    assert states(box.led) == expected_states
    assert durations(box.led) == pytest.approx(expected_durations, abs=1e-9)


def test_buzzer_beeps_twice_every_five_seconds(box, timer):
    box.sound(BEEPING)
    timer.advance(10.0)
    assert states(box.buzzer) == [False, True, False, True, False, True, False, True, False, True]
    assert durations(box.buzzer) == pytest.approx([0.0, 0.0, 0.25, 0.25, 0.25, 4.25, 0.25, 0.25, 0.25, 4.25])


def test_every_fault_count_blinks_that_many_times_per_cycle(box, timer):
    for blinks in range(1, 10):
        pattern = fault_pattern(blinks)
        cycle = sum(on + off for on, off in pattern.steps)
        assert cycle == pytest.approx(blinks * 0.5 + 2.0)
        box.led.pin.clear_states()
        box.show(pattern)
        timer.advance(cycle - 0.001)      # one whole cycle, stopping short of the next one's first blink
        assert states(box.led)[1:].count(True) == blinks, pattern.name


def test_playing_the_pattern_already_playing_does_not_restart_its_rhythm(box, timer):
    box.show(WAITING)
    timer.advance(0.5)
    box.show(WAITING)
    timer.advance(0.5)
    assert states(box.led) == [False, True, False]
    assert durations(box.led) == [0.0, 0.0, 1.0]


def test_a_new_pattern_replaces_the_old_one_at_once(box, timer):
    box.show(WAITING)
    timer.advance(0.5)
    box.show(fault_pattern(2))            # the lamp is on: the first fault blink carries on from here
    assert timer.pending == 1             # the slow blink's switch-off is cancelled
    timer.advance(0.5)
    assert states(box.led) == [False, True, False, True]
    assert durations(box.led) == pytest.approx([0.0, 0.0, 0.75, 0.25])


def test_close_leaves_lamp_and_buzzer_off_with_nothing_scheduled(timer):
    factory = MockFactory()
    box = GpioIndicator(LED_PIN, BUZZER_PIN, BUTTON_PIN, timer, on_button=lambda: None, pin_factory=factory)
    led, buzzer = box.led.pin, box.buzzer.pin
    box.show(PRINTING)
    box.sound(BEEPING)
    timer.advance(0.1)
    box.close()
    timer.advance(30.0)
    assert [s.state for s in led.states] == [False, True, False]
    assert [s.state for s in buzzer.states] == [False, True, False]
    factory.reset()


def test_patterns_refuse_zero_length_steps():
    with pytest.raises(ValueError):
        Pattern.blink("bad", 0.0, 1.0)
    with pytest.raises(ValueError):
        Pattern.count("bad", 0, 0.25, 0.25, pause=1.0)


def test_hw_indicator_docstring_examples_run():
    assert doctest.testmod(hw_indicator).failed == 0


# -- what the station shows ------------------------------------------------------------------------


@pytest.mark.parametrize("mode, reason, faults, expected", [
    ("idle", "queue_empty", [], READY),
    ("idle", "in_doubt_jobs", [], WAITING),
    ("printing", None, [], PRINTING),
    ("waiting", "daily_limit_reached", [], WAITING),
    ("waiting", "out_of_blanks", [], WAITING),
    ("paused", "paused_by_operator", [], WAITING),
    ("waiting", "printer_fault", ["head_cooling"], WAITING),
    ("fault", "printer_fault", ["cover_open"], fault_pattern(3)),
    ("printing", None, ["cover_open"], fault_pattern(3)),           # mid-card: the person is needed now
    ("fault", "printer_fault", ["hopper_full", "feeder_empty"], fault_pattern(2)),  # the lowest number wins
    ("fault", "encoder_fault", ["encoder_disconnected"], fault_pattern(8)),
    ("idle", "queue_empty", ["storage_error"], fault_pattern(9)),
    ("fault", "printer_fault", [], fault_pattern(9)),
    ("stopped", "kartud_stopped", ["kartud_stopped"], STOPPED),
])
def test_lamp_pattern_for_each_state(mode, reason, faults, expected):
    assert lamp_pattern(mode, reason, faults) == expected


def test_every_printer_fault_code_has_a_blink_count():
    from kartud.hw.printer import FAULT_CODES

    assert set(FAULT_CODES) <= set(station.FAULT_BLINKS) | station.SELF_CLEARING


def test_a_new_fault_beeps_until_the_button_is_pressed(box, timer):
    box.annunciator.update("fault", "printer_fault", ["cover_open"])
    timer.advance(6.0)
    assert states(box.buzzer).count(True) == 4            # two beeps at 0 s, two more at 5 s
    press(box)
    assert box.buzzer.value == 0
    before = len(box.buzzer.pin.states)
    timer.advance(60.0)
    assert len(box.buzzer.pin.states) == before          # silent from the press on
    assert box.lamp.pattern == fault_pattern(3)           # the lamp still names the fault
    box.annunciator.update("fault", "printer_fault", ["cover_open"])  # the same fault re-stated stays silent
    timer.advance(10.0)
    assert len(box.buzzer.pin.states) == before


def test_another_fault_after_the_press_beeps_again(box, timer):
    box.annunciator.update("fault", "printer_fault", ["cover_open"])
    press(box)
    box.annunciator.update("fault", "printer_fault", ["cover_open", "card_jam"])
    assert box.horn.pattern == BEEPING
    press(box)
    assert box.horn.pattern == OFF


def test_a_fault_that_clears_and_comes_back_is_new_again(box, timer):
    box.annunciator.update("fault", "printer_fault", ["feeder_empty"])
    press(box)
    box.annunciator.update("idle", "queue_empty", [])
    assert box.lamp.pattern == READY and box.horn.pattern == OFF
    box.annunciator.update("fault", "printer_fault", ["feeder_empty"])
    assert box.horn.pattern == BEEPING


def test_a_fault_that_clears_by_itself_does_not_call_anyone(box, timer):
    box.annunciator.update("waiting", "printer_fault", ["head_cooling"])
    timer.advance(10.0)
    assert states(box.buzzer) == [False]
    assert box.lamp.pattern == WAITING


def test_the_button_without_a_fault_changes_nothing(box, timer):
    box.annunciator.update("idle", "queue_empty", [])
    press(box)
    timer.advance(5.0)
    assert states(box.buzzer) == [False] and states(box.led) == [False, True]


def test_update_from_the_state_document(box, timer):
    box.annunciator.update_from_state({"mode": "fault", "reason": "printer_fault",
                                       "faults": [{"code": "card_jam", "since": "2026-01-05T09:00:00+07:00"}]})
    assert box.lamp.pattern == fault_pattern(5) and box.horn.pattern == BEEPING


# -- set up from the config ------------------------------------------------------------------------


class Settings:
    def __init__(self, backend="mock", led_pin=LED_PIN, buzzer_pin=BUZZER_PIN, button_pin=BUTTON_PIN):
        self.backend, self.led_pin, self.buzzer_pin, self.button_pin = backend, led_pin, buzzer_pin, button_pin


def test_the_button_is_handed_to_the_event_loop():
    async def scenario():
        annunciator = open_annunciator(Settings(), asyncio.get_running_loop())
        try:
            annunciator.update("fault", "printer_fault", ["cover_open"])
            assert annunciator.indicator.horn.pattern == BEEPING
            pin = annunciator.indicator.button.pin
            pin.drive_low()       # gpiozero calls back in the caller's thread; the loop runs the acknowledgement
            pin.drive_high()
            assert annunciator.indicator.horn.pattern == BEEPING
            await asyncio.sleep(0)
            assert annunciator.indicator.horn.pattern == OFF
        finally:
            annunciator.close()

    asyncio.run(scenario())


def test_pins_that_cannot_be_had_leave_the_station_printing_without_a_lamp(caplog):
    async def scenario():
        return open_annunciator(Settings(led_pin=40), asyncio.get_running_loop())   # no GPIO40 on this board

    annunciator = asyncio.run(scenario())
    annunciator.update("fault", "printer_fault", ["cover_open"])     # a no-op, not an error
    assert type(annunciator.indicator) is hw_indicator.Indicator
    assert "carrying on without them" in caplog.text


def test_none_backend_builds_a_silent_indicator():
    indicator = hw_indicator.build_indicator("none", 17, 27, 22, ManualTimer(), lambda: None)
    assert type(indicator) is hw_indicator.Indicator


def test_indicator_settings_survive_a_broken_config(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[station]\nid = "x"\nbogus = 1\n[indicator]\nbackend = "mock"\nled_pin = 5\n')
    assert (indicator_settings(str(good)).backend, indicator_settings(str(good)).led_pin) == ("mock", 5)
    broken = tmp_path / "broken.toml"
    broken.write_text("[indicator\n")
    assert indicator_settings(str(broken)).led_pin == 17
    assert indicator_settings(str(tmp_path / "missing.toml")).backend == "gpio"


# -- the office link -------------------------------------------------------------------------------

LINK_DOWN_DOC = {"mode": "idle", "reason": "queue_empty", "faults": [],
                 "office_link": {"connected": False, "since": "2026-01-05T09:00:00+07:00",
                                 "last_error": "connection refused at 10.0.0.5:8883"}}


def test_office_link_down_has_its_own_pattern_and_no_beeping(box, timer):
    box.annunciator.update_from_state(LINK_DOWN_DOC)
    timer.advance(4.5)
    assert box.lamp.pattern == station.LINK_DOWN
    assert states(box.led) == [False, True, False, True, False, True]       # 1.75 on, 0.25 off, twice
    assert durations(box.led)[1:] == [0.0, 1.75, 0.25, 1.75, 0.25]
    assert states(box.buzzer) == [False]
    assert len({READY, WAITING, PRINTING, STOPPED, station.LINK_DOWN, *map(fault_pattern, range(1, 10))}) == 14


@pytest.mark.parametrize("mode, reason, faults, expected", [
    ("printing", None, ["cover_open"], fault_pattern(3)),           # a printer fault keeps priority
    ("fault", "printer_fault", [], fault_pattern(9)),
    ("stopped", "kartud_stopped", ["kartud_stopped"], STOPPED),
    ("printing", None, [], station.LINK_DOWN),
    ("idle", "queue_empty", [], station.LINK_DOWN),
])
def test_a_fault_is_not_hidden_by_the_office_link(mode, reason, faults, expected):
    assert lamp_pattern(mode, reason, faults, link_down=True) == expected


@pytest.mark.parametrize("link, expected", [
    (None, READY),                                                   # kartud without the extension
    ({"connected": True, "since": "x", "last_error": "no answer from b:1883"}, READY),  # back up
    ({"connected": False, "since": "x", "last_error": None}, READY),  # the first attempt has not answered yet
])
def test_the_lamp_reads_the_office_link_of_the_state_document(box, link, expected):
    box.annunciator.update_from_state({**LINK_DOWN_DOC, "office_link": link})
    assert box.lamp.pattern == expected
