"""The simulated print head's temperature: each card heats it, time cools it, too hot forces a cooling pause."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class HeadSettings:
    """Degrees Celsius and seconds of the simulator's clock.

    With the defaults and 15 s a card, about 18 cards in a row reach the limit; the pause to
    ``resume_c`` then lasts about 3.5 minutes. At the daily limit's even pace the head stays cool.
    """

    ambient_c: float = 30.0
    rise_per_card_c: float = 2.5
    cooling_time_constant_s: float = 300.0
    limit_c: float = 60.0
    resume_c: float = 45.0


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
        ambient = self.settings.ambient_c
        self._temperature = ambient + (self._temperature - ambient) * math.exp(
            -elapsed / self.settings.cooling_time_constant_s)
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
