"""The chip encoder: read the UID, create every file (CREATE FILE), write it (UPDATE BINARY), read each back."""

from __future__ import annotations

from dataclasses import dataclass


class EncodeError(Exception):
    """Encoding failed. ``kind`` is one of: no_card, wrong_card, write_refused, verify_mismatch,
    reader_gone, service_gone, chip_too_large (the files do not fit the chip: another blank of the same
    kind will not take them either)."""

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
SELECT_MF = bytes.fromhex("00A4000C023F00")
SW_OK = b"\x90\x00"
SW_NOT_ENOUGH_MEMORY = b"\x6a\x84"
SW_FILE_EXISTS = b"\x6a\x89"
# UPDATE/READ BINARY address a file with a 15-bit offset (P1's top bit asks for a short EF id instead).
MAX_FILE_SIZE = 0x8000


class Encoder:
    """Writes and verifies a chip's files over a :class:`CardChannel`.

    A blank chip has no files: each is made with ISO 7816-9 CREATE FILE (a transparent EF of exactly
    its size, under the MF) before anything is written, so a chip too small says so (``6A 84``)
    before it holds a byte. ``chip_capacity`` is how many bytes of files a blank's chip takes
    (``encoder.chip_capacity_bytes``; no ISO 7816 command tells a chip's free memory): files that
    cannot fit are refused before the card is touched. ``chunk`` is the largest UPDATE/READ BINARY
    body; short APDUs (up to 255 bytes of data) work with every reader.
    """

    def __init__(self, channel: CardChannel, timeout_s: float = 10.0, chunk: int = 0xE0,
                 chip_capacity: int | None = None):
        self.channel = channel
        self.timeout_s = timeout_s
        self.chunk = chunk
        self.chip_capacity = chip_capacity

    def status(self) -> EncoderStatus:
        return self.channel.status()

    def fit_problem(self, files: dict[int, bytes]) -> str | None:
        """Why ``files`` cannot go on a blank's chip, or None when they fit."""
        total = sum(len(data) for data in files.values())
        if self.chip_capacity is not None and total > self.chip_capacity:
            return f"{total} bytes of files do not fit the chip's {self.chip_capacity} bytes"
        too_big = [file_id for file_id, data in sorted(files.items()) if len(data) > MAX_FILE_SIZE]
        if too_big:
            return f"file {too_big[0]:04X} is larger than {MAX_FILE_SIZE} bytes (UPDATE BINARY's offsets)"
        return None

    def encode(self, files: dict[int, bytes]) -> str:
        """Create ``files`` (file id -> bytes) on the blank chip at the station, write and verify them,
        and return the chip's UID in hex."""
        try:
            problem = self.fit_problem(files)
            if problem is not None:
                raise EncodeError("chip_too_large", problem)
            # Inside the try: a wait that fails part-way (connected, then timed out) must let go too.
            self.channel.wait_for_card(self.timeout_s)
            uid = self._command(GET_UID, "read the card's UID")
            if not uid:
                raise EncodeError("wrong_card", "the card returned an empty UID")
            self._command(SELECT_MF, "select the master file", refused_kind="wrong_card")
            for file_id, data in sorted(files.items()):
                self._create(file_id, len(data))
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

    def _create(self, file_id: int, size: int) -> None:
        """CREATE FILE (ISO 7816-9) of a transparent working EF: FCP 62 {82 01 01, 83 id, 80 size}."""
        fcp = bytes([0x82, 0x01, 0x01, 0x83, 0x02, file_id >> 8, file_id & 0xFF, 0x80, 0x02, size >> 8, size & 0xFF])
        apdu = bytes([0x00, 0xE0, 0x00, 0x00, len(fcp) + 2, 0x62, len(fcp)]) + fcp
        response = self.channel.transmit(apdu)
        status = response[-2:]
        if len(response) >= 2 and status == SW_NOT_ENOUGH_MEMORY:
            raise EncodeError("chip_too_large", f"the chip has no room for file {file_id:04X} ({size} bytes)")
        if len(response) >= 2 and status == SW_FILE_EXISTS:
            raise EncodeError("wrong_card", f"the chip is not blank: it holds a file {file_id:04X} already")
        self._check(response, f"create file {file_id:04X}", "write_refused")

    def _select(self, file_id: int) -> None:
        self._command(bytes([0x00, 0xA4, 0x02, 0x0C, 0x02, file_id >> 8, file_id & 0xFF]),
                      f"select file {file_id:04X}", refused_kind="wrong_card")

    def _command(self, apdu: bytes, what: str, refused_kind: str = "wrong_card") -> bytes:
        return self._check(self.channel.transmit(apdu), what, refused_kind)

    @staticmethod
    def _check(response: bytes, what: str, refused_kind: str) -> bytes:
        if len(response) < 2:
            raise EncodeError("wrong_card", f"no valid answer to {what}")
        if response[-2:] != SW_OK:
            raise EncodeError(refused_kind, f"the card refused to {what} (status {response[-2:].hex().upper()})")
        return response[:-2]

    def encode_unless_no_chip(self, files: dict[int, bytes], timeout_s: float | None = None) -> str | None:
        """:meth:`encode`, but None, not an error, when no chip came to the station within ``timeout_s``
        (default: the encoder's timeout): the blank has none. A chip that came and then failed raises as
        :meth:`encode` does. With no ``files`` nothing is written: the chip's UID says a chip is there.
        This is how the box tells a chip blank from a blank without one before printing on it."""
        came = []
        wait = self.channel.wait_for_card

        def watched_wait(seconds: float) -> None:
            wait(self.timeout_s if timeout_s is None else timeout_s)
            came.append(True)

        # Only the wait is watched, for this one call: the channel's own method again afterwards.
        self.channel.wait_for_card = watched_wait
        try:
            return self.encode(files)
        except EncodeError as error:
            if error.kind == "no_card" and not came:
                return None
            raise
        finally:
            del self.channel.wait_for_card
