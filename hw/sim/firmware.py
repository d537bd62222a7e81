"""Firmware profiles of the simulated printer: which reads, sensors and reply texts each public source shows.

A profile changes only what the printer says, never what it does: the same state answers ``Rlr;p``
``CONTACTLESS CARD`` (kiosk integration) or ``ERR CARD`` (2003 guide), and a refusal
``ERR FEEDER EMPTY`` (kartud) or ``FEEDER EMPTY`` (the Evolis DLL layer). Sources: ``docs/printer.md``.

>>> PROFILES["guide2003"].reply("ERR COVER OPEN"), PROFILES["dll"].reply("ERR COVER OPEN")
('ERR COVER OPEN', 'COVER OPEN')
"""

from __future__ import annotations

from dataclasses import dataclass

from ..printer import replies


@dataclass(frozen=True)
class Firmware:
    """What one firmware knows and how it words its replies."""

    name: str
    source: str
    sensors: frozenset[str] = frozenset("fobn")            # Rse parameters it knows
    last_replies: frozenset[str] = frozenset("prhc")       # Rlr parameters it knows
    counters: frozenset[str] = frozenset("pcamnlr")        # Rco parameters it knows (r: cards until cleaning)
    error_modes: frozenset[str] = frozenset("0123")        # Pem values it takes
    unknown: frozenset[str] = frozenset()                  # commands it answers ERROR CDE
    card_inside_reply: str = ""          # Rlr;p for any card inside ('' : where it is, as newer firmware says)
    bare_faults: bool = False            # fault replies without the ERR prefix
    status_words: bool = True            # answers the status-words read

    def status_shows(self, fault: str) -> bool:
        """Whether a status poll of a printer with this firmware can see ``fault`` (else only a move's
        error reply tells)."""
        if self.status_words:
            return True
        return {"feeder_empty": "f" in self.sensors, "cover_open": "o" in self.sensors,
                "no_ribbon": "Rrt" not in self.unknown, "ribbon_ended": "Rrt" not in self.unknown,
                "hopper_full": "h" in self.last_replies,
                "cleaning_required": bool({"c", "r"} & self.last_replies)}.get(fault, False)

    def position_seen(self, position: str | None) -> str | None:
        """The card position the driver reads from ``Rlr;p`` for a card at ``position``."""
        return "inside" if self.card_inside_reply and position is not None else position

    def reply(self, text: str) -> str:
        """The profile's wording of a reply the simulator composed in kartud's words."""
        if self.bare_faults and text.startswith("ERR ") and replies.fault_named(text[4:]) is not None:
            return text[4:]
        return text


PROFILES = {
    "kartud": Firmware("kartud", "kartud's own reply texts (all faults with ERR, status words)"),
    "guide2003": Firmware(
        "guide2003", "E1, the 2003 programming guide Rev E: Rse knows c, m, o, p, r; Rlr;p is NO CARD or "
        "ERR CARD; cleaning read as Rlr;r; Rco without r; Pem without 2 (only the current command page, E2, "
        "names it); no Rrt, no Rlr;h, no Pcim/Pcrm, no status words",
        sensors=frozenset("cmopr"), last_replies=frozenset("pr"), counters=frozenset("pcamnl"),
        error_modes=frozenset("013"), unknown=frozenset({"Rrt", "Pcim", "Pcrm"}),
        card_inside_reply="ERR CARD", status_words=False),
    "kiosk": Firmware(
        "kiosk", "E7/E8, the kiosk integrations: Rlr;p OK / CARD / CONTACTLESS CARD, Rse;f/o/b/n in volts, "
        "Rrt;count, no status words", status_words=False),
    "dll": Firmware(
        "dll", "E9 and the Evolis VB sample: FEEDER EMPTY, COVER OPEN, NEED CLEANING without ERR; cleaning "
        "read as Rlr;c and Rco;r (the VB sample); otherwise as the kiosk integrations",
        last_replies=frozenset("phc"), bare_faults=True, status_words=False),
}
DEFAULT = "kartud"
