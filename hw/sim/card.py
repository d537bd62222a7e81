"""A simulated blank contactless chip (ISO 14443-4): GET UID, SELECT, CREATE FILE, READ/UPDATE BINARY, a capacity."""

from __future__ import annotations

import hashlib
import os
import struct
import threading

SW_OK = b"\x90\x00"
SW_END_OF_FILE = b"\x62\x82"        # READ BINARY: fewer bytes than asked were left in the file
SW_WRONG_LENGTH = b"\x67\x00"
SW_SECURITY = b"\x69\x82"           # write refused (injected failure)
SW_NO_FILE_SELECTED = b"\x69\x86"
SW_WRONG_DATA = b"\x6a\x80"         # CREATE FILE: the FCP is not one this chip can make
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_NOT_ENOUGH_MEMORY = b"\x6a\x84"
SW_FILE_EXISTS = b"\x6a\x89"
SW_WRONG_P1P2 = b"\x6b\x00"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_CLA_NOT_SUPPORTED = b"\x6e\x00"

MF = 0x3F00
# File ids ISO 7816-4 keeps for itself (the MF, the current DF, "no file"): never an EF's.
RESERVED_IDS = (MF, 0x3FFF, 0xFFFF)
# What an e-KTP chip holds (8 KB, /work/shared/reference/ektp-domain.md); kartud's
# encoder.chip_capacity_bytes defaults to the same.
BLANK_CAPACITY = 8 * 1024
# UPDATE/READ BINARY's offset is 15 bits of P1-P2 (P1's top bit asks for a short EF id instead).
MAX_FILE_SIZE = 0x8000


def contactless_atr(historical: bytes) -> bytes:
    """The ATR a PC/SC reader builds for an ISO 14443-4 card (PC/SC part 3, 3.1.3.2.3): ``3B 8n 80 01``,
    the n historical bytes (a type A card's ATS historical bytes), and TCK, the XOR of T0 to the last.

    >>> contactless_atr(bytes.fromhex("8073102100829000")).hex(" ").upper()
    '3B 88 80 01 80 73 10 21 00 82 90 00 D9'
    """
    if len(historical) > 15:
        raise ValueError("an ATR holds at most 15 historical bytes")
    body = bytes([0x80 | len(historical), 0x80, 0x01]) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes([tck])


# ISO 7816-4 historical bytes in compact-TLV (category indicator 80): card capabilities (73) "select by
# file id; data unit 1 byte, proprietary write behaviour; no chaining, no extended length, no logical
# channels", and the status indicator (82) 90 00. No card name: pcsc_scan's list knows no card by it,
# and nothing takes it for a MIFARE Classic (whose PC/SC ATR carries the storage-card RID, 80 4F ...).
BLANK_HISTORICAL_BYTES = bytes.fromhex("80 73 10 21 00 82 90 00")
CONTACTLESS_ATR = contactless_atr(BLANK_HISTORICAL_BYTES)   # 3B 88 80 01 80 73 10 21 00 82 90 00 D9


class CardLeftField(Exception):
    """The card left the reader's field while a command was on its way: that command gets no answer."""


