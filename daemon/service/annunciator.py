"""What the lamp and the buzzer tell the person in the room: the station's mode and faults as patterns."""

from __future__ import annotations

import asyncio
import logging
import signal
import tomllib
from typing import Iterable

from kartud.hw.indicator import OFF, Indicator, IndicatorUnavailable, Pattern, build_indicator

from ..rules.config import ConfigError, from_dict
from ..service.journal_ids import MSG_GAVE_UP

log = logging.getLogger("kartud.indicator")

# The table in docs/operating-box.md explains every one of these to the people in the room.
READY = Pattern.steady("steady: ready")
WAITING = Pattern.blink("slow blink: waiting", 1.0, 1.0)
PRINTING = Pattern.blink("short pulses: printing", 0.125, 0.875)
STOPPED = Pattern.blink("fast blink: kartud has stopped", 0.125, 0.125)
# Mostly on, dark for a moment: the box works but hears nothing from the office (no new jobs come).
LINK_DOWN = Pattern.blink("long on, short off: office link down", 1.75, 0.25)
BEEPING = Pattern.count("two beeps every 5 s", 2, 0.25, 0.25, pause=4.0)

FAULT_BLINK = (0.25, 0.25)      # on, off: fast enough to tell from the slow blink, slow enough to count
FAULT_PAUSE = 2.0               # the dark gap after each count

# Blinks per fault. Codes sharing a number share the remedy; the lowest number wins when several
# faults are active (the office sees all of them in the state document).
FAULT_BLINKS = {
    "printer_disconnected": 1,
    "feeder_empty": 2,
    "wrong_blank": 2,
    "cover_open": 3,
    "no_ribbon": 4,
    "ribbon_ended": 4,
    "card_jam": 5,
    "reject_box_full": 6,
    "hopper_full": 6,
    "cleaning_required": 7,
    "encoder_disconnected": 8,
}
OTHER_FAULT_BLINKS = 9          # storage_error and anything newer: look at the journal
STOPPED_FAULT = "kartud_stopped"  # not a daemon fault: shown by `kartud indicator-fault` once systemd gave up

# Faults that clear by themselves: the station waits, no person is called.
SELF_CLEARING = frozenset({"head_cooling"})


def fault_pattern(blinks: int) -> Pattern:
    """``blinks`` fast blinks, a dark pause, again: the fault's number for people without a screen."""
    return Pattern.count(f"fault {blinks}", blinks, *FAULT_BLINK, pause=FAULT_PAUSE)


def faults_needing_a_person(faults: Iterable[str]) -> frozenset[str]:
    return frozenset(f for f in faults if f not in SELF_CLEARING)


def lamp_pattern(mode: str, reason: str | None, faults: Iterable[str], link_down: bool = False) -> Pattern:
    """The lamp's pattern for a state document's ``mode``, ``reason`` and active fault codes, and whether the
    office link is down. A fault keeps priority over the link: the printer's trouble is the room's to fix."""
    calling = faults_needing_a_person(faults)
    if STOPPED_FAULT in calling:
        return STOPPED
    if calling:
        return fault_pattern(min(FAULT_BLINKS.get(code, OTHER_FAULT_BLINKS) for code in calling))
    if mode == "fault":
        return fault_pattern(OTHER_FAULT_BLINKS)
    if link_down:
        return LINK_DOWN
    if mode == "printing":
        return PRINTING
    if mode == "idle" and reason != "in_doubt_jobs":
        return READY
    # waiting, paused, or idle with jobs in doubt: something waits for a person or for the clock.
    return WAITING


class Annunciator:
    """Keeps the lamp and the buzzer in step with the station.

    Call :meth:`update` whenever the state changes and :meth:`acknowledge` when the button is
    pressed. The buzzer sounds while a fault needing a person has not been acknowledged; a fault
    that clears and comes back is new again.
    """

    def __init__(self, indicator: Indicator):
        self.indicator = indicator
        self.active: frozenset[str] = frozenset()
        self.acknowledged: frozenset[str] = frozenset()

    def update(self, mode: str, reason: str | None, faults: Iterable[str], link_down: bool = False) -> None:
        faults = tuple(faults)
        self.active = faults_needing_a_person(faults)
        self.acknowledged &= self.active
        self.indicator.show(lamp_pattern(mode, reason, faults, link_down))
        self.indicator.sound(BEEPING if self.active - self.acknowledged else OFF)

    def update_from_state(self, document: dict) -> None:
        """:meth:`update` from the contract's state document (its ``office_link`` extension included)."""
        link = document.get("office_link") or {}
        # Down once an attempt failed: not in the first moments before the first answer.
        link_down = link.get("connected") is False and link.get("last_error") is not None
        self.update(document["mode"], document["reason"], (f["code"] for f in document["faults"]), link_down)

    def acknowledge(self) -> None:
        """The button: silence the buzzer for every fault active now."""
        if self.active - self.acknowledged:
            log.info("the buzzer was silenced with the button (faults: %s)", ", ".join(sorted(self.active)))
        self.acknowledged = self.active
        self.indicator.sound(OFF)

    def close(self) -> None:
        self.indicator.close()


def open_annunciator(settings, loop: asyncio.AbstractEventLoop) -> Annunciator:
    """The annunciator for ``[indicator]`` settings, timed by ``loop``; button presses come back to the loop.

    A lamp that cannot be set up must not stop the printing: it is logged and the station goes on
    without one.
    """
    holder: list[Annunciator] = []

    def pressed() -> None:  # gpiozero's thread: hand over to the loop that owns the state
        loop.call_soon_threadsafe(holder[0].acknowledge)

    try:
        indicator = build_indicator(settings.backend, settings.led_pin, settings.buzzer_pin, settings.button_pin,
                                    loop, pressed)
    except IndicatorUnavailable as exc:
        log.warning("the lamp, buzzer and button cannot be used (indicator.backend = %r): %s; "
                    "carrying on without them", settings.backend, exc)
        indicator = Indicator()
    holder.append(Annunciator(indicator))
    return holder[0]


def indicator_settings(path: str):
    """The ``[indicator]`` settings of the config at ``path``, or the defaults where it is unreadable.

    The fault program runs because kartud failed, perhaps over a broken config file: it must still
    find its pins.
    """
    try:
        with open(path, "rb") as handle:
            section = tomllib.load(handle).get("indicator", {})
        return from_dict({"station": {"id": "fault"}, "indicator": section}).indicator
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, ConfigError):
        return from_dict({"station": {"id": "fault"}}).indicator


async def hold_stopped_pattern(settings, stop: asyncio.Event | None = None) -> None:
    """Show that kartud has stopped (fast blink, buzzer until the button) until SIGTERM or ``stop``."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    annunciator = open_annunciator(settings, loop)
    try:
        annunciator.update("stopped", "kartud_stopped", [STOPPED_FAULT])
        log.critical("kartud has stopped and systemd gave up restarting it; the lamp blinks fast until it runs "
                     "again (see journalctl -u kartud for why)", extra={"message_id": MSG_GAVE_UP})
        await stop.wait()
    finally:
        annunciator.close()

