"""The Evolis escape-command protocol: framing, command builders, reply parsing and reply-to-fault mapping.

A command is ``ESC name;p1;...;pN CR``; a panel download carries raw bytes after its last ``;``
(length implied by the panel size and bit depth, so the payload may contain CR). Replies are
ASCII: ``OK``, ``ERR ...``, ``ERROR CDE`` (unknown command) or a value. Facts and sources are in
``docs/printer.md``; the texts below that no public source confirms are marked there.

>>> encode("Rlr", "p")
b'\\x1bRlr;p\\r'
>>> fault_for_error("ERR FEEDER EMPTY")
'feeder_empty'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import PrinterFault, replies

ESC, SEP, CR, NUL, LF = 0x1B, 0x3B, 0x0D, 0x00, 0x0A
REPLY_ENDS = bytes([CR, LF, NUL])

# Panel downloads: the commands whose last parameter is binary, and how many text parameters precede it.
BINARY_AFTER = {"Db": 2}
# Bits a dot for each ``levels`` value of ``Db`` (2: K and O; 32/64/128: colour; 256 newer firmware).
BITS_FOR_LEVELS = {2: 1, 32: 5, 64: 6, 128: 7, 256: 8}
LEVELS_FOR_BITS = {bits: levels for levels, bits in BITS_FOR_LEVELS.items()}

OK = "OK"
UNKNOWN_COMMAND = "ERROR CDE"
BAD_PARAMETERS = "ERR PARAMETRES"

# The reply a simulated printer gives for each fault, and the first pattern the driver matches.
# Real firmware texts are only partly known (docs/printer.md): the patterns below also catch the
# variants seen in public code (``FEEDER EMPTY``, ``ERR RIB DETECTION``, ``ERROR TIME OUT``, ...).
FAULT_REPLIES = {
    "feeder_empty": "ERR FEEDER EMPTY",
    "cover_open": "ERR COVER OPEN",
    "no_ribbon": "ERR NO RIBBON",
    "ribbon_ended": "ERR RIBBON ENDED",
    "card_jam": "ERR MECHANICAL",
    "reject_box_full": "ERR REJECT BOX FULL",
    "hopper_full": "ERR HOPPER FULL",
    "head_cooling": "ERR HEAD TEMP",
    "cleaning_required": "ERR NEED CLEANING",
}
ERROR_PATTERNS = replies.ERROR_PATTERNS

# Status words (E3 ``evo-printers.h`` masks): word name -> [(mask, fault code)].
STATUS_WORD_FAULTS = {
    "warning": [(0x01000000, "feeder_empty"), (0x08000000, "reject_box_full"), (0x00200000, "head_cooling"),
                (0x00100000, "hopper_full"), (0x00080000, "ribbon_ended"), (0x00020000, "cover_open"),
                (0x00010000, "no_ribbon")],
    "error": [(0x20000000, "head_cooling"), (0x08000000, "feeder_empty"), (0x04000000, "no_ribbon"),
              (0x02000000, "cover_open"), (0x01000000, "card_jam"), (0x00800000, "reject_box_full"),
              (0x00400000, "no_ribbon"), (0x00200000, "ribbon_ended"), (0x00100000, "hopper_full")],
    "information": [(0x00040000, "cleaning_required")],
}
# Information-word positions of a card inside the printer, most specific first. (INF_CARD_FEEDER and
# INF_CARD_EJECT say cards wait in the feeder or at the exit: not inside.)
STATUS_CARD_POSITIONS = ((0x08000000, "contactless"), (0x04000000, "smart"), (0x02000000, "print"))
STATUS_WORD_NAMES = ("config", "information", "warning", "error")

# ``Rlr;p`` answers, old guide and newer firmware (docs/printer.md).
# The guide's ``ERR CARD`` says a card is inside, not where (E1 p.34): ``inside``. (A jam is known from
# the status words or from the error reply to a move.)
CARD_POSITION_REPLIES = {"OK": None, "NO CARD": None, "CARD": "print", "CONTACTLESS CARD": "contactless",
                         "SMART CARD": "smart", "ERR CARD": "inside"}


class ProtocolError(PrinterFault):
    """The printer's answer could not be used: none came in time, it was cut short or garbled, or the
    printer did not know the command. Reported as ``printer_disconnected``: the link is not to be trusted
    until the driver has reconnected."""

    def __init__(self, message: str):
        super().__init__("printer_disconnected", message)


class NoReply(ProtocolError):
    """Not one byte of an answer came in time: the printer is off, unplugged, or busy taking what it was
    sent as something else (the rest of a panel download)."""


def encode(name: str, *params: str | int, payload: bytes | None = None) -> bytes:
    """One command frame: ``ESC name;p1;...;pN CR``, with ``payload`` raw after the last ``;``.

    >>> encode("Db", "k", 2, payload=b"\\r\\x00")
    b'\\x1bDb;k;2;\\r\\x00\\r'
    """
    text = ";".join([name, *(str(p) for p in params)])
    if any(ch in text for ch in "\x1b\r\x00") or not text.isascii():
        raise ValueError(f"a command's text must be ASCII without ESC, CR or NUL: {text[:40]!r}")
    frame = bytes([ESC]) + text.encode("ascii")
    if payload is not None:
        frame += bytes([SEP]) + payload
    return frame + bytes([CR])


# -- command builders: one per command the driver sends ---------------------------------------------

def start_sequence() -> bytes:
    return encode("Ss")


def end_sequence() -> bytes:
    """``Se``: print what is left of the sequence, then eject the card to the output hopper."""
    return encode("Se")


def front_side() -> bytes:
    return encode("Sr")


def back_side() -> bytes:
    return encode("Sv")


def insert_card() -> bytes:
    """``Si``: feed a blank to the print position."""
    return encode("Si")


def insert_contactless() -> bytes:
    """``Sic``: feed a blank and park it at the contactless station."""
    return encode("Sic")


def reject_card() -> bytes:
    """``Ser``: send the card inside to the reject box."""
    return encode("Ser")


def clean_printer() -> bytes:
    """``Scp``: the cleaning cycle (a cleaning card must be in the feeder)."""
    return encode("Scp")


def reset_printer() -> bytes:
    """``Srs``: software reset, which also drops a half-sent sequence."""
    return encode("Srs")


def set_ribbon(kind: str) -> bytes:
    return encode("Pr", kind)


def set_error_mode(mode: int) -> bytes:
    """``Pem``: 2 lets the host handle errors instead of waiting for a person at the printer."""
    return encode("Pem", mode)


def fill_panel(panel: str, value: int) -> bytes:
    """``Wcb``: clear (0) or fill (255) a panel's bitmap; ``Wcb;o;255`` is a full overlay."""
    return encode("Wcb", panel, value)


