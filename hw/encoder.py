"""The chip encoder: read the UID, write every file with UPDATE BINARY, read each back and compare."""

from __future__ import annotations

from dataclasses import dataclass


class EncodeError(Exception):
    """Encoding failed. ``kind`` is one of: no_card, wrong_card, write_refused, verify_mismatch,
    reader_gone, service_gone."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class EncoderStatus:
    connected: bool
    reader: str = ""

    def as_dict(self) -> dict:
        return {"connected": self.connected, "reader": self.reader}


class CardChannel:
    """How the encoder reaches the card parked at the station (PC/SC or the simulator)."""

    def wait_for_card(self, timeout_s: float) -> None:
        """Block until a card is present and connected, or raise EncodeError('no_card')."""
        raise NotImplementedError

    def transmit(self, apdu: bytes) -> bytes:
        """Send a command APDU, return the response APDU (data + SW1 SW2)."""
        raise NotImplementedError

    def release(self) -> None:
        """Let go of the card. Called after every encode, also when wait_for_card failed: safe with no card."""

    def status(self) -> EncoderStatus:
        raise NotImplementedError


GET_UID = bytes.fromhex("FFCA000000")
SW_OK = b"\x90\x00"


class Encoder:
    """Writes and verifies a chip's files over a :class:`CardChannel`.

    ``chunk`` is the largest UPDATE/READ BINARY body; short APDUs (up to 255 bytes of data) work
    with every reader.
    """

    def __init__(self, channel: CardChannel, timeout_s: float = 10.0, chunk: int = 0xE0):
        self.channel = channel
        self.timeout_s = timeout_s
        self.chunk = chunk

    def status(self) -> EncoderStatus:
        return self.channel.status()

    def encode(self, files: dict[int, bytes]) -> str:
        """Write ``files`` (file id -> bytes) to the card at the station, verify them, return its UID in hex."""
        try:
            # Inside the try: a wait that fails part-way (connected, then timed out) must let go too.
            self.channel.wait_for_card(self.timeout_s)
            uid = self._command(GET_UID, "read the card's UID")
            if not uid:
                raise EncodeError("wrong_card", "the card returned an empty UID")
            for file_id, data in sorted(files.items()):
                self._select(file_id)
                for offset in range(0, len(data), self.chunk):
                    part = data[offset:offset + self.chunk]
                    header = bytes([0x00, 0xD6, offset >> 8, offset & 0xFF, len(part)])
                    self._command(header + part, f"write file {file_id:04X}", refused_kind="write_refused")
            for file_id, data in sorted(files.items()):
                self._select(file_id)
                read = bytearray()
                for offset in range(0, len(data), self.chunk):
                    want = min(self.chunk, len(data) - offset)
                    read += self._command(bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, want]),
                                          f"read back file {file_id:04X}")
                if bytes(read) != data:
                    raise EncodeError("verify_mismatch", f"file {file_id:04X} read back differs from what was written")
            return uid.hex().upper()
        finally:
            self.channel.release()

    def _select(self, file_id: int) -> None:
        self._command(bytes([0x00, 0xA4, 0x02, 0x0C, 0x02, file_id >> 8, file_id & 0xFF]),
                      f"select file {file_id:04X}", refused_kind="wrong_card")

    def _command(self, apdu: bytes, what: str, refused_kind: str = "wrong_card") -> bytes:
        response = self.channel.transmit(apdu)
        if len(response) < 2:
            raise EncodeError("wrong_card", f"no valid answer to {what}")
        if response[-2:] != SW_OK:
            raise EncodeError(refused_kind, f"the card refused to {what} (status {response[-2:].hex().upper()})")
        return response[:-2]

    def chip_present(self, timeout_s: float | None = None) -> bool:
        """Whether a chip answers at the station within ``timeout_s`` (default: the encoder's timeout); lets go
        of it either way. How the box tells a chip blank from a blank without one before printing on it."""
        try:
            self.channel.wait_for_card(self.timeout_s if timeout_s is None else timeout_s)
            return True
        except EncodeError as error:
            if error.kind != "no_card":
                raise
            return False
        finally:
            self.channel.release()
