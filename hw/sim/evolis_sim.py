"""A simulated Evolis printer: a state machine that takes protocol bytes and answers as the printer would."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timezone

from ..printer import protocol as p
from ..printer.knowledge import STATUS_COMMAND
from ..printer.panels import PanelSettings, compose_face
from .card import SimChipCard
from .feeder import Feeder
from .firmware import DEFAULT as DEFAULT_FIRMWARE, PROFILES as FIRMWARE_PROFILES
from .head import HeadSettings, PrintHead
from .output import CardOutput
from .sim_faults import FaultsMixin, Refused
from .sim_reads import ReadsMixin

log = logging.getLogger("kartud.sim.printer")

FRONT_PANELS = ("y", "m", "c", "k", "o")
# Shares of seconds_per_card: feeding, printing (spread over the front's five panels) and ejecting.
FEED_SHARE, PRINT_SHARE, EJECT_SHARE = 0.15, 0.7, 0.15
# The pace of a real printer, at which the time constants not given in cards (the head's) are stated.
REAL_SECONDS_PER_CARD = 15.0
# Parameters the simulated printer accepts and remembers without acting on them.
ACCEPTED_PARAMETERS = {"Pc", "Pl", "Ps", "Pmi", "Pcim", "Pcem", "Pcrm", "Pneab", "Psmgr", "Pbc", "Poc", "Pos", "Pps",
                       "Pwr", "Psc"}


@dataclass(frozen=True)
class SimSettings:
    """The simulated printer's make-up; times are of the injected clock.

    ``seconds_per_card`` is the simulator's one time scale: a card's moves and a cleaning are shares
    of it, and the head's heating and cooling (given at a real printer's 15 s a card) scale with it by
    :attr:`time_scale`. At 0.2 s a card the simulator is the same printer 75 times as fast: the same
    cards overheat its head, and the pause lasts 2.8 s instead of 3.5 minutes.
    """

    seconds_per_card: float = 15.0
    feeder_cards: int = 100
    hopper_capacity: int = 100
    reject_box_capacity: int = 20
    ribbon_prints: int = 300
    ribbon_fitted: str = "ymcko"          # the ribbon in the printer (what Rr answers)
    ribbon_setting: str = "ymcko"         # the ribbon type (Pr) the printer was left set to
    cleaning_every: int = 1000
    chip_cards: bool = True
    panels: PanelSettings = field(default_factory=PanelSettings)
    head: HeadSettings = field(default_factory=HeadSettings)
    status_command: str = STATUS_COMMAND  # empty: the printer does not know a status-words read
    model: str = "Evolis Primacy (kartud simulator)"
    serial: str = "SIM0001"
    firmware: str = "kartud-sim 1.0"
    firmware_profile: str = DEFAULT_FIRMWARE  # whose replies it gives: hw/sim/firmware.py, docs/printer.md

    def __post_init__(self):
        if self.firmware_profile not in FIRMWARE_PROFILES:
            raise ValueError(f"unknown firmware profile {self.firmware_profile!r}; known: "
                             f"{', '.join(FIRMWARE_PROFILES)}")

    @property
    def time_scale(self) -> float:
        """How much faster than a real printer this one runs, as a factor on its time constants (1 at 15 s)."""
        return self.seconds_per_card / REAL_SECONDS_PER_CARD


class EvolisSim(FaultsMixin, ReadsMixin):
    """The printer's state and its answers: feed it the bytes a host sends, get back the reply bytes.

    ``feed`` blocks for as long as the printer would work on the commands (on the injected clock's
    ``sleep``). Faults come from the state (an empty feeder, a full reject box, a hot head, ...) and
    are injected with :meth:`inject` (now) or :meth:`arm` (when a card reaches a step), and put right
    with :meth:`clear`, as the person at the printer would. Every card that leaves is recorded by
    ``output``; ``station_listeners`` are called with the chip card arriving at the contactless
    station, and with None when it leaves (the hook for a vpcd link).

    >>> from kartud.hw.printer import protocol
    >>> class Clock:
    ...     def sleep(self, s): pass
    ...     def now(self): import datetime; return datetime.datetime.now(datetime.timezone.utc)
    >>> sim = EvolisSim(Clock(), None, SimSettings(feeder_cards=0))
    >>> sim.feed(protocol.encode("Sic"))
    b'ERR FEEDER EMPTY\\r'
    """

    def __init__(self, clock, output: CardOutput | None, settings: SimSettings | None = None):
        self.clock = clock
        self.output = output
        self.settings = settings or SimSettings()
        self.profile = FIRMWARE_PROFILES[self.settings.firmware_profile]
        self.station_listeners: list = []
        self.connected = True                # False: the cable is out (seen by an in-memory link)
        self.reply_overrides: deque[bytes | None] = deque()  # tests: raw bytes (or None: silence) for next replies
        self.lose_reply_to: set[str] = set()     # tests: the next command of each name is done, its reply lost
        self._state = threading.RLock()
        self._feeding = threading.Lock()
        self._parser = p.FrameParser(self._payload_length)
        self.head = PrintHead(self.settings.head.scaled(self.settings.time_scale), clock)
        self.blanks = Feeder(self.settings.feeder_cards, chip=self.settings.chip_cards)
        self.hopper = 0
        self.reject_box = 0
        self.taken_by_hand = 0               # jammed cards a person pulled out (clear("card_jam")): no record
        self.cover_open = False
        self.ribbon_loaded = True
        self.ribbon_remaining = self.settings.ribbon_prints
        self.cards_since_cleaning = 0
        self.counters = {"panels_printed": 0, "cards_inserted": 0, "cleanings": 0}
        self.position: str | None = None     # "contactless" or "print" while a card is inside
        self.jammed = False
        self.card: SimChipCard | None = None
        self.parameters: dict[str, list[str]] = {"Pem": ["0"], "Pr": [self.settings.ribbon_setting]}
        self.card_ribbon = self.settings.ribbon_setting   # the ribbon type the card inside was fed under
        self.armed: dict[str, str] = {}
        self.last_front: dict[str, tuple[int, bytes]] = {}
        self._new_card_state()
        self._handlers = {"Ss": self._start_sequence, "Se": self._end_sequence, "Sr": self._side, "Sv": self._side,
                          "Si": self._insert, "Sic": self._insert, "Ser": self._reject, "Scp": self._clean,
                          "Srs": self._reset, "Db": self._download, "Wcb": self._fill, "Pr": self._ribbon_type,
                          "Pem": self._error_mode, **{name: self._parameter for name in ACCEPTED_PARAMETERS}}
        self._reads = {"Rfv": lambda c: self.settings.firmware, "Rsn": lambda c: self.settings.serial,
                       "Rtp": lambda c: self.settings.model, "Rkn": lambda c: "KIT-SIM", "Rck": lambda c: "0000",
                       "Rem": lambda c: f"{self.parameters['Pem'][0]},{self.parameters['Pem'][0]}",
                       "Rr": self._read_ribbon_type, "Rrt": self._read_ribbon, "Rco": self._read_counter,
                       "Rlr": self._read_last_reply, "Rse": self._read_sensor}
        if self.settings.status_command and self.profile.status_words:
            self._reads[self.settings.status_command] = lambda c: self.status_words().format()

    @property
    def feeder(self) -> int:
        """How many blanks the feeder holds (setting it refills or empties it: :class:`~.feeder.Feeder`)."""
        return self.blanks.count

    @feeder.setter
    def feeder(self, count: int) -> None:
        self.blanks.count = count

    # -- the wire -------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the host; return the replies to every command they completed (CR-terminated)."""
        with self._feeding:
            answers = bytearray()
            for item in self._parser.feed(data, time.monotonic()):
                if isinstance(item, str):
                    log.info("simulated printer: %s", item)
                    answers += self._wire(p.UNKNOWN_COMMAND, "")
                else:
                    answers += self._wire(self._answer(item), item.name)
            return bytes(answers)

    def _wire(self, reply: str, name: str) -> bytes:
        with self._state:
            if self.reply_overrides:
                return self.reply_overrides.popleft() or b""
            if name in self.lose_reply_to:          # done, and its answer lost
                self.lose_reply_to.discard(name)
                return b""
        return reply.encode("ascii") + b"\r"

    def _answer(self, command: p.Command) -> str:
        return self.profile.reply(self._answer_in_kartuds_words(command))

    def _answer_in_kartuds_words(self, command: p.Command) -> str:
        if command.name in self.profile.unknown:
            return p.UNKNOWN_COMMAND
        try:
            if command.name in self._reads:
                with self._state:
                    return self._reads[command.name](command)
            handler = self._handlers.get(command.name)
            return p.UNKNOWN_COMMAND if handler is None else handler(command)
        except Refused as refused:
            log.info("simulated printer refused %s: %s", command, refused.reply)
            return refused.reply
        except (IndexError, ValueError):
            return p.BAD_PARAMETERS

    def _payload_length(self, command: p.Command) -> int | None:
        bits = p.BITS_FOR_LEVELS.get(int(command.params[1])) if command.params[1].isdigit() else None
        if bits is None:
            return None
        panels = self.settings.panels
        return panels.width * panels.height * bits // 8

    # -- cards moving ---------------------------------------------------------------------------------

    def _work(self, share: float) -> None:
        """The printer busy for ``share`` of a card's time (the state lock is not held meanwhile)."""
        self.clock.sleep(self.settings.seconds_per_card * share)

    def _new_card_state(self) -> None:
        self.sequence_open = False
        self.side = "front"
        self.received: dict[str, dict[str, tuple[int, bytes]]] = {"front": {}, "back": {}}
        self.front_order: list[str] = []
        self.unprinted: str | None = None        # the last panel downloaded, printed by the next Db or Se
        self.ribbon_taken = False

    def _insert(self, command: p.Command) -> str:
        with self._state:
            if self.armed.get("feed") == "card_jam" and not self.jammed and self.position is None:
                self.armed.pop("feed")
                self._card_arrives("print", self.blanks.take())
                self.jammed = True               # stuck half-way between the feeder and the station
            self._trigger("feed")
            self._check_can_feed()
            chip = self.blanks.take()
        self._work(FEED_SHARE)
        with self._state:
            self._card_arrives("contactless" if command.name == "Sic" else "print", chip)
        return p.OK

    def _card_arrives(self, where: str, chip: bool) -> None:
        self.card = SimChipCard() if chip else None
        self.position = where
        self.counters["cards_inserted"] += 1
        self.cards_since_cleaning += 1
        sequence_open = self.sequence_open       # Ss, then Si/Sic: the card joins the open sequence
        self._new_card_state()
        self.sequence_open = sequence_open
        # The printer takes the ribbon type in force when it feeds the card (the sources send Pr before Ss
        # and the feed); a later Pr is for the next card.
        self.card_ribbon = self.parameters["Pr"][0].lower()
        if where == "contactless":
            self._trigger("encode")              # chip faults armed by a test, before anyone reaches the chip
            self._tell_station(self.card)

    def _to_print_position(self) -> None:
        if self.position == "contactless":
            self._tell_station(None)
        self.position = "print"

    def _tell_station(self, card: SimChipCard | None) -> None:
        for listener in list(self.station_listeners):
            listener(card)

    def _card_leaves(self) -> SimChipCard | None:
        card = self.card
        if self.position == "contactless":
            self._tell_station(None)
        self.card, self.position = None, None
        self._new_card_state()
        return card

    def card_at_station(self) -> SimChipCard | None:
        """The chip card parked at the contactless station, if any (the encoder's view)."""
        with self._state:
            return self.card if self.position == "contactless" and not self.jammed else None

    def _leave(self, destination: str) -> None:
        """Record the card inside as gone to ``destination`` (before the move's reply: the record is fsynced)."""
        front = self.received["front"]
        self.last_front = dict(front)            # what the last card got, for tests to look at
        panels = list(self.front_order)
        image = None
        if destination == "output" and any(name in front for name in ("y", "m", "c", "k")):
            image = compose_face(front, self.settings.panels)
        card = self._card_leaves()
        if self.output is not None:
            at = self.clock.now().astimezone(timezone.utc).isoformat(timespec="seconds")
            self.output.record(at, destination, card, image, panels)

    def _end_sequence(self, command: p.Command) -> str:
        self._print_unprinted()
        with self._state:
            self._trigger("eject")
            self._check_mechanism()
            if self.position is None:
                raise Refused("ERR NO CARD")
            if self.hopper >= self.settings.hopper_capacity:
                raise Refused(p.FAULT_REPLIES["hopper_full"])
        self._work(EJECT_SHARE)
        with self._state:
            if self.ribbon_taken:
                self.head.card_printed()
            self._leave("output")
            self.hopper += 1
        return p.OK

    def _reject(self, command: p.Command) -> str:
        with self._state:
            self._trigger("reject")
            self._check_mechanism()
            if self.position is None:
                raise Refused("ERR NO CARD")
            if self.reject_box >= self.settings.reject_box_capacity:
                raise Refused(p.FAULT_REPLIES["reject_box_full"])
        self._work(EJECT_SHARE)
        with self._state:
            self._leave("reject")
            self.reject_box += 1
        return p.OK

    def _clean(self, command: p.Command) -> str:
        with self._state:
            self._check_mechanism()
            if self.position is not None:
                raise Refused("ERR CARD INSIDE")
        self._work(2.0)                          # a cleaning card makes several passes
        with self._state:
            self.cards_since_cleaning = 0
            self.counters["cleanings"] += 1
        return p.OK

    def _reset(self, command: p.Command) -> str:
        with self._state:
            self._new_card_state()
        return p.OK

    # -- printing -------------------------------------------------------------------------------------

    def _start_sequence(self, command: p.Command) -> str:
        with self._state:
            self._check_mechanism()
            self.received = {"front": {}, "back": {}}
            self.front_order, self.unprinted, self.sequence_open, self.side = [], None, True, "front"
        return p.OK

    def _side(self, command: p.Command) -> str:
        with self._state:
            self.side = "front" if command.name == "Sr" else "back"
        return p.OK

    def _download(self, command: p.Command) -> str:
        panel, levels = command.params[0], int(command.params[1])
        if panel not in FRONT_PANELS or levels not in p.BITS_FOR_LEVELS:
            raise Refused(p.BAD_PARAMETERS)
        return self._store_panel(panel, p.BITS_FOR_LEVELS[levels], command.payload or b"")

    def _fill(self, command: p.Command) -> str:
        panel, value = command.params[0], int(command.params[1])
        if panel not in FRONT_PANELS or not 0 <= value <= 255:
            raise Refused(p.BAD_PARAMETERS)
        with self._state:
            if self.sequence_open and self.parameters["Pem"][0] == "0":
                raise Refused(p.BAD_PARAMETERS)  # Rev E: no bitmap writes between Ss and Se under Pem;0
        size = self.settings.panels.width * self.settings.panels.height
        if panel in ("k", "o"):
            return self._store_panel(panel, 1, (b"\xff" if value else b"\x00") * (size // 8))
        return self._store_panel(panel, 8, bytes([value]) * size)

    def _store_panel(self, panel: str, bits: int, data: bytes) -> str:
        with self._state:
            if self.position is None:           # a job without Si: the printer feeds a card itself
                self._check_can_feed()
                self._card_arrives("print", self.blanks.take())
            self._check_mechanism()
            if self.side == "front" and panel not in self.card_ribbon:
                raise Refused("ERR RIBBON TYPE")  # the card was fed under a ribbon type without this panel
            self._to_print_position()
        self._print_unprinted()
        with self._state:
            self.received[self.side][panel] = (bits, data)
            if self.side == "front" and panel not in self.front_order:
                self.front_order.append(panel)
            self.unprinted = panel
        return p.OK

    def _print_unprinted(self) -> None:
        """Print the panel downloaded last (the guide: each download prints the one before it)."""
        with self._state:
            if self.unprinted is None:
                return
            if not self.ribbon_taken:
                self._trigger("print")
            self._check_mechanism()
            self._check_ribbon()
            if self.head.cooling():
                raise Refused(p.FAULT_REPLIES["head_cooling"])
            if not self.ribbon_taken:            # one ribbon set a card, taken at its first panel
                self.ribbon_remaining -= 1
                self.ribbon_taken = True
            self.unprinted = None
        self._work(PRINT_SHARE / len(FRONT_PANELS))
        with self._state:
            self.counters["panels_printed"] += 1

    def _ribbon_type(self, command: p.Command) -> str:
        if not command.params or not command.params[0].isalpha():
            raise Refused(p.BAD_PARAMETERS)
        return self._parameter(command)

    def _parameter(self, command: p.Command) -> str:
        with self._state:
            self.parameters[command.name] = list(command.params)
        return p.OK

    def _error_mode(self, command: p.Command) -> str:
        """``Pem``: the values this firmware takes (the 2003 guide's printers do not take 2)."""
        if not command.params or command.params[0] not in self.profile.error_modes:
            raise Refused(p.BAD_PARAMETERS)
        return self._parameter(command)
