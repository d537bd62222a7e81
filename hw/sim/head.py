"""The simulated print head's temperature: each card heats it, time cools it, too hot forces a cooling pause."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class HeadSettings:
    """Degrees Celsius and seconds of the simulator's clock at a printer's real pace (15 s a card).

    With the defaults, 18 cards in a row reach the limit; the pause to ``resume_c`` then lasts about
    3.5 minutes, and another comes every 11 cards. At the daily limit's even pace the head stays cool.
    A faster simulator scales the seconds with :meth:`scaled` (``SimSettings.time_scale``), so the same
    cards overheat it and its pauses shrink with its cards.
    """

    ambient_c: float = 30.0
    rise_per_card_c: float = 2.5
    cooling_time_constant_s: float = 300.0
    limit_c: float = 60.0
    resume_c: float = 45.0

    def scaled(self, time_scale: float) -> "HeadSettings":
        """The same head on a clock ``time_scale`` times as fast as a real printer's (0.2 s a card: 0.2/15).

        >>> HeadSettings().scaled(0.2 / 15).cooling_time_constant_s
        4.0
        """
        return dataclasses.replace(self, cooling_time_constant_s=self.cooling_time_constant_s * time_scale)


class PrintHead:
    """Newton's cooling towards ambient between cards, a fixed rise per card, and hysteresis between
    ``limit_c`` (cooling starts) and ``resume_c`` (printing may resume).

    >>> from datetime import datetime, timezone
    >>> class Clock:
    ...     t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ...     def now(self): return self.t
    >>> head = PrintHead(HeadSettings(), Clock())
    >>> head.overheat(); head.cooling()
    True
    """

    def __init__(self, settings: HeadSettings, clock):
        self.settings = settings
        self.clock = clock
        self._temperature = settings.ambient_c
        self._at = clock.now()
        self._cooling = False

    def temperature(self) -> float:
        now = self.clock.now()
        elapsed = max(0.0, (now - self._at).total_seconds())
        ambient, constant = self.settings.ambient_c, self.settings.cooling_time_constant_s
        if elapsed > 0:
            # A simulator scaled to zero seconds a card cools its head at once rather than never.
            decay = math.exp(-elapsed / constant) if constant > 0 else 0.0
            self._temperature = ambient + (self._temperature - ambient) * decay
        self._at = now
        return self._temperature

    def cooling(self) -> bool:
        """Whether the head is too hot to print (it stays so until it has cooled to ``resume_c``)."""
        temperature = self.temperature()
        if temperature >= self.settings.limit_c:
            self._cooling = True
        elif temperature <= self.settings.resume_c:
            self._cooling = False
        return self._cooling

    def card_printed(self) -> None:
        self._temperature = self.temperature() + self.settings.rise_per_card_c

    def overheat(self) -> None:
        """Fault injection: the head is at its limit now."""
        self._temperature = max(self.temperature(), self.settings.limit_c)
        self._cooling = True

    def cool_down(self) -> None:
        """Fault injection cleared: the head is at ambient temperature."""
        self._temperature, self._at, self._cooling = self.settings.ambient_c, self.clock.now(), False
