"""The printer interface the daemon drives, its status and its faults, whatever the transport."""

from __future__ import annotations

from dataclasses import dataclass, field

# Fault codes of the contract that a printer can report.
FAULT_CODES = ("printer_disconnected", "feeder_empty", "cover_open", "no_ribbon", "ribbon_ended", "card_jam",
               "reject_box_full", "hopper_full", "head_cooling", "cleaning_required")


class PrinterFault(Exception):
    """The printer refused or failed an action; ``code`` is one of :data:`FAULT_CODES`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer says about itself, as plain values (``as_dict`` for the state document)."""

    connected: bool
    faults: tuple[str, ...] = ()
    card_inside: bool = False
    model: str = ""
    serial: str = ""
    ribbon_remaining: int | None = None
    cards_until_cleaning: int | None = None
    counters: dict = field(default_factory=dict)
    firmware: str = ""
    ribbon_type: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The state document's ``printer`` object: the contract's five fields, then what the printer said
        about itself at connect and since (firmware, ribbon type, its counters)."""
        return {"connected": self.connected, "model": self.model, "serial": self.serial,
                "ribbon_remaining": self.ribbon_remaining, "cards_until_cleaning": self.cards_until_cleaning,
                "firmware": self.firmware, "ribbon_type": self.ribbon_type, "counters": dict(self.counters)}


class Printer:
    """A card printer. Every method blocks until the printer has done it; the daemon calls them from a
    worker thread. Failures raise :class:`PrinterFault`.

    A card's way: ``insert_card`` (to the contactless station for a chip card), ``print_card``,
    then ``eject`` to the output hopper, or ``reject`` to the reject box at any point.
    """

    # How long after the link was lost (a reply that never came) the printer may take to answer again with
    # nobody touching it: a driver may hold the line quiet meanwhile. The daemon asks again until then
    # before it calls the fate of a card inside unknown.
    answers_again_within_s: float = 0.0

    def status(self) -> PrinterStatus:
        raise NotImplementedError

    def insert_card(self, contactless: bool) -> None:
        """Feed one blank from the feeder; park it at the contactless station when ``contactless``."""
        raise NotImplementedError

    def print_card(self, front_png: bytes, back_png: bytes | None) -> None:
        """Print the faces (PNG, 1016x648 or 648x1016) on the card inside."""
        raise NotImplementedError

    def eject(self) -> None:
        """Send the card inside to the output hopper."""
        raise NotImplementedError

    def reject(self) -> None:
        """Send the card inside to the reject box."""
        raise NotImplementedError

    def clean(self) -> bool | None:
        """Run the printer's cleaning cycle (a cleaning card in the feeder, no card inside); True when the
        printer then says cleaning is done, False when it still asks for it, None when it cannot say."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device."""
