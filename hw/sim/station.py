"""The simulated printer's contactless station as the encoder's card channel (``encoder.backend = "sim"``)."""

from __future__ import annotations

from ..encoder import CardChannel, EncodeError, EncoderStatus
from .card import CardLeftField


class SimStationChannel(CardChannel):
    """The encoder's way to the :class:`~kartud.hw.sim.card.SimChipCard` parked at a simulated printer's
    contactless station; ``printer`` is anything with ``card_at_station()``."""

    reader_name = "kartud simulated contactless station"

    def __init__(self, printer):
        self.printer = printer
        self._card = None

    def wait_for_card(self, timeout_s: float) -> None:
        # The printer parks the card before insert_card returns, so the card is there now or never.
        card = self.printer.card_at_station()
        if card is None:
            raise EncodeError("no_card", "no chip card at the contactless station")
        self._card = card

    def transmit(self, apdu: bytes) -> bytes:
        if self._card is None or self.printer.card_at_station() is not self._card:
            raise EncodeError("no_card", "no card connected")
        try:
            return self._card.transmit(apdu)
        except CardLeftField as gone:
            raise EncodeError("no_card", f"the card left the station mid-command: {gone}") from gone

    def release(self) -> None:
        self._card = None

    def status(self) -> EncoderStatus:
        return EncoderStatus(connected=True, reader=self.reader_name)
