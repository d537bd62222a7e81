"""What kartud knows of an Evolis printer before talking to it: card and panel geometry, command grammar, defaults.

Plain values and checks, no I/O and no Pillow, so that the daemon's configuration rules can check
``[printer]`` against the same facts the driver uses. Each check returns None for a good value,
else what is wrong in plain words (the sources are in ``docs/printer.md``).

>>> command_problem("Pcim;F") is None, command_problem("Rlr;p", read=True) is None
(True, True)
>>> command_problem("Pcim;F", read=True)
"must be a printer read command such as Rlr;p, got 'Pcim;F'"
>>> panel_width_problem(650)
'must be a multiple of 8 between 648 and 1024 dots, got 650'
"""

from __future__ import annotations

import re

# A card face at 300 dpi: 1016 x 648 dots landscape (an ID-1 card), or turned, 648 x 1016.
CARD_WIDTH, CARD_HEIGHT = 1016, 648
FACE_SIZES = ((CARD_WIDTH, CARD_HEIGHT), (CARD_HEIGHT, CARD_WIDTH))

# A panel as the printer takes it: 648 x 1016 dots tested on hardware, 656 x 1032 in the 2003 guide;
# public sources disagree, so the size is a setting within these bounds. Lines are whole bytes.
PANEL_WIDTH, PANEL_HEIGHT = 648, 1016
PANEL_WIDTH_RANGE = (648, 1024)
PANEL_HEIGHT_RANGE = (1016, 2048)
PANEL_ROTATIONS = (90, 270)     # how a landscape face is turned onto the panel (counter-clockwise)
COLOUR_BITS = (5, 6, 7, 8)      # bits a dot of Y, M and C that ``Db`` takes (8 on newer firmware only)
RIBBONS = ("ymcko", "ymckok")   # ribbons with a colour set for the front; "ymckok" adds a black panel for the back

# Sent after each connection: insertion from the feeder, rejects to the default box. The status-words
# read is kartud's choice, not a documented command (docs/printer.md).
SETUP_COMMANDS = ("Pcim;F", "Pcrm;D")
# The error mode (Pem) each card runs under: 2, errors answered to the host instead of waited on at the
# printer (E2). The printer's own mode (Rem) is put back when the card has left.
CARD_ERROR_MODE = 2
STATUS_COMMAND = "Rst"

# An escape command as text: a name (a capital letter, then small letters), then ;-separated
# parameters of printable ASCII other than ';'. A read's name starts with R.
_COMMAND = re.compile(r"[A-Z][a-z]+(;[ -:<-~]*)*")
_READ_COMMAND = re.compile(r"R[a-z]+(;[ -:<-~]*)*")


def command_problem(text, read: bool = False) -> str | None:
    """What keeps ``text`` from being a printer command (a read command when ``read``), or None."""
    pattern = _READ_COMMAND if read else _COMMAND
    if not isinstance(text, str) or not pattern.fullmatch(text):
        kind, example = ("read command", "Rlr;p") if read else ("command", "Pcim;F")
        return f"must be a printer {kind} such as {example}, got {text!r}"
    return None


def panel_width_problem(width: int) -> str | None:
    """A panel line must be whole bytes and within what a printer takes."""
    low, high = PANEL_WIDTH_RANGE
    if not low <= width <= high or width % 8:
        return f"must be a multiple of 8 between {low} and {high} dots, got {width}"
    return None


def card_rectangle_problem(rectangle: list) -> str | None:
    """``[]`` or ``[x, y, width, height]`` in landscape card dots, inside the card."""
    if not rectangle:
        return None
    if len(rectangle) != 4 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in rectangle):
        return "must be [] or [x, y, width, height]: four whole numbers of dots, not negative"
    x, y, width, height = rectangle
    if width == 0 or height == 0 or x + width > CARD_WIDTH or y + height > CARD_HEIGHT:
        return f"must be a non-empty rectangle inside the {CARD_WIDTH}x{CARD_HEIGHT} landscape card"
    return None
