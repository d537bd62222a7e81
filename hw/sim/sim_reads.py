"""The simulated printer's read commands (``Rrt``, ``Rco``, ``Rlr``, ``Rse``) and its four status words."""

from __future__ import annotations

from ..printer import protocol as p


class ReadsMixin:
    """What :class:`~kartud.hw.sim.evolis_sim.EvolisSim` answers to reads, from its state."""

    def _read_ribbon_type(self, command: p.Command) -> str:
        return self.settings.ribbon_fitted.upper() if self.ribbon_loaded else "ERR RIB DETECTION"

    def _read_ribbon(self, command: p.Command) -> str:
        if not self.ribbon_loaded:
            return "ERR RIB DETECTION"
        return {"qty": str(self.settings.ribbon_prints), "count": str(max(0, self.ribbon_remaining)),
                "zone": "0"}.get(command.params[0], p.BAD_PARAMETERS)

    def _read_counter(self, command: p.Command) -> str:
        values = {"p": self.counters["panels_printed"], "c": self.counters["cards_inserted"],
                  "a": self.settings.cleaning_every, "m": self.settings.cleaning_every,
                  "n": self.counters["cleanings"], "l": max(0, self.ribbon_remaining),
                  "r": max(0, self.settings.cleaning_every - self.cards_since_cleaning)}   # cards until cleaning
        what = command.params[0]
        return str(values[what]) if what in values and what in self.profile.counters else p.BAD_PARAMETERS

    def _read_last_reply(self, command: p.Command) -> str:
        what = command.params[0]
        if what not in self.profile.last_replies:
            return p.BAD_PARAMETERS
        if what == "p":
            if self.position is not None and (self.profile.card_inside_reply or self.jammed):
                return self.profile.card_inside_reply or "ERR CARD"     # inside, not where (E1 p.34)
            if self.position is None and self.profile.card_inside_reply:
                return "NO CARD"
            return {None: "OK", "print": "CARD", "contactless": "CONTACTLESS CARD"}[self.position]
        if what in ("r", "c"):      # Rlr;r in the 2003 guide (E1 p.34), Rlr;c in the VB sample
            return "ERR NEED CLEANING" if self.cards_since_cleaning >= self.settings.cleaning_every else "OK"
        if what == "h":
            return "CARD" if self.hopper >= self.settings.hopper_capacity else "NO CARD"
        return p.BAD_PARAMETERS

    def _read_sensor(self, command: p.Command) -> str:
        if command.params[0] not in self.profile.sensors:
            return p.BAD_PARAMETERS
        volts = {"f": 5.0 if self.feeder > 0 else 0.0, "o": 0.0 if self.cover_open else 5.0,
                 "b": 0.2, "n": 4.9 if self.feeder <= 10 else 0.5}.get(command.params[0], 2.5)
        return p.BAD_PARAMETERS if volts is None else f"{volts:.2f}".replace(".", ",") + " Volts"

    def status_words(self) -> p.StatusWords:
        """The four status words with E3's masks, from the state."""
        with self._state:
            information = {"contactless": 0x08000000, "print": 0x02000000, None: 0}[self.position]
            if self.feeder > 0:
                information |= 0x20000000
            if self.cards_since_cleaning >= self.settings.cleaning_every:
                information |= 0x00040000
            warning = 0
            for flag, mask in ((self.feeder <= 0, 0x01000000),
                               (self.reject_box >= self.settings.reject_box_capacity, 0x08000000),
                               (self.head.cooling(), 0x00200000),
                               (self.hopper >= self.settings.hopper_capacity, 0x00100000),
                               (self.ribbon_loaded and self.ribbon_remaining <= 0, 0x00080000),
                               (self.cover_open, 0x00020000), (not self.ribbon_loaded, 0x00010000)):
                if flag:
                    warning |= mask
            error = 0x01000000 if self.jammed else 0
            return p.StatusWords(config=0x80000000, information=information, warning=warning, error=error)
