"""The Evolis printer driver: the Printer interface spoken in escape commands over any Transport."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from . import Printer, PrinterFault, PrinterStatus
from . import protocol as p
from . import replies
from .error_mode import ErrorModeMixin
from .knowledge import CARD_ERROR_MODE, SETUP_COMMANDS, STATUS_COMMAND
from .panels import PanelSettings, render_back_black, render_face
from .transport import Transport, TransportGone

log = logging.getLogger("kartud.printer")

# After a command got no reply at all, the line is left silent this long before the next: a printer
# still holding half a panel download from a host that died takes every byte sent meanwhile as that panel's
# data, and answers nothing, until it drops the frame after some seconds of silence (the simulator: 5 s,
# FrameParser.stale_after; a real Evolis's figure is not documented). Probing every poll kept it busy forever.
QUIET_BEFORE_RETRY_S = 6.0
SENSOR_THRESHOLD_V = 2.5     # Rse: about 5 V when the feeder holds cards / the cover is closed, 0 V otherwise
# The status reads not every printer knows (the 2003 guide's Rse knows only c, m, o, p, r): what each one is.
# Cleaning is read as the VB sample reads it (Rlr;c, Rco;r), else as the 2003 guide does (Rlr;r).
OPTIONAL_READS = {"Rse;f": "feeder sensor", "Rse;o": "cover sensor", "Rrt;count": "ribbon count read",
                  "Rlr;c": "cleaning read (Rlr;c)", "Rlr;r": "cleaning read (Rlr;r)",
                  "Rco;r": "cards-until-cleaning counter", "Rr": "ribbon type read", "Rlr;h": "output hopper read"}
CLEANING_READS = (("Rlr", "c"), ("Rlr", "r"))


@dataclass(frozen=True)
class EvolisSettings:
    """What the driver needs to know beyond the transport; every default is documented in docs/printer.md."""

    panels: PanelSettings = field(default_factory=PanelSettings)
    ribbon: str = "ymcko"
    reply_timeout_s: float = 5.0
    move_timeout_s: float = 60.0
    setup_commands: tuple[str, ...] = SETUP_COMMANDS
    status_command: str = STATUS_COMMAND
    card_error_mode: int | None = CARD_ERROR_MODE    # Pem for each card, the printer's own mode put back after
    quiet_before_retry_s: float = QUIET_BEFORE_RETRY_S  # silence on the line after a command met no reply at all


class EvolisPrinter(ErrorModeMixin, Printer):
    """An Evolis card printer (Primacy / Zenius dialect) on ``transport``.

    Every exchange is one command and one reply, each bounded by a timeout, under a lock so that a
    status poll never interleaves with a card's commands. A vanished device or a reply that cannot
    be trusted drops the link; the next call (normally the daemon's status poll) reconnects.

    >>> from kartud.hw.printer.transport import MemoryTransport
    >>> class Mute:
    ...     def feed(self, data): return b""
    >>> printer = EvolisPrinter(MemoryTransport(Mute()), EvolisSettings(reply_timeout_s=0.01))
    >>> printer.status().faults
    ('printer_disconnected',)
    """

    def __init__(self, transport: Transport, settings: EvolisSettings | None = None):
        self.transport = transport
        self.settings = settings or EvolisSettings()
        # The quiet after a lost reply, then the reconnect's reads.
        self.answers_again_within_s = self.settings.quiet_before_retry_s + 2 * self.settings.reply_timeout_s
        self.model = ""
        self.serial = ""
        self.firmware = ""
        self._lock = threading.RLock()
        self._ready = False
        self._lost_reason: str | None = None
        self._quiet_until = 0.0                 # monotonic: no byte goes to the printer before this (see above)
        self._unsupported: set[str] = set()     # reads this printer answered ERROR CDE or ERR PARAMETRES
        self._counters: dict[str, int] = {}
        self._until_cleaning: int | None = None     # Rco;r: cards until the printer asks for cleaning
        self.ribbon_type = ""
        self._error_mode: str | None = None     # the printer's own Pem (Rem), None when not known
        self._refused_mode = False              # the printer refused card_error_mode once: not asked again
        self._card_mode_set = False             # kartud's card_error_mode is in force until the card leaves
        self._sequence_open = False             # Ss sent for the card inside, Se/Ser not yet

    # -- the link ---------------------------------------------------------------------------------

    def _connect(self) -> None:
        """Open the transport, learn who the printer is and send the setup commands."""
        if self._ready and self.transport.is_open:
            return
        self._ready = False
        self.transport.close()
        if time.monotonic() < self._quiet_until:
            raise self._disconnected(self._lost_reason or "waiting for the line to go quiet")
        try:
            self.transport.open()
        except TransportGone as exc:
            raise self._disconnected(str(exc)) from None
        self.model = self._optional_read("Rtp") or ""
        self.serial = self._optional_read("Rsn") or ""
        self.firmware = self._optional_read("Rfv") or ""
        self._sequence_open = False
        self._learn_error_mode()
        for text in self.settings.setup_commands:
            reply = self._talk(p.raw_command(text), text, self.settings.reply_timeout_s)
            if reply == p.UNKNOWN_COMMAND:
                log.warning("the printer does not know the setup command %s; going on without it", text)
            elif reply != p.OK:
                log.warning("the printer answered %r to the setup command %s", reply[:40], text)
        self._ready = True
        self._learn_reads()
        self._read_counters()
        self.ribbon_type = self._ribbon_type()
        log.info("printer connected over %s: %s, serial %s, firmware %s, ribbon %s", self.transport.description,
                 self.model or "?", self.serial or "?", self.firmware or "?", self.ribbon_type or "?")
        self._lost_reason = None

    def _disconnected(self, reason: str) -> PrinterFault:
        """Drop the link and say so once; the fault to raise."""
        self._ready = False
        self.transport.close()
        if self._lost_reason is None:
            log.warning("the printer is not reachable over %s: %s", self.transport.description, reason)
        self._lost_reason = reason
        return PrinterFault("printer_disconnected", f"the printer is not reachable: {reason}")

    def _talk(self, frame: bytes, what: str, timeout_s: float) -> str:
        """Send one command, return its reply's text. Never waits longer than the timeouts."""
        try:
            self.transport.discard_input()
            self.transport.write(frame, self.settings.reply_timeout_s)
            return p.decode_reply(self._read_reply(what, timeout_s), what)
        except TransportGone as exc:
            raise self._disconnected(str(exc)) from None
        except p.ProtocolError as exc:
            if isinstance(exc, p.NoReply):
                self._quiet_until = time.monotonic() + self.settings.quiet_before_retry_s
            self._disconnected(str(exc))
            raise

    def _read_reply(self, what: str, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        received = bytearray()
        while True:
            text = bytes(received).lstrip(p.REPLY_ENDS)
            ends = [i for i in (text.find(bytes([b])) for b in p.REPLY_ENDS) if i >= 0]
            if text and ends:
                return text[:min(ends)]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if text:
                    raise p.ProtocolError(f"the reply to {what} was cut short: {len(text)} bytes and no end "
                                          f"within {timeout_s:g} s")
                raise p.NoReply(f"no reply to {what} within {timeout_s:g} s")
            received += self.transport.read(remaining)

    def _command(self, frame: bytes, what: str, timeout_s: float | None = None) -> None:
        """Connect if needed, send a command that must answer OK."""
        self._connect()
        p.check_ok(what, self._talk(frame, what, timeout_s or self.settings.reply_timeout_s))

    def _read(self, name: str, *params: str) -> str:
        what = ";".join((name, *params))
        return self._talk(p.read(name, *params), what, self.settings.reply_timeout_s)

    def _optional_read(self, name: str, *params: str) -> str | None:
        """A read some printers may not know: None once the printer answered ``ERROR CDE`` or
        ``ERR PARAMETRES`` to it (learnt, and logged, once)."""
        what = ";".join((name, *params))
        if what in self._unsupported:
            return None
        reply = self._read(name, *params)
        if replies.is_not_known(reply):
            self._unsupported.add(what)
            log.info("this printer has no %s (%s answered %s); that part of its status is not watched",
                     OPTIONAL_READS.get(what, f"{what} read"), what, reply)
            return None
        return reply

    def _learn_reads(self) -> None:
        """Ask each optional status read once at connect, so a printer without a sensor or a read is known
        as such from the start (and never reported as disconnected for it)."""
        for what in OPTIONAL_READS:
            if what not in self._unsupported:
                self._optional_read(*what.split(";"))

    # -- status -----------------------------------------------------------------------------------

    def status(self) -> PrinterStatus:
        """Connect if needed and read card position, sensors, ribbon, cleaning and hopper state.
        Never raises: an unreachable printer is ``connected=False`` with ``printer_disconnected``."""
        with self._lock:
            try:
                self._connect()
                return self._read_status()
            except PrinterFault as fault:          # every read failure is a ProtocolError: the link is suspect
                if self._ready:
                    self._disconnected(str(fault))
                return PrinterStatus(connected=False, faults=("printer_disconnected",), model=self.model,
                                     serial=self.serial, firmware=self.firmware, ribbon_type=self.ribbon_type,
                                     counters=dict(self._counters), extra={"reason": str(fault)})

    def _read_status(self) -> PrinterStatus:
        faults: set[str] = set()
        position = p.parse_card_position(self._read("Rlr", "p"))
        for sensor, fault in (("f", "feeder_empty"), ("o", "cover_open")):
            reply = self._optional_read("Rse", sensor)
            if reply is not None and p.parse_volts(reply) < SENSOR_THRESHOLD_V:
                faults.add(fault)
        remaining = None
        ribbon = self._optional_read("Rrt", "count")
        if ribbon is not None and p.is_error(ribbon):
            faults.add(p.fault_for_error(ribbon))
        elif ribbon is not None:
            remaining = p.parse_count(ribbon, "Rrt;count")
            if remaining == 0:
                faults.add("ribbon_ended")
        if self._cleaning_due():
            faults.add("cleaning_required")
        self.ribbon_type = self._ribbon_type()
        if self._optional_read("Rlr", "h") == "CARD":
            faults.add("hopper_full")
        words = self._status_words()
        if words is not None:
            faults |= words.faults()
            position = position or words.card_position()
        return PrinterStatus(connected=True, faults=tuple(sorted(faults)), card_inside=position is not None,
                             model=self.model, serial=self.serial, ribbon_remaining=remaining,
                             cards_until_cleaning=self._until_cleaning,
                             counters=dict(self._counters), firmware=self.firmware, ribbon_type=self.ribbon_type,
                             extra={"card_position": position})

    def _cleaning_due(self) -> bool | None:
        """Whether the printer asks to be cleaned: ``Rlr;c`` (the VB sample), else ``Rlr;r`` (the 2003 guide);
        None when it knows neither read."""
        for name, param in CLEANING_READS:
            reply = self._optional_read(name, param)
            if reply is not None:
                return p.is_error(reply)
        return None

    def _ribbon_type(self) -> str:
        """``Rr``: the ribbon fitted (``YMCKO``), '' when the printer does not say (or has none)."""
        reply = self._optional_read("Rr")
        return "" if reply is None or p.is_error(reply) else reply.strip()

    def _status_words(self) -> p.StatusWords | None:
        command = self.settings.status_command
        if not command:
            return None
        reply = self._optional_read(command)
        if reply is None:
            return None
        if p.is_error(reply):       # an error reply instead of the words: the fault it names is seen elsewhere
            return None
        try:
            return p.StatusWords.parse(reply)
        except p.ProtocolError:
            log.info("the printer's answer to %s is not status words; reject box and head temperature are then "
                     "known only from its error replies", command)
            self._unsupported.add(command)
            return None

    def _read_counters(self) -> None:
        """Panels printed, cards inserted, cleanings done and cards until the next cleaning (``Rco``, the last
        as the VB sample reads it), kept for the status."""
        for key, name in (("p", "panels_printed"), ("c", "cards_inserted"), ("n", "cleanings")):
            reply = self._optional_read("Rco", key)
            if reply is not None and reply.isdigit():
                self._counters[name] = int(reply)
        reply = self._optional_read("Rco", "r")
        self._until_cleaning = int(reply) if reply is not None and reply.isdigit() else None

    def _card_left(self) -> None:
        """A card left the printer: its sequence is over, the counters moved, the printer's own error mode
        goes back."""
        self._sequence_open = False
        self._read_counters()
        self._restore_error_mode()

    def _card_position(self) -> str | None:
        return p.parse_card_position(self._read("Rlr", "p"))

    # -- a card's way -----------------------------------------------------------------------------

    def insert_card(self, contactless: bool) -> None:
        """Open the card's sequence as the guide and the VB sample do, the ribbon set before it (``Pem;2``,
        ``Pr;<ribbon>``, ``Ss``), then ``Sic`` (to the contactless station) or ``Si`` (to the print position),
        and check the card arrived."""
        frame, what, wanted = ((p.insert_contactless(), "Sic", "contactless") if contactless
                               else (p.insert_card(), "Si", "print"))
        with self._lock:
            self._connect()
            self._enter_card_mode()
            self._command(p.set_ribbon(self.settings.ribbon), "Pr")
            self._command(p.start_sequence(), "Ss")
            self._sequence_open = True
            try:
                self._command(frame, what, self.settings.move_timeout_s)
            except PrinterFault:
                self._feed_refused()
                raise
            where = self._card_position()
            if where != wanted and where != "inside":     # the 2003 guide's ERR CARD: inside, not where
                raise PrinterFault("card_jam", f"after {what} the card is at {where or 'no known place'}, "
                                               f"not the {wanted} position")

    def print_card(self, front_png: bytes, back_png: bytes | None) -> None:
        """Download the front's panels into the sequence :meth:`insert_card` opened (``Sr``, ``Db`` y m c k o:
        the overlay is always a download, never ``Wcb;o;255``, which the 2003 guide refuses between ``Ss`` and
        ``Se`` under ``Pem;0``), and the back in black (``Sv``, ``Db;k``) if given. The sequence stays open:
        :meth:`eject` ends it with ``Se``, which prints the last panel and ejects; :meth:`reject` sends the
        card to the reject box instead."""
        settings = self.settings.panels
        front = render_face(front_png, settings)       # before taking the lock: the poll need not wait
        back = render_back_black(back_png, settings) if back_png else None
        with self._lock:
            self._connect()
            if not self._sequence_open:     # the link was reopened since the feed: the card gets a sequence
                self._command(p.start_sequence(), "Ss")
                self._sequence_open = True
            self._command(p.front_side(), "Sr")
            for panel in ("y", "m", "c"):
                self._download(panel, settings.colour_bits, front[panel])
            self._download("k", 1, front["k"])
            self._download("o", 1, front["o"])
            if back is not None:
                self._command(p.back_side(), "Sv")
                self._download("k", 1, back)

    def _download(self, panel: str, bits: int, data: bytes) -> None:
        # Downloading a panel may make the printer print the previous one first: the long timeout.
        self._command(p.download_panel(panel, bits, data), f"Db;{panel}", self.settings.move_timeout_s)

    def eject(self) -> None:
        """``Se``: finish printing and eject to the output hopper."""
        self._move_out(p.end_sequence(), "Se")

    def reject(self) -> None:
        """``Ser``: the card inside goes to the reject box."""
        self._move_out(p.reject_card(), "Ser")

    def _move_out(self, frame: bytes, what: str) -> None:
        with self._lock:
            self._command(frame, what, self.settings.move_timeout_s)
            where = self._card_position()
            if where is not None:
                raise PrinterFault("card_jam", f"after {what} a card is still inside ({where})")
            self._card_left()

    def clean(self) -> bool | None:
        """``Scp``: the cleaning cycle; then ask the printer whether it still wants cleaning (``Rlr;c`` or
        ``Rlr;r``, and ``Rco;r``). True: it says cleaning is done; False: it still asks for it; None: it
        cannot say."""
        with self._lock:
            self._command(p.clean_printer(), "Scp", self.settings.move_timeout_s)
            due = self._cleaning_due()
            self._read_counters()
            if due is None and self._until_cleaning is not None:
                due = self._until_cleaning == 0
            return None if due is None else not due

    def close(self) -> None:
        with self._lock:
            if self._ready and self.transport.is_open:
                try:
                    self._restore_error_mode()      # the printer is left in its own mode
                except PrinterFault:
                    pass
            self._ready = False
            self.transport.close()
