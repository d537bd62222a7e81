"""The printer's replies from the public sources, with or without ``ERR``, and the contract fault each names.

Each line of :data:`REPLY_TABLE` is a reply text (without its ``ERR`` prefix), the fault it means
and its source (the E-numbers of ``docs/printer.md``, where the same table is kept). Firmware and
the DLL layer send some of them bare (``FEEDER EMPTY``, ``COVER OPEN``, ``NEED CLEANING``): a bare
text counts only when it is a whole line of the table, so that values such as ``CARD`` stay values.

>>> fault_named("FEEDER EMPTY"), fault_named("ERR FEEDER EMPTY"), fault_named("CARD")
('feeder_empty', 'feeder_empty', None)
>>> is_not_known("ERR PARAMETRES"), is_not_known("ERROR CDE"), is_not_known("OK")
(True, True, False)
"""

from __future__ import annotations

import re

UNKNOWN_COMMAND = "ERROR CDE"
BAD_PARAMETERS = "ERR PARAMETRES"

# (text without ERR, fault, source). Sources: E1 programming guide Rev E, E7 kiosk integration (C++),
# E9 application (Java, through the Evolis DLL), E9b the Evolis VB sample, K kartud's simulator.
REPLY_TABLE: tuple[tuple[str, str, str], ...] = (
    ("FEEDER EMPTY", "feeder_empty", "E9, E9b"),
    ("COVER OPEN", "cover_open", "E9, E9b"),
    ("NEED CLEANING", "cleaning_required", "E1 p.34 (Rlr;r)"),
    ("RIB DETECTION", "no_ribbon", "E7 (Rrt)"),
    ("RIBBON", "no_ribbon", "E9"),
    ("RIBBON TYPE", "no_ribbon", "E9"),
    ("NO RIBBON", "no_ribbon", "K"),
    ("RIBBON ENDED", "ribbon_ended", "K"),
    ("TIME OUT", "card_jam", "E9"),
    ("TIME", "card_jam", "E9"),
    ("MECHANICAL", "card_jam", "K"),
    ("REJECT BOX FULL", "reject_box_full", "K"),
    ("HOPPER FULL", "hopper_full", "K"),
    ("HEAD TEMP", "head_cooling", "K"),
)
EXACT = {text: fault for text, fault, _ in REPLY_TABLE}

# For an ``ERR``/``ERROR`` text not in the table: the first pattern that matches, most specific first.
ERROR_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"FEEDER", "feeder_empty"),
    (r"COVER", "cover_open"),
    (r"RIBBON\s*END", "ribbon_ended"),
    (r"RIB(BON)?\s*DETECTION|NO\s*RIBBON|RIBBON", "no_ribbon"),
    (r"REJECT", "reject_box_full"),
    (r"HOPPER|EJECT\s*BOX", "hopper_full"),
    (r"HEAD\s*TEMP|COOLING", "head_cooling"),
    (r"CLEANING", "cleaning_required"),
    (r"MECHANICAL|JAM|TIME\s*OUT|CARD", "card_jam"),
)
PREFIX = re.compile(r"^ERR(OR)?\b\s*")


def is_not_known(reply: str) -> bool:
    """The printer does not know this command (``ERROR CDE``) or this parameter (``ERR PARAMETRES``,
    e.g. ``Rse;f`` on a printer whose guide lists only the sensors c, m, o, p and r)."""
    return reply.strip().upper() in (UNKNOWN_COMMAND, BAD_PARAMETERS)


def fault_named(reply: str) -> str | None:
    """The contract fault a reply names, or None for ``OK``, a value or a command/parameter not known.
    An ``ERR`` text kartud does not know is ``card_jam``: the printer stopped for a reason only a person
    at the printer can see."""
    text = " ".join(reply.strip().upper().split())
    if is_not_known(text):
        return None
    bare = PREFIX.sub("", text)
    if bare in EXACT:
        return EXACT[bare]
    if not PREFIX.match(text):
        return None
    for pattern, code in ERROR_PATTERNS:
        if re.search(pattern, bare):
            return code
    return "card_jam"