def set_contrast(panel: str, value: int) -> bytes:
    """``Pc;<panel>;=;<value>`` (10 is the printer's default)."""
    return encode("Pc", panel, "=", value)


def download_panel(panel: str, bits: int, data: bytes) -> bytes:
    """``Db;<panel>;<levels>;<data>``: a whole panel, ``bits`` a dot."""
    return encode("Db", panel, LEVELS_FOR_BITS[bits], payload=data)


def read(name: str, *params: str) -> bytes:
    """A read command: ``Rfv``, ``Rsn``, ``Rtp``, ``Rco;c``, ``Rrt;count``, ``Rlr;p``, ``Rse;f``, ..."""
    if not name.startswith("R"):
        raise ValueError(f"{name} is not a read command")
    return encode(name, *params)


def raw_command(text: str) -> bytes:
    """A configured command given as text, such as ``Pcim;F``."""
    name, *params = text.split(";")
    return encode(name, *params)


# -- replies ---------------------------------------------------------------------------------------

def decode_reply(raw: bytes, command: str) -> str:
    """The text of one reply (terminator already removed), or :class:`ProtocolError` if it is garbled."""
    text = raw.strip(b"\x00\r\n ")
    if not text:
        raise ProtocolError(f"the printer's reply to {command} was empty")
    if not text.isascii() or any(b < 0x20 or b == 0x7F for b in text):
        raise ProtocolError(f"the printer's reply to {command} is garbled ({len(text)} bytes, not text)")
    return text.decode("ascii")


def is_error(reply: str) -> bool:
    """A reply that names a fault, with or without ``ERR`` (``FEEDER EMPTY``): :mod:`.replies`."""
    return replies.fault_named(reply) is not None


def fault_for_error(reply: str) -> str:
    """The contract fault code for an error reply (:data:`.replies.REPLY_TABLE`); an error text kartud does
    not know is treated as mechanical (``card_jam``): the printer stopped a move for a reason only a person can see."""
    return replies.fault_named(reply) or "card_jam"


def check_ok(command: str, reply: str) -> None:
    """Raise for anything but ``OK``: a :class:`PrinterFault` for a fault reply, else :class:`ProtocolError`."""
    if reply == OK:
        return
    if replies.is_not_known(reply):
        raise ProtocolError(f"the printer does not know the command {command} ({reply})")
    if is_error(reply):
        raise PrinterFault(fault_for_error(reply), f"the printer refused {command}: {reply}")
    raise ProtocolError(f"unexpected reply to {command}: {reply[:40]!r}")


def parse_volts(reply: str) -> float:
    """``Rse`` answers a voltage with a decimal comma: ``'4,98 Volts'`` -> 4.98."""
    match = re.fullmatch(r"\s*(-?\d+(?:[.,]\d+)?)\s*(?:V|Volts?)?\s*", reply, re.I)
    if not match:
        raise ProtocolError(f"unexpected sensor reply {reply[:40]!r}")
    return float(match.group(1).replace(",", "."))


def parse_count(reply: str, command: str) -> int:
    """A counter or quantity: digits only."""
    if not reply.isdigit():
        raise ProtocolError(f"unexpected reply to {command}: {reply[:40]!r} (a number was expected)")
    return int(reply)


def parse_card_position(reply: str) -> str | None:
    """``Rlr;p``: None (no card), ``print``, ``contactless``, ``smart`` or ``inside`` (E1: somewhere inside)."""
    if reply not in CARD_POSITION_REPLIES:
        raise ProtocolError(f"unexpected reply to Rlr;p: {reply[:40]!r}")
    return CARD_POSITION_REPLIES[reply]


