"""The storm's operations drawn from one seed: the same seed gives the same numbered sequence, whatever happens.

Nothing here looks at the running room: every choice (which client, which earlier job, which fault,
how long) comes from ``random.Random(seed)`` and from earlier choices, so a failing run is replayed
by its seed. Timing is not replayed: how far the press has got when an operation lands differs.

>>> [str(op) for op in plan(7, 3)] == [str(op) for op in plan(7, 3)]
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterator

CLIENTS = 3
# Every fault the simulator can be given (hw/sim/sim_faults.py: inject, clear, arm), chip faults included.
PRINTER_FAULTS = ("feeder_empty", "cover_open", "no_ribbon", "ribbon_ended", "card_jam", "reject_box_full",
                  "hopper_full", "head_cooling", "cleaning_required")
CHIP_FAULTS = ("chip_write_refused", "chip_leaves_field")
STEPS = ("feed", "encode", "print", "eject")
HOSTILE = ("not_json", "not_object", "bad_nik", "no_front", "unknown_command", "kia_with_chip", "bad_priority",
           "cancel_unknown", "resolve_unknown", "negative_blanks", "wrong_response_topic")
PHASE_OPS = 12                              # the invariant checker runs after every this many operations

# (kind, weight): valid work first, then hostile and racing requests, then the faults of the room.
# About as many new jobs as the press can make while it is stormed, so that the end drains in a minute or two.
WEIGHTS = (("submit", 14), ("resubmit", 4), ("conflict", 2), ("dup_record", 2), ("hostile", 5), ("cancel", 5),
           ("resolve", 4), ("stale_resolve", 2), ("blanks", 2), ("status", 2), ("pause", 12),
           ("kill", 3), ("power_cut", 2), ("broker", 2), ("pcscd", 2), ("fault", 6), ("unplug", 2), ("clock", 2))


@dataclass(frozen=True)
class Op:
    """One operation: ``kind`` and its arguments (plain values, so its line in the log says it all)."""

    number: int
    kind: str
    args: dict = field(default_factory=dict)

    def __str__(self) -> str:
        words = " ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.number:05d} {self.kind} {words}".rstrip()


class _Planner:
    """What earlier choices left behind that later ones draw from: the jobs submitted, the clock's offsets."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.jobs = 0                           # job serials 1..jobs have been submitted (or tried)
        self.batches = 1                        # batch 1 is received before the first operation
        self.true_offset = 0                    # where "right" is for the box's clock (only moves forward)
        self.offset = 0

    def earlier_job(self) -> int:
        # Mostly recent jobs, which are the ones the press is racing for.
        return max(1, self.jobs - int(self.rng.expovariate(1 / 6)))

    def draw(self, number: int) -> Op:
        rng = self.rng
        kind = rng.choices([k for k, _ in WEIGHTS], [w for _, w in WEIGHTS])[0]
        if self.jobs == 0 and kind in ("resubmit", "conflict", "dup_record", "cancel", "stale_resolve"):
            kind = "submit"
        client = rng.randrange(CLIENTS)
        if kind == "submit":
            self.jobs += 1
            return Op(number, kind, {"client": client, "job": self.jobs, "priority": rng.choice((0, 0, 0, 5, 9))})
        if kind in ("resubmit", "conflict", "cancel", "stale_resolve"):
            return Op(number, kind, {"client": client, "job": self.earlier_job()})
        if kind == "dup_record":
            self.jobs += 1
            return Op(number, kind, {"client": client, "job": self.jobs, "record_of": self.earlier_job()})
        if kind == "hostile":
            return Op(number, kind, {"client": client, "what": rng.choice(HOSTILE)})
        if kind == "blanks":
            self.batches += 1
            return Op(number, kind, {"client": client, "batch": self.batches, "count": rng.randrange(20, 200)})
        if kind in ("resolve", "status"):
            return Op(number, kind, {"client": client})
        if kind == "pause":
            return Op(number, kind, {"seconds": round(rng.uniform(0.1, 2.5), 2)})
        if kind in ("kill", "power_cut"):
            return Op(number, kind, {"down_s": round(rng.uniform(0.0, 1.0), 2)})
        if kind in ("broker", "pcscd", "unplug"):
            return Op(number, kind, {"down_s": round(rng.uniform(0.0, 3.0), 2)})
        if kind == "fault":
            fault = rng.choice(PRINTER_FAULTS + CHIP_FAULTS)
            how = "arm " + rng.choice(STEPS) if fault in PRINTER_FAULTS and rng.random() < 0.5 else "inject"
            if fault in CHIP_FAULTS:
                how = "arm encode"              # a chip fault belongs to the next card at the contactless station
            return Op(number, kind, {"fault": fault, "how": how, "dwell_s": round(rng.uniform(0.2, 3.0), 2)})
        return self.clock(number)

    def clock(self, number: int) -> Op:
        """A wrong clock is put right by the next clock operation; a right one jumps forward or back."""
        rng = self.rng
        if self.offset != self.true_offset:
            self.offset = self.true_offset
            return Op(number, "clock", {"jump": "fixed", "offset_s": self.offset})
        if rng.random() < 0.5:
            self.true_offset += rng.choice((90, 3600, 6 * 3600, 26 * 3600))
            self.offset = self.true_offset
            return Op(number, "clock", {"jump": "forward", "offset_s": self.offset})
        self.offset = self.true_offset - rng.choice((120, 1800, 86400, 30 * 86400))
        return Op(number, "clock", {"jump": "back", "offset_s": self.offset})


def plan(seed: int, count: int | None = None) -> Iterator[Op]:
    """The storm's operations for ``seed``, numbered from 1; endless unless ``count`` is given."""
    planner = _Planner(seed)
    number = 0
    while count is None or number < count:
        number += 1
        yield planner.draw(number)
