"""Physical faults that used to cost a card or a blank: the hopper full at the eject, a card left inside over a replug."""

from __future__ import annotations

import asyncio
import os

from physical_room import PhysicalRoom, ledger_matches_printer
from printer_fixtures import UsbRoom, wait_until


async def settled_after(tmp_path, step: str, fault: str, job_types=("KTP_EL",)) -> PhysicalRoom:
    """A room whose printer meets ``fault`` at ``step`` of the first card, started and left to stand still."""
    room = PhysicalRoom(tmp_path, job_types=job_types)
    room.sim.arm(step, fault)
    room.start()
    await room.quiet()
    return room


def test_a_full_hopper_at_the_eject_holds_the_card_and_ejects_the_same_card_when_emptied(tmp_path):
    async def scenario():
        room = await settled_after(tmp_path, "eject", "hopper_full")
        assert "hopper_full" in room.daemon.faults
        assert room.sim.position == "print" and room.cards() == []        # waiting inside, not rejected
        assert room.states() == {"j-1": "printing"}
        assert ledger_matches_printer(room) == []
        room.sim.clear("hopper_full")                                     # the person empties the hopper
        await room.quiet(gone=("hopper_full",))
        assert await room.stop() == 0
        return room

    room = asyncio.run(scenario())
    assert room.owners() == [("output", "j-1")]                           # one card, the same, never reprinted
    assert room.states() == {"j-1": "printed"}
    assert room.query("SELECT attempts FROM jobs") == [(1,)]
    assert ledger_matches_printer(room) == []


def test_a_stop_while_the_hopper_is_full_leaves_the_card_inside_for_the_next_start(tmp_path):
    async def scenario():
        room = await settled_after(tmp_path, "eject", "hopper_full")
        assert await room.stop() == 0                                     # not held for ever by the wait
        return room

    room = asyncio.run(scenario())
    assert room.cards() == [] and room.sim.position == "print"
    assert room.states() == {"j-1": "printing"}                            # in doubt at the next start


def test_a_card_left_inside_over_an_unplug_is_charged_to_its_own_job_never_the_next(tmp_path):
    async def scenario():
        room = await settled_after(tmp_path, "print", "unplugged", ["KTP_EL", "KTP_EL"])   # the cable pulled mid-card
        assert room.states() == {"j-1": "in_doubt", "j-2": "queued"}
        assert room.sim.position is not None                              # j-1's card is still inside
        room.sim.clear("unplugged")                                       # plugged back in
        await room.quiet(gone=("printer_disconnected",))
        assert await room.stop() == 0
        return room

    room = asyncio.run(scenario())
    assert room.owners() == [("reject", "j-1"), ("output", "j-2")]
    assert room.states() == {"j-1": "in_doubt", "j-2": "printed"}
    assert room.query("SELECT attempts, reason FROM jobs WHERE job_id = 'j-2'") == [(1, None)]
    stock = room.stock()["KTP_EL"]
    assert (stock["printed"], stock["spoiled"], stock["reserved"]) == (1, 0, 1)   # 2 blanks: 2 cards left
    assert room.query("SELECT job_id FROM audit WHERE kind = 'card_rejected'") == [("j-1",)]
    assert ledger_matches_printer(room) == []


def test_a_usb_unplug_mid_card_and_a_replug_leave_the_card_inside_to_its_own_job(tmp_path, broker):
    """The issue's finding as an integrator saw it: the USB cable pulled while a card prints, put back; the
    card left inside was rejected as the next job's spoiled blank (3 blanks used where 2 left the printer)."""
    room = UsbRoom(tmp_path / "room", broker)
    room.overrides["printer.sim.seconds_per_card"] = "2.0"            # 1.4 s printing: time to pull the cable
    os.makedirs(room.dir, exist_ok=True)
    try:
        room.start()
        room.receive_blanks(5, "KIA")
        first, second = room.job("KIA"), room.job("KIA")
        room.submit(first)
        room.wait_event(lambda j: j["job_id"] == first["job_id"] and j["step"] == "printing")
        room.unplug()
        room.wait_state(first["job_id"], "in_doubt")
        room.submit(second)
        room.replug()
        room.wait_state(second["job_id"], "printed")
        wait_until(lambda: len(room.cards()) == 2, what="two cards in cards.jsonl")
        assert [c["destination"] for c in room.cards()] == ["reject", "output"]
        stock = room.query("SELECT printed, spoiled, reserved FROM blank_stock WHERE card_type = 'KIA'")
        assert stock == [(1, 0, 1)]                                   # two blanks used, two cards left
        assert room.query("SELECT attempts, reason FROM jobs WHERE job_id = ?", second["job_id"]) == [(1, None)]
        assert room.query("SELECT job_id FROM audit WHERE kind = 'card_rejected'") == [(first["job_id"],)]
    finally:
        room.close()
