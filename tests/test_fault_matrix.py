"""Every fault the simulator can inject, at every step of a card: the blank ledger against what physically left."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from physical_room import PhysicalRoom, ledger_matches_printer
from print_room import chip_sha

from kartud.hw.sim.sim_faults import FAULT_KINDS

CARD_STEPS = ("feed", "encode", "print", "eject")
# The fault the daemon raises for an injected kind, when it is not the kind's own name (chip faults raise none).
RAISED_AS = {"unplugged": ("printer_disconnected",), "chip_write_refused": (), "chip_leaves_field": ()}


@pytest.mark.parametrize("step", CARD_STEPS)
@pytest.mark.parametrize("fault", FAULT_KINDS)
def test_after_any_fault_at_any_step_the_ledger_is_what_left_the_printer(tmp_path, fault, step):
    async def scenario():
        room = PhysicalRoom(tmp_path, job_types=["KTP_EL", "KTP_EL"])
        room.sim.arm(step, fault)
        room.start()
        await room.quiet()
        checks = {"with the fault": ledger_matches_printer(room)}
        room.sim.clear(fault)                                   # the person puts it right
        await room.quiet(gone=RAISED_AS.get(fault, (fault,)))
        checks["put right"] = ledger_matches_printer(room)
        if await room.resolve_by_looking():                      # a person settles what is in doubt
            await room.quiet()
        checks["settled"] = ledger_matches_printer(room)
        assert await room.stop() == 0
        return room, checks

    room, checks = asyncio.run(scenario())
    assert checks == {"with the fault": [], "put right": [], "settled": []}
    assert set(room.states().values()) == {"printed"}
    outputs = Counter(c["chip_files_sha256"] for c in room.cards() if c["destination"] == "output")
    assert [outputs[chip_sha(job)] for job in room.jobs] == [1, 1]     # each record one card, none twice