class SimChipCard:
    """A blank chip card, as a real blank answers: no files until CREATE FILE makes them, up to
    ``capacity`` bytes of files in all (``6A 84`` beyond), ``6A 82`` for a file that is not there.

    ``fail_writes`` makes the next write commands (CREATE FILE or UPDATE BINARY) answer 69 82 (write
    refused), and ``leave_field_at_write`` (n >= 1) makes the n-th UPDATE BINARY raise
    :class:`CardLeftField` instead of answering (a card pulled mid-write), to test the encoder's
    failure paths.

    >>> card = SimChipCard(uid=bytes.fromhex("04A1B2C3D4E5F6"))
    >>> card.transmit(bytes.fromhex("FFCA000000")).hex().upper()
    '04A1B2C3D4E5F69000'
    >>> card.transmit(bytes.fromhex("00A4020C020101")).hex().upper()     # SELECT of an absent file
    '6A82'
    """

    def __init__(self, uid: bytes | None = None, capacity: int = BLANK_CAPACITY, max_file_size: int = MAX_FILE_SIZE):
        self.uid = uid if uid is not None else b"\x04" + os.urandom(6)
        self.atr = CONTACTLESS_ATR
        self.capacity = capacity
        self.max_file_size = max_file_size
        self.files: dict[int, bytearray] = {}     # EF id -> its bytes, as long as CREATE FILE made it
        self.selected: int | None = None          # the current EF (None: the MF, no EF)
        self.fail_writes = 0
        self.leave_field_at_write: int | None = None
        self._writes_seen = 0
        self.left_field = False
        self._lock = threading.Lock()

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()

    def power_off(self) -> None:
        """The field went off: the selected file is forgotten (files are in EEPROM and stay)."""
        with self._lock:
            self.selected = None

    def used(self) -> int:
        """Bytes the chip's files take."""
        return sum(len(data) for data in self.files.values())

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one command APDU with its response APDU (data + SW1 SW2)."""
        with self._lock:
            if self.left_field:
                raise CardLeftField("the card is out of the reader's field")
            if len(apdu) < 4:
                return SW_WRONG_LENGTH
            cla, ins, p1, p2 = apdu[:4]
            body = apdu[4:]
            if cla == 0xFF and ins == 0xCA:
                return self.uid + SW_OK if (p1, p2) == (0, 0) else SW_WRONG_P1P2
            if cla != 0x00:
                return SW_CLA_NOT_SUPPORTED
            if ins == 0xA4:
                return self._select(p1, p2, body)
            if ins == 0xB0:
                return self._read(p1, p2, body)
            if ins == 0xE0:
                return self._refused_write() or self._create(p1, p2, body)
            if ins == 0xD6:
                self._writes_seen += 1
                if self._writes_seen == self.leave_field_at_write:
                    self.left_field = True       # and stays out: nothing it is sent gets an answer
                    raise CardLeftField(f"the card left the field at UPDATE BINARY number {self._writes_seen}")
                return self._update(p1, p2, body)
            return SW_INS_NOT_SUPPORTED

    def _refused_write(self) -> bytes | None:
        if self.fail_writes > 0:
            self.fail_writes -= 1
            return SW_SECURITY
        return None

    def _select(self, p1: int, p2: int, body: bytes) -> bytes:
        """SELECT (ISO 7816-4 7.1.1): P1 00 by file id (the MF when the data is 3F00 or empty), 02 an EF
        of the MF, 04 a DF by name (a blank has no application: 6A 82). P2 0C: no answer data; 00 or 04:
        the file's FCP."""
        if p2 not in (0x00, 0x04, 0x0C):
            return SW_WRONG_P1P2
        if p1 == 0x04:
            return SW_FILE_NOT_FOUND if body and body[0] == len(body) - 1 else SW_WRONG_LENGTH
        if p1 == 0x00 and (not body or body[:3] == b"\x02\x3f\x00"):
            self.selected = None
            return SW_OK if p2 == 0x0C else _fcp(MF, None) + SW_OK
        if p1 not in (0x00, 0x02) or len(body) < 3 or body[0] != 2:
            return SW_WRONG_P1P2
        file_id = (body[1] << 8) | body[2]
        if file_id not in self.files:
            return SW_FILE_NOT_FOUND     # what a blank answers: nothing springs into being
        self.selected = file_id
        return SW_OK if p2 == 0x0C else _fcp(file_id, len(self.files[file_id])) + SW_OK

    def _create(self, p1: int, p2: int, body: bytes) -> bytes:
        """CREATE FILE (ISO 7816-9 8.1, P1-P2 00 00) of a transparent EF under the MF, from an FCP
        template: ``62 L 82 01 01 83 02 <id> 80 02 <size>``. The new EF becomes the current one."""
        if (p1, p2) != (0, 0):
            return SW_WRONG_P1P2
        if not body or body[0] != len(body) - 1:
            return SW_WRONG_LENGTH
        fcp = _parse_fcp(body[1:])
        if fcp is None or fcp.get(0x82, b"\x01")[:1] != b"\x01" or len(fcp.get(0x83, b"")) != 2 \
                or not 1 <= len(fcp.get(0x80, b"")) <= 2:
            return SW_WRONG_DATA
        file_id, size = int.from_bytes(fcp[0x83], "big"), int.from_bytes(fcp[0x80], "big")
        if file_id in RESERVED_IDS:
            return SW_WRONG_DATA
        if file_id in self.files:
            return SW_FILE_EXISTS
        if size > self.max_file_size or self.used() + size > self.capacity:
            return SW_NOT_ENOUGH_MEMORY
        self.files[file_id] = bytearray(size)
        self.selected = file_id
        return SW_OK

    def _read(self, p1: int, p2: int, body: bytes) -> bytes:
        if self.selected is None:
            return SW_NO_FILE_SELECTED
        if p1 & 0x80:
            return SW_WRONG_P1P2                 # a short EF id: not kept by this chip
        offset, data = (p1 << 8) | p2, self.files[self.selected]
        if offset > len(data) or (offset == len(data) and data):
            return SW_WRONG_P1P2
        wanted = (body[0] if body else 0) or 256
        part = bytes(data[offset:offset + wanted])
        return part + (SW_OK if len(part) == wanted else SW_END_OF_FILE)

    def _update(self, p1: int, p2: int, body: bytes) -> bytes:
        if self.selected is None:
            return SW_NO_FILE_SELECTED
        if not body or body[0] != len(body) - 1:
            return SW_WRONG_LENGTH
        if refused := self._refused_write():
            return refused
        if p1 & 0x80:
            return SW_WRONG_P1P2
        offset, data, current = (p1 << 8) | p2, body[1:], self.files[self.selected]
        if offset > len(current):
            return SW_WRONG_P1P2
        if offset + len(data) > len(current):
            return SW_NOT_ENOUGH_MEMORY          # ISO 7816-4: not enough memory space in the file
        current[offset:offset + len(data)] = data
        return SW_OK

    def files_sha256(self) -> str | None:
        """The contract's ``chip_files_sha256`` of what the chip holds, or None for a chip with no file."""
        with self._lock:
            held = {fid: bytes(data) for fid, data in self.files.items()}
        return files_sha256(held) if held else None


