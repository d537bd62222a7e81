"""An in-process simulated card printer: a feeder of chip blanks, a contactless station, and a record of every card that leaves."""

from __future__ import annotations

import io
import json
import os
import threading
from datetime import timezone

from ..encoder import CardChannel, EncodeError, EncoderStatus
from ..printer import Printer, PrinterFault, PrinterStatus
from .card import SimChipCard

PANELS = ["y", "m", "c", "k", "o"]  # a YMCKO ribbon: colour, black, overlay
# Shares of seconds_per_card each move takes.
FEED_SHARE, PRINT_SHARE, EJECT_SHARE = 0.15, 0.7, 0.15


class CardOutput:
    """The simulator's record of what physically left the printer: ``cards.jsonl`` and front images.

    Each line is written and fsynced before the eject completes, so a crash test can trust it.
    """

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        os.makedirs(output_dir, exist_ok=True)
        self.path = os.path.join(output_dir, "cards.jsonl")
        self.seq = self._last_seq()

    def _last_seq(self) -> int:
        try:
            with open(self.path, "rb") as handle:
                return sum(1 for line in handle if line.strip())
        except FileNotFoundError:
            return 0

    def record(self, at: str, destination: str, card: SimChipCard | None, front_png: bytes | None,
               panels: list[str]) -> dict:
        """Append one card's line (fsynced) and save its front image."""
        self.seq += 1
        line = {"seq": self.seq, "at": at, "destination": destination,
                "chip_uid": card.uid_hex if card else None,
                "chip_files_sha256": card.files_sha256() if card else None,
                "panels": panels}
        if front_png is not None:
            self._save_front(front_png)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return line

    def _save_front(self, front_png: bytes) -> None:
        from PIL import Image  # only needed when a card is printed

        with Image.open(io.BytesIO(front_png)) as image:
            image = image.convert("RGB")
            if image.height > image.width:  # the card's landscape orientation
                image = image.rotate(90, expand=True)
            target = os.path.join(self.output_dir, f"{self.seq}-front.png")
            image.save(target + ".part", format="PNG")
        os.replace(target + ".part", target)


class SimPrinter(Printer):
    """A card printer in the daemon's process, taking ``seconds_per_card`` of clock time a card.

    It behaves like the device: the feeder empties, a card parked at the contactless station holds a
    :class:`SimChipCard` that the encoder talks to, and each card that leaves is recorded by
    :class:`CardOutput`. Faults can be injected with :meth:`inject_fault`.
    """

    model = "kartud simulated printer"

    def __init__(self, clock, output_dir: str, seconds_per_card: float = 15.0, feeder_cards: int = 100,
                 chip_cards: bool = True, serial: str = "SIM0001"):
        self.clock = clock
        self.output = CardOutput(output_dir)
        self.seconds_per_card = seconds_per_card
        self.feeder_cards = feeder_cards
        self.chip_cards = chip_cards
        self.serial = serial
        self.card: SimChipCard | None = None
        self.card_position: str | None = None   # "contactless" or "print"
        self.front_png: bytes | None = None
        self.panels: list[str] = []
        self.faults: set[str] = set()
        self._lock = threading.RLock()

    def status(self) -> PrinterStatus:
        with self._lock:
            faults = set(self.faults)
            if self.feeder_cards <= 0:
                faults.add("feeder_empty")
            return PrinterStatus(connected="printer_disconnected" not in faults, faults=tuple(sorted(faults)),
                                 card_inside=self.card_position is not None, model=self.model, serial=self.serial,
                                 extra={"feeder_cards": self.feeder_cards})

    def inject_fault(self, code: str, active: bool = True) -> None:
        """Raise or clear a fault, as opening the cover or jamming a card would."""
        with self._lock:
            (self.faults.add if active else self.faults.discard)(code)

    def add_cards(self, count: int) -> None:
        """Load blanks into the feeder."""
        with self._lock:
            self.feeder_cards += count

    def _refuse_if_faulted(self) -> None:
        if self.faults:
            code = sorted(self.faults)[0]
            raise PrinterFault(code, f"the printer reports {code}")

    def insert_card(self, contactless: bool) -> None:
        with self._lock:
            self._refuse_if_faulted()
            if self.card_position is not None:
                raise PrinterFault("card_jam", "a card is already inside the printer")
            if self.feeder_cards <= 0:
                raise PrinterFault("feeder_empty", "the feeder is empty")
            self.feeder_cards -= 1
            self.card = SimChipCard() if self.chip_cards else None
            self.card_position = "contactless" if contactless else "print"
            self.front_png, self.panels = None, []
        self.clock.sleep(self.seconds_per_card * FEED_SHARE)

    def print_card(self, front_png: bytes, back_png: bytes | None) -> None:
        with self._lock:
            self._refuse_if_faulted()
            if self.card_position is None:
                raise PrinterFault("card_jam", "there is no card to print on")
            self.card_position = "print"
            self.front_png, self.panels = front_png, list(PANELS)
        self.clock.sleep(self.seconds_per_card * PRINT_SHARE)

    def eject(self) -> None:
        self._leave("output")
        self.clock.sleep(self.seconds_per_card * EJECT_SHARE)

    def reject(self) -> None:
        self._leave("reject")

    def _leave(self, destination: str) -> None:
        with self._lock:
            if self.card_position is None:
                raise PrinterFault("card_jam", "there is no card inside to move")
            at = self.clock.now().astimezone(timezone.utc).isoformat(timespec="seconds")
            self.output.record(at, destination, self.card, self.front_png if destination == "output" else None,
                               self.panels)
            self.card, self.card_position, self.front_png, self.panels = None, None, None, []

    def station_channel(self) -> "SimStationChannel":
        """The encoder's way to the card parked at this printer's contactless station."""
        return SimStationChannel(self)


class SimStationChannel(CardChannel):
    """The simulated printer's built-in reader: it sees the card parked at the contactless station."""

    reader_name = "kartud simulated contactless station"

    def __init__(self, printer: SimPrinter):
        self.printer = printer
        self._card: SimChipCard | None = None

    def wait_for_card(self, timeout_s: float) -> None:
        with self.printer._lock:
            card = self.printer.card if self.printer.card_position == "contactless" else None
        if card is None:
            raise EncodeError("no_card", "no chip card at the contactless station")
        self._card = card

    def transmit(self, apdu: bytes) -> bytes:
        if self._card is None:
            raise EncodeError("no_card", "no card connected")
        return self._card.transmit(apdu)

    def release(self) -> None:
        self._card = None

    def status(self) -> EncoderStatus:
        return EncoderStatus(connected=True, reader=self.reader_name)
