"""The simulator's record of every card that left the printer: ``cards.jsonl`` (fsynced) and front images."""

from __future__ import annotations

import json
import os

from .card import SimChipCard


class CardOutput:
    """Appends one line per card to ``<output_dir>/cards.jsonl`` and saves ``<seq>-front.png``.

    Each line is written and fsynced before the eject completes, so a crash test can trust it; the
    sequence number goes on from the lines already there, so a restarted simulator never reuses one.
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

    def record(self, at: str, destination: str, card: SimChipCard | None, front, panels: list[str]) -> dict:
        """Append one card's line (fsynced) and save its front image (a PIL image, or None)."""
        self.seq += 1
        line = {"seq": self.seq, "at": at, "destination": destination,
                "chip_uid": card.uid_hex if card else None,
                "chip_files_sha256": card.files_sha256() if card else None,
                "panels": panels}
        if front is not None:
            target = os.path.join(self.output_dir, f"{self.seq}-front.png")
            # Fast compression: the image is for eyes and tests, and the eject waits for it.
            front.save(target + ".part", format="PNG", compress_level=1)
            os.replace(target + ".part", target)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return line