def _parse_fcp(data: bytes) -> dict[int, bytes] | None:
    """The data objects inside an FCP template (``62``), one-byte tags and short lengths; None if malformed."""
    if len(data) < 2 or data[0] != 0x62 or data[1] != len(data) - 2:
        return None
    found, at, inner = {}, 0, data[2:]
    while at < len(inner):
        if at + 2 > len(inner) or at + 2 + inner[at + 1] > len(inner) or inner[at + 1] > 0x7F:
            return None
        found[inner[at]] = inner[at + 2:at + 2 + inner[at + 1]]
        at += 2 + inner[at + 1]
    return found


def _fcp(file_id: int, size: int | None) -> bytes:
    """The FCP a SELECT returns: size (80) for an EF, descriptor (82: 01 transparent EF, 38 DF), id (83)."""
    inner = (b"" if size is None else b"\x80\x02" + size.to_bytes(2, "big")) \
        + (b"\x82\x01\x38" if size is None else b"\x82\x01\x01") + b"\x83\x02" + file_id.to_bytes(2, "big")
    return bytes([0x62, len(inner)]) + inner


def files_sha256(files: dict[int, bytes]) -> str:
    """SHA-256 over files in ascending id order: id (2 bytes BE), length (4 bytes BE), bytes."""
    digest = hashlib.sha256()
    for file_id in sorted(files):
        data = files[file_id]
        digest.update(struct.pack(">HI", file_id, len(data)))
        digest.update(data)
    return digest.hexdigest()
