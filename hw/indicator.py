"""The station's lamp, buzzer and acknowledge button: gpiozero devices behind a small Indicator interface."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Protocol

log = logging.getLogger("kartud.indicator")

BACKENDS = ("gpio", "mock", "none")


class Timer(Protocol):
    """Whatever keeps time for the patterns: an asyncio event loop is one (``loop.call_later``)."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        """Call ``callback`` after ``delay`` seconds; the result has ``cancel()``."""


@dataclass(frozen=True)
class Pattern:
    """An on/off rhythm for the lamp or the buzzer.

    ``steps`` are (on seconds, off seconds) pairs, played in order and then again from the first.
    With no steps the device simply stays on (``on=True``) or off.

    >>> Pattern.blink("slow blink", 1.0, 1.0).steps
    ((1.0, 1.0),)
    >>> Pattern.count("fault 3", 3, 0.25, 0.25, pause=2.0).steps
    ((0.25, 0.25), (0.25, 0.25), (0.25, 2.25))
    """

    name: str
    steps: tuple[tuple[float, float], ...] = ()
    on: bool = False

    def __post_init__(self):
        # A zero-length step would flip the pin for no visible time: refuse it where it is made.
        if any(on_s <= 0 or off_s <= 0 for on_s, off_s in self.steps):
            raise ValueError(f"pattern {self.name!r}: every on and off time must be positive")

    @classmethod
    def steady(cls, name: str = "steady") -> "Pattern":
        """Always on."""
        return cls(name, (), True)

    @classmethod
    def off(cls, name: str = "off") -> "Pattern":
        """Always off."""
        return cls(name)

    @classmethod
    def blink(cls, name: str, on_s: float, off_s: float) -> "Pattern":
        """On for ``on_s``, off for ``off_s``, for ever."""
        return cls(name, ((on_s, off_s),))

    @classmethod
    def count(cls, name: str, n: int, on_s: float, off_s: float, pause: float) -> "Pattern":
        """``n`` blinks, then dark for ``pause`` more seconds, for ever: a number people can count."""
        if n < 1:
            raise ValueError("a blink count must be at least 1")
        return cls(name, ((on_s, off_s),) * (n - 1) + ((on_s, off_s + pause),))


OFF = Pattern.off()
STEADY = Pattern.steady()


class PatternPlayer:
    """Plays a :class:`Pattern` on one on/off output device (a gpiozero ``LED`` or ``Buzzer``).

    Every switch is scheduled on ``timer``, so the player needs no thread of its own and a test can
    drive it with a fake timer. Playing the pattern already playing changes nothing: the rhythm is
    not restarted each time the daemon re-states its mode.
    """

    def __init__(self, device, timer: Timer, what: str):
        self.device = device
        self.timer = timer
        self.what = what
        self.pattern: Pattern | None = None
        self._step = 0
        self._pending = None

    def play(self, pattern: Pattern) -> None:
        """Switch to ``pattern`` at once (unless it is already playing)."""
        if pattern == self.pattern:
            return
        self._cancel()
        self.pattern = pattern
        log.debug("%s: %s", self.what, pattern.name)
        if not pattern.steps:
            self.device.on() if pattern.on else self.device.off()
            return
        self._step = 0
        self._switch_on()

    def stop(self) -> None:
        """Stop the rhythm and leave the device off."""
        self._cancel()
        self.pattern = None
        self.device.off()

    def _switch_on(self) -> None:
        on_s, _ = self.pattern.steps[self._step]
        self.device.on()
        self._pending = self.timer.call_later(on_s, self._switch_off)

    def _switch_off(self) -> None:
        _, off_s = self.pattern.steps[self._step]
        self.device.off()
        self._step = (self._step + 1) % len(self.pattern.steps)
        self._pending = self.timer.call_later(off_s, self._switch_on)

    def _cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


class Indicator:
    """The lamp, the buzzer and the acknowledge button of a station.

    ``show`` and ``sound`` take effect at once and keep playing until replaced. The button's
    callback (given when the indicator is made) runs in gpiozero's own thread.
    """

    def show(self, pattern: Pattern) -> None:
        """Play ``pattern`` on the lamp."""

    def sound(self, pattern: Pattern) -> None:
        """Play ``pattern`` on the buzzer (``OFF`` silences it)."""

    def close(self) -> None:
        """Turn everything off and release the pins."""


class GpioIndicator(Indicator):
    """An LED, an active buzzer and a push button on GPIO pins (BCM numbers), through gpiozero.

    ``pin_factory`` is gpiozero's: None for its default (lgpio on a Raspberry Pi), or a
    ``MockFactory`` for tests::

        >>> from gpiozero.pins.mock import MockFactory
        >>> import asyncio
        >>> loop = asyncio.new_event_loop()
        >>> box = GpioIndicator(17, 27, 22, loop, on_button=lambda: None, pin_factory=MockFactory())
        >>> box.show(STEADY); box.led.is_lit
        True
        >>> box.close(); loop.close()
    """

    def __init__(self, led_pin: int, buzzer_pin: int, button_pin: int, timer: Timer,
                 on_button: Callable[[], None], pin_factory=None):
        from gpiozero import LED, Button, Buzzer

        devices = []
        try:
            self.led = LED(led_pin, pin_factory=pin_factory)
            devices.append(self.led)
            self.buzzer = Buzzer(buzzer_pin, pin_factory=pin_factory)
            devices.append(self.buzzer)
            # The button connects its pin to ground; gpiozero's pull-up holds it high otherwise.
            self.button = Button(button_pin, pull_up=True, pin_factory=pin_factory)
        except Exception:
            for device in devices:
                device.close()
            raise
        self.button.when_pressed = lambda: on_button()
        self.lamp = PatternPlayer(self.led, timer, "lamp")
        self.horn = PatternPlayer(self.buzzer, timer, "buzzer")

    def show(self, pattern: Pattern) -> None:
        self.lamp.play(pattern)

    def sound(self, pattern: Pattern) -> None:
        self.horn.play(pattern)

    def close(self) -> None:
        self.lamp.stop()
        self.horn.stop()
        self.button.when_pressed = None
        for device in (self.button, self.buzzer, self.led):
            device.close()


class IndicatorUnavailable(Exception):
    """The configured pins cannot be used (no GPIO on this machine, a pin taken, ...)."""


def build_indicator(backend: str, led_pin: int, buzzer_pin: int, button_pin: int, timer: Timer,
                    on_button: Callable[[], None]) -> Indicator:
    """The indicator a configuration names: ``"gpio"`` (gpiozero's default pin factory), ``"mock"``
    (gpiozero's ``MockFactory``: simulated pins, nothing lights up) or ``"none"``.

    Raises :class:`IndicatorUnavailable` when gpiozero cannot give us the pins.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown indicator backend {backend!r}")
    if backend == "none":
        return Indicator()
    factory = None
    if backend == "mock":
        from gpiozero.pins.mock import MockFactory

        factory = MockFactory()
    try:
        return GpioIndicator(led_pin, buzzer_pin, button_pin, timer, on_button, pin_factory=factory)
    except Exception as exc:  # gpiozero raises many kinds: BadPinFactory, GPIOPinInUse, PinInvalidPin, ...
        raise IndicatorUnavailable(f"{type(exc).__name__}: {exc}") from exc
