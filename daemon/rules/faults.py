"""The faults a station raises, and the sentence the office and the journal get for each."""

from __future__ import annotations

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
}
