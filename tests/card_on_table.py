"""A card channel for the encoder tests: one simulated card on a table, every APDU recorded, and whether it was let go."""

from __future__ import annotations

from kartud.hw.encoder import CardChannel, EncodeError, EncoderStatus
from kartud.hw.sim.card import SW_OK, SimChipCard


class CardOnTable(CardChannel):
    """A channel to one simulated card (or none), recording what was sent and whether the card was let go."""

    def __init__(self, card: SimChipCard | None, corrupt_read_at: int | None = None):
        self.card = card
        self.corrupt_read_at = corrupt_read_at   # flip a byte of the n-th READ BINARY answer's data
        self.apdus: list[bytes] = []
        self.reads = 0
        self.connected = False
        self.released = 0

    def wait_for_card(self, timeout_s: float) -> None:
        if self.card is None:
            raise EncodeError("no_card", "no chip card at the station")
        self.connected = True

    def transmit(self, apdu: bytes) -> bytes:
        assert self.connected, "transmit before wait_for_card or after release"
        self.apdus.append(apdu)
        response = self.card.transmit(apdu)
        if apdu[1] == 0xB0 and response[-2:] == SW_OK:
            self.reads += 1
            if self.reads == self.corrupt_read_at and len(response) > 2:
                data = bytearray(response[:-2])
                data[len(data) // 2] ^= 0x01
                response = bytes(data) + response[-2:]
        return response

    def release(self) -> None:
        self.connected = False
        self.released += 1

    def status(self) -> EncoderStatus:
        return EncoderStatus(connected=self.card is not None, reader="test table")
