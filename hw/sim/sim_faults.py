"""The simulated printer's faults: what a test (or the person at the printer) does, and the checks before a move."""

from __future__ import annotations

import logging

from ..printer import protocol as p

log = logging.getLogger("kartud.sim.printer")

STEPS = ("feed", "encode", "print", "eject", "reject")
# Faults of the chip of the card at the contactless station (not printer faults: the printer never sees them).
CHIP_FAULTS = ("chip_write_refused", "chip_leaves_field")
# Every fault a test can inject or arm: the contract's printer faults, the cable pulled out (seen by the
# in-process link: the command that pulls it takes effect but its answer is lost), and the chip faults.
FAULT_KINDS = ("feeder_empty", "cover_open", "no_ribbon", "ribbon_ended", "card_jam", "reject_box_full", "hopper_full",
               "head_cooling", "cleaning_required", "unplugged", *CHIP_FAULTS)


class Refused(Exception):
    """A command the printer refuses; ``reply`` is what it answers."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


class FaultsMixin:
    """Fault injection and the refusals they cause, for :class:`~kartud.hw.sim.evolis_sim.EvolisSim`."""

    def inject(self, fault: str) -> None:
        """Make ``fault`` (a contract fault code, or one of ``CHIP_FAULTS`` for the card inside) true now."""
        with self._state:
            if fault in CHIP_FAULTS:
                self._chip_fault(fault)
            elif fault == "feeder_empty":
                self.feeder = 0
            elif fault == "cover_open":
                self.cover_open = True
            elif fault == "no_ribbon":
                self.ribbon_loaded = False
            elif fault == "ribbon_ended":
                self.ribbon_remaining = 0
            elif fault == "card_jam":
                self.jammed = True
            elif fault == "reject_box_full":
                self.reject_box = self.settings.reject_box_capacity
            elif fault == "hopper_full":
                self.hopper = self.settings.hopper_capacity
            elif fault == "head_cooling":
                self.head.overheat()
            elif fault == "cleaning_required":
                self.cards_since_cleaning = self.settings.cleaning_every
            elif fault == "unplugged":
                self.connected = False
            else:
                raise ValueError(f"no such fault to inject: {fault}")

    def arm(self, step: str, fault: str) -> None:
        """Make ``fault`` happen when the next card reaches ``step`` (feed, encode, print, eject or reject);
        ``encode`` is the card's arrival at the contactless station, before the encoder sees it."""
        if step not in STEPS:
            raise ValueError(f"step must be one of {', '.join(STEPS)}")
        with self._state:
            self.armed[step] = fault

    def clear(self, fault: str) -> None:
        """Put ``fault`` right: load blanks, close the cover, fit a new ribbon, pull out a jammed card,
        empty the reject box or the hopper, let the head cool, clean, plug the cable back in."""
        with self._state:
            if fault in CHIP_FAULTS:
                if self.card is not None:
                    self.card.fail_writes, self.card.leave_field_at_write = 0, None
            elif fault == "feeder_empty":
                self.feeder = max(self.feeder, self.settings.feeder_cards)
            elif fault == "cover_open":
                self.cover_open = False
            elif fault in ("no_ribbon", "ribbon_ended"):
                self.ribbon_loaded, self.ribbon_remaining = True, self.settings.ribbon_prints
            elif fault == "card_jam":
                if self.jammed and self.position is not None:
                    self._card_leaves()          # taken out by hand: it reaches neither hopper nor reject box
                    self.taken_by_hand += 1
                self.jammed = False
            elif fault == "reject_box_full":
                self.reject_box = 0
            elif fault == "hopper_full":
                self.hopper = 0
            elif fault == "head_cooling":
                self.head.cool_down()
            elif fault == "cleaning_required":
                self.cards_since_cleaning = 0
            elif fault == "unplugged":
                self.connected = True
            else:
                raise ValueError(f"no such fault to clear: {fault}")

    def _chip_fault(self, fault: str) -> None:
        if self.card is None:
            return                               # a blank without a chip: nothing to go wrong there
        if fault == "chip_write_refused":
            self.card.fail_writes = 1            # the first UPDATE BINARY answers 69 82
        else:
            self.card.leave_field_at_write = 1   # pulled out of the field at the first UPDATE BINARY

    def _trigger(self, step: str) -> None:
        fault = self.armed.pop(step, None)
        if fault is not None:
            log.info("simulated printer: %s at the %s step", fault, step)
            self.inject(fault)

    def _check_mechanism(self) -> None:
        if self.jammed:
            raise Refused(p.FAULT_REPLIES["card_jam"])
        if self.cover_open:
            raise Refused(p.FAULT_REPLIES["cover_open"])

    def _check_ribbon(self) -> None:
        if not self.ribbon_loaded:
            raise Refused(p.FAULT_REPLIES["no_ribbon"])
        if self.ribbon_remaining <= 0:
            raise Refused(p.FAULT_REPLIES["ribbon_ended"])

    def _check_can_feed(self) -> None:
        self._check_mechanism()
        self._check_ribbon()
        refusals = ((self.feeder <= 0, "feeder_empty"),
                    (self.hopper >= self.settings.hopper_capacity, "hopper_full"),
                    (self.reject_box >= self.settings.reject_box_capacity, "reject_box_full"),
                    (self.head.cooling(), "head_cooling"),
                    (self.cards_since_cleaning >= self.settings.cleaning_every, "cleaning_required"))
        for refused, fault in refusals:
            if refused:
                raise Refused(p.FAULT_REPLIES[fault])
        if self.position is not None:
            raise Refused("ERR CARD INSIDE")
