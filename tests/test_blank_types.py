"""The blank in the feeder checked against the job before a face is printed on it: fault wrong_blank."""

from __future__ import annotations

import asyncio

import pytest
from physical_room import PhysicalRoom, ledger_matches_printer

# job type, the kind of blank wrongly in the feeder (chip?), the blank's real type
CASES = [("KIA", True, "KTP_EL"), ("KTP_EL", False, "KIA")]


@pytest.mark.parametrize("job_type, chip, real", CASES)
def test_a_blank_of_the_other_type_is_rejected_unprinted_and_the_station_waits_for_a_person(tmp_path, job_type,
                                                                                          chip, real):
    async def scenario():
        room = PhysicalRoom(tmp_path, job_types=[job_type, job_type], chip_blanks=chip)
        room.start()
        await room.quiet()
        assert "wrong_blank" in room.daemon.faults
        assert (room.daemon.decision.mode, room.daemon.decision.reason) == ("fault", "printer_fault")
        assert room.sim.counters["cards_inserted"] == 1                   # one blank moved, not the feeder's worth
        assert room.states() == {"j-1": "queued", "j-2": "queued"}
        view = [v for v in room.views if v["job_id"] == "j-1"][-1]
        assert (view["state"], view["reason"], view["attempts"]) == ("queued", "wrong_blank", 0)
        stock = room.stock()
        assert (stock[job_type]["in_stock"], stock[job_type]["reserved"], stock[job_type]["spoiled"]) == (10, 0, 0)
        assert (stock[real]["in_stock"], stock[real]["spoiled"]) == (9, 1)   # accounted as what it is
        assert ledger_matches_printer(room) == []

        room.load_feeder(5, chip=not chip)                                # the right blanks...
        await asyncio.sleep(0.3)                                          # ...and three polls: nothing clears it
        assert "wrong_blank" in room.daemon.faults and room.sim.counters["cards_inserted"] == 1
        assert (await room.resume())["status"] == "ok"                    # the person's word
        await room.quiet(gone=("wrong_blank",))
        report = (await room.ask("report/daily", {"date": "2026-11-23"}))["data"]
        assert report["spoiled"] == {"wrong_blank": 1}
        assert (report["blanks"][real]["spoiled"], report["blanks"][job_type]["spoiled"]) == (1, 0)
        assert await room.stop() == 0
        return room

    room = asyncio.run(scenario())
    assert room.states() == {"j-1": "printed", "j-2": "printed"}
    cards = room.cards()
    assert [c["destination"] for c in cards] == ["reject", "output", "output"]
    assert (cards[0]["chip_uid"] is not None) == chip                     # the wrong blank went out unprinted
    assert cards[0]["panels"] == []
    assert all((c["chip_uid"] is not None) == (job_type == "KTP_EL") for c in cards[1:])
    assert room.query("SELECT attempts FROM jobs ORDER BY job_id") == [(1,), (1,)]
    assert ledger_matches_printer(room) == []


def test_a_wrong_blank_of_a_type_not_in_stock_is_found_then_spoiled(tmp_path):
    async def scenario():
        room = PhysicalRoom(tmp_path, job_types=["KIA"], blanks={"KIA": 5}, chip_blanks=True)
        room.start()
        await room.quiet()
        assert "wrong_blank" in room.daemon.faults
        assert await room.stop() == 0
        return room

    room = asyncio.run(scenario())
    stock = room.stock()["KTP_EL"]
    assert (stock["received"], stock["adjusted"], stock["in_stock"], stock["spoiled"]) == (0, 1, 0, 1)
    assert room.stock()["KIA"]["in_stock"] == 5
    assert room.query("SELECT kind, reason FROM blank_movements WHERE card_type = 'KTP_EL'") == \
        [("adjusted", "wrong_blank_found_in_feeder"), ("spoiled", "wrong_blank")]
    assert ledger_matches_printer(room) == []


def test_the_right_blanks_print_as_before(tmp_path):
    async def scenario():
        room = PhysicalRoom(tmp_path, job_types=["KTP_EL", "KIA"])
        room.load_feeder(1, chip=True)
        room.sim.blanks.load(3, chip=False)                               # a KTP-el blank, then KIA blanks
        room.start()
        await room.quiet()
        assert room.daemon.faults == {} and room.daemon.decision.mode == "idle"
        assert await room.stop() == 0
        return room

    room = asyncio.run(scenario())
    assert room.owners() == [("output", "j-1"), ("output", "-")]
    assert [c["chip_uid"] is None for c in room.cards()] == [False, True]
    assert ledger_matches_printer(room) == []