@dataclass(frozen=True)
class StatusWords:
    """The four 32-bit status words (E3's ``evolis_status_t``), as ``config;information;warning;error`` in hex."""

    config: int = 0
    information: int = 0
    warning: int = 0
    error: int = 0

    @classmethod
    def parse(cls, reply: str) -> "StatusWords":
        parts = reply.split(";")
        if len(parts) != 4 or not all(re.fullmatch(r"[0-9A-Fa-f]{1,8}", p) for p in parts):
            raise ProtocolError(f"unexpected status words {reply[:60]!r}")
        return cls(*(int(p, 16) for p in parts))

    def format(self) -> str:
        return ";".join(f"{getattr(self, name):08X}" for name in STATUS_WORD_NAMES)

    def faults(self) -> set[str]:
        found = set()
        for name, flags in STATUS_WORD_FAULTS.items():
            word = getattr(self, name)
            found.update(code for mask, code in flags if word & mask)
        return found

    def card_position(self) -> str | None:
        return next((where for mask, where in STATUS_CARD_POSITIONS if self.information & mask), None)


# -- the printer's side: cutting a byte stream into commands ----------------------------------------

@dataclass
class Command:
    """One parsed command: its name, text parameters and, for a download, the binary payload."""

    name: str
    params: list[str] = field(default_factory=list)
    payload: bytes | None = None

    def __str__(self) -> str:  # never the payload: it may be a person's face
        return ";".join([self.name, *self.params]) + (f";<{len(self.payload)} bytes>" if self.payload else "")


class FrameParser:
    """Cuts the bytes a printer receives into :class:`Command` objects.

    NUL padding between commands is skipped, the ESC start character is optional after a CR (as the
    guide allows), and a download's payload is read by length (``payload_length(command)`` returns it
    once the text parameters are known), so CR bytes inside it are data. A frame left incomplete for
    ``stale_after`` seconds is dropped, so a host that died mid-download does not wedge the parser.
    """

    MAX_TEXT = 512

    def __init__(self, payload_length, stale_after: float = 5.0):
        self.payload_length = payload_length
        self.stale_after = stale_after
        self._text = bytearray()
        self._pending: Command | None = None   # a download waiting for its payload
        self._needed = 0
        self._payload = bytearray()
        self._last_byte_at: float | None = None
        self._discarding = False
        self.dropped_frames = 0

    @property
    def mid_frame(self) -> bool:
        return bool(self._text) or self._pending is not None or self._discarding

    def feed(self, data: bytes, now: float) -> list[Command | str]:
        """Parse ``data``; return complete commands, or a string describing a frame that was garbage."""
        if self.mid_frame and self._last_byte_at is not None and now - self._last_byte_at > self.stale_after:
            self._reset()
            self.dropped_frames += 1
        self._last_byte_at = now
        out: list[Command | str] = []
        i = 0
        while i < len(data):
            if self._pending is not None:
                take = min(self._needed - len(self._payload), len(data) - i)
                self._payload += data[i:i + take]
                i += take
                if len(self._payload) == self._needed:
                    self._pending.payload = bytes(self._payload)
                    out.append(self._pending)
                    self._pending, self._payload = None, bytearray()
                    if i < len(data) and data[i] == CR:   # the frame's closing CR
                        i += 1
                continue
            byte = data[i]
            i += 1
            if self._discarding:                           # after an overlong frame: up to its CR
                self._discarding = byte != CR
                continue
            if not self._text and byte in (NUL, CR, LF, ESC):
                continue                                   # padding, a stray end, or the optional start
            if byte == CR:
                out.append(self._finish_text())
                continue
            self._text.append(byte)
            if byte == SEP:
                refused = self._start_download()
                if refused:
                    out.append(refused)
                    continue
            if len(self._text) > self.MAX_TEXT:
                self._reset()
                self._discarding = True
                out.append("a command longer than 512 bytes without CR")
        return out

    def _start_download(self) -> str | None:
        """At a ``;``: if the text so far is a download's name and parameters, wait for its payload.
        Returns a description when the download cannot be sized (its payload then reads as garbage)."""
        parts = bytes(self._text[:-1]).split(b";")
        name = parts[0].decode("ascii", "replace")
        if BINARY_AFTER.get(name) != len(parts) - 1:
            return None
        command = Command(name, [p.decode("ascii", "replace") for p in parts[1:]])
        self._text = bytearray()
        length = self.payload_length(command)
        if length is None:
            return f"a download that cannot be sized: {command}"
        self._pending, self._needed = command, length
        return None

    def _finish_text(self) -> Command | str:
        raw = bytes(self._text)
        self._text = bytearray()
        try:
            name, *params = raw.decode("ascii").split(";")
        except UnicodeDecodeError:
            return f"a frame of {len(raw)} bytes that is not text"
        return Command(name, params)

    def _reset(self) -> None:
        self._text, self._pending, self._payload = bytearray(), None, bytearray()
        self._discarding = False
