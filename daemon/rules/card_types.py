"""The card types a station prints: KTP-el (electronic ID card, with a chip) and KIA (child ID card, no chip).

The ledger's schema repeats the two names in its CHECK constraints (SQL cannot import them); a test
keeps the two lists the same.

>>> CARD_TYPES
('KTP_EL', 'KIA')
>>> [has_chip(t) for t in CARD_TYPES]
[True, False]
"""

from __future__ import annotations

KTP_EL = "KTP_EL"
KIA = "KIA"
CARD_TYPES = (KTP_EL, KIA)
# The types whose card carries a chip that the encoder writes before the faces are printed.
CHIP_CARD_TYPES = (KTP_EL,)


def has_chip(card_type: str) -> bool:
    """Whether a card of this type carries a chip to encode."""
    return card_type in CHIP_CARD_TYPES
