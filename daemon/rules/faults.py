"""The faults a station raises, and the sentence the office and the journal get for each."""

from __future__ import annotations

from .card_types import CARD_TYPES, has_chip

# Keyed by the fault codes of the contract's event/fault; a code missing here is told as itself.
FAULT_MESSAGES = {
    "printer_disconnected": "the printer does not answer; check its cable and power",
    "feeder_empty": "the printer's feeder is empty; load blanks",
    "cover_open": "the printer's cover is open; close it",
    "no_ribbon": "there is no ribbon in the printer; fit one",
    "ribbon_ended": "the ribbon is used up; fit a new one",
    "card_jam": "a card is jammed in the printer; clear it",
    "reject_box_full": "the reject box is full; empty it",
    "hopper_full": "the output hopper is full; take the cards out",
    "head_cooling": "the print head is cooling down; printing resumes by itself",
    "cleaning_required": "the printer needs cleaning",
    "encoder_disconnected": "the chip encoder is not reachable",
    "storage_error": "the database cannot be written; see the journal",
    "wrong_blank": "the feeder holds blanks of another card type than the job needs; load the right blanks, "
                   "then resume the queue",
}

# Faults the printer cannot see go away: only a person's word clears them (queue/resume, kartuctl resume).
# While one is raised no card starts.
FAULTS_A_PERSON_CLEARS = ("wrong_blank",)

# Faults at the eject that leave the finished card inside, good, until a person acts: the press waits and
# ejects the same card, rather than send it to the reject box and print the record again.
EJECT_WAITS_FOR = ("hopper_full", "cover_open")

# How long the encoder looks for a chip on a blank that should have none: pcscd sees a card 0.14-0.49 s
# after it arrives (rig.md), so a chip still unseen after this long is not there.
CHIP_ABSENT_AFTER_S = 2.0


def blank_type(chip: bool) -> str:
    """The card type of a blank by what the encoder found on it: a chip blank is a KTP-el blank.

    >>> blank_type(True), blank_type(False)
    ('KTP_EL', 'KIA')
    """
    return next(t for t in CARD_TYPES if has_chip(t) == chip)
