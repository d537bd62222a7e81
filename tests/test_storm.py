"""The seeded storm (``kartud-sim storm``): its plan replays by seed, and CI storms a real room with a fixed and a random seed.

``KARTUD_STORM_MINUTES`` sets the fixed-seed run's length (3 by default, as in CI; the documented long
run is 60), ``KARTUD_STORM_SEED`` its seed; the random-seed run lasts one minute and prints its seed.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings
from kartud.hw.sim.output import CardOutput
from kartud.room.storm import SETTLE_S
from kartud.room.storm_plan import CHIP_FAULTS, PRINTER_FAULTS, STEPS, WEIGHTS, plan
from kartud.room.storm_rig import rig_problem

MINUTES = float(os.environ.get("KARTUD_STORM_MINUTES", "3"))
SEED = int(os.environ.get("KARTUD_STORM_SEED", "20261201"))


def test_the_same_seed_draws_the_same_operations_and_another_seed_others():
    first = [str(op) for op in plan(4242, 2000)]
    assert first == [str(op) for op in plan(4242, 2000)]
    assert first != [str(op) for op in plan(4243, 2000)]
    assert first[:50] == [str(op) for op in plan(4242, 50)]       # a longer run begins as a shorter one did


def test_a_long_plan_draws_every_kind_of_operation_and_every_fault():
    ops = list(plan(7, 5000))
    kinds = Counter(op.kind for op in ops)
    assert set(kinds) == {kind for kind, _ in WEIGHTS}
    assert {op.args["fault"] for op in ops if op.kind == "fault"} == set(PRINTER_FAULTS + CHIP_FAULTS)
    jumps = Counter(op.args["jump"] for op in ops if op.kind == "clock")
    assert jumps["forward"] and jumps["back"] and jumps["fixed"]
    submitted = [op.args["job"] for op in ops if op.kind in ("submit", "dup_record")]
    assert submitted == list(range(1, len(submitted) + 1))         # each new job has the next serial


def test_a_wrong_clock_is_put_right_by_the_next_clock_operation_and_right_only_moves_forward():
    right, offset = 0, 0
    for op in plan(11, 5000):
        if op.kind != "clock":
            continue
        if op.args["jump"] == "back":
            assert offset == right and op.args["offset_s"] < right
        elif op.args["jump"] == "fixed":
            assert offset != right and op.args["offset_s"] == right
        else:
            assert offset == right and op.args["offset_s"] > right
            right = op.args["offset_s"]
        offset = op.args["offset_s"]


def test_every_fault_the_storm_draws_is_one_the_simulator_takes(manual_clock, tmp_path):
    sim = EvolisSim(manual_clock, CardOutput(str(tmp_path)), SimSettings())
    for fault in PRINTER_FAULTS + CHIP_FAULTS:
        sim.inject(fault)
        sim.clear(fault)
        for step in STEPS:
            sim.arm(step, fault)


def storm(seed: int, minutes: float, directory) -> subprocess.CompletedProcess:
    why = rig_problem()
    if why:
        pytest.skip(why)
    process = subprocess.Popen([sys.executable, "-m", "kartud.room.cli", "storm", "--seed", str(seed), "--minutes",
                                str(minutes), "--output-dir", str(directory)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=minutes * 60 + SETTLE_S + 300)
    finally:
        if process.poll() is None:               # SIGTERM: the storm stops every process it started
            process.terminate()
            stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def assert_held(run: subprocess.CompletedProcess, seed: int) -> None:
    print(run.stdout[-3000:])
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"storm: seed {seed},")                # the seed comes first, to replay it
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert lines[-1] == f"storm: seed {seed}: every check held"
    numbered = [line for line in lines if line.startswith("#")]
    assert numbered == [f"#{op}" for op in plan(seed, len(numbered))]   # the log is the seed's plan
    assert sum(line.startswith("check after op") for line in lines) >= 2


@pytest.mark.timeout(MINUTES * 60 + SETTLE_S + 480)
def test_a_storm_with_the_fixed_seed_keeps_every_promise(tmp_path):
    assert_held(storm(SEED, MINUTES, tmp_path / "storm"), SEED)


@pytest.mark.timeout(60 + SETTLE_S + 480)
def test_a_storm_with_a_random_seed_keeps_every_promise(tmp_path):
    seed = random.SystemRandom().randrange(1, 10**9)
    print(f"storm seed {seed} (replay: kartud-sim storm --seed {seed} --minutes 1)")
    assert_held(storm(seed, 1, tmp_path / "storm"), seed)


def test_the_checker_finds_a_record_twice_in_the_output_an_uncharged_blank_a_lost_job_and_a_false_cancel(store, tmp_path):
    import json
    from types import SimpleNamespace

    from sample_jobs import new_job, payload

    from kartud.room.storm_invariants import check
    from kartud.room.storm_office import Told, chip_sha

    store.receive_blanks("B-1", "KTP_EL", 10, None)
    store.submit_job(new_job(1))
    store.submit_job(new_job(2))
    store.claim("j-0001")
    store.mark_printed("j-0001", "04AABBCCDDEEFF")
    sent = {chip_sha(payload(n)): payload(n) for n in (1, 2)}
    office = SimpleNamespace(told=Told(acknowledged={"j-0001": payload(1), "j-0002": payload(2)}), sent_jobs=sent,
                             problems=[], unanswered=lambda: [])
    cards = tmp_path / "cards.jsonl"

    def card_out(n: int) -> None:
        with open(cards, "a") as handle:
            handle.write(json.dumps({"seq": n, "destination": "output", "chip_files_sha256": chip_sha(payload(1))})
                         + "\n")

    card_out(1)
    problems, counts = check(store.path, str(cards), office)
    assert problems == [] and counts["printed"] == 1 and counts["output"] == 1
    card_out(2)                                                    # the same record leaves the printer again
    office.told.acknowledged["j-0003"] = payload(3)                # told accepted, never stored
    office.told.cancelled.add("j-0002")                            # told cancelled, still queued
    problems, _ = check(store.path, str(cards), office)
    assert any("PRR-9999-000001 has 2 cards" in p for p in problems)
    assert any("j-0003 was acknowledged but is not in the ledger" in p for p in problems)
    assert any("j-0002 was answered cancelled but the ledger has queued" in p for p in problems)
    assert any("2 cards left the printer but the ledger charged only 1 blanks" in p for p in problems)


def test_seed_2_a_resubmission_carries_the_first_content_and_a_later_job_for_the_record_may_be_first(broker):
    # Found by seed 2: op 15 resubmitted job 5 without the priority it was first sent with (job_id_conflict),
    # and op 183's job was refused duplicate_record because op 216's job for the same record, sent later from
    # another client, reached the daemon first. Both were the storm's own mistakes, not the daemon's.
    from kartud.room.storm_office import Office, Request

    office = Office(broker.port, 2, lambda: 0)
    try:
        first = office.job(5, priority=9)
        assert office.job(5) == first and first["priority"] == 9
        later = office.job(59, record_of=57)
        office.sent_jobs["later"] = later
        original = Request(183, 0, "job/submit", office.job(57), frozenset({"ok"}))
        assert office._shares_with_another_job(original, "duplicate_record")
        assert not office._shares_with_another_job(original, "job_id_conflict")
        lone = Request(184, 0, "job/submit", office.job(60), frozenset({"ok"}))
        assert not office._shares_with_another_job(lone, "duplicate_record")
    finally:
        office.close()


def test_seed_20261201_a_card_pulled_out_after_encoding_goes_in_doubt_and_no_fresh_blank_is_printed(tmp_path):
    # Found by the CI seed: a jam armed at the contactless station was cleared (the card pulled out by hand)
    # between the encoding and the first panel; the printer fed a fresh blank for the print by itself (a job
    # without Si) and ejected it, chip empty, as the job's card, which the ledger called printed.
    import asyncio

    from held_press import HeldRoom, PressGate

    async def scenario():
        room = HeldRoom(tmp_path, jobs=1, gate=PressGate("after_encode"))
        room.start()
        while (await room.point())[0] != "after_encode":
            pass
        sim = room.daemon.printer.transport.device
        sim.inject("card_jam")
        sim.clear("card_jam")                      # the person takes the jammed card out
        room.gate.release()
        await room.until("j-1", "in_doubt")
        assert [c for c in room.cards() if c[0] == "output"] == []
        await room.stop()

    asyncio.run(scenario())


def test_seed_20261201_a_wrong_blank_spoiled_from_stock_keeps_the_stock_agreeing_with_its_movements(store):
    # Found by the CI seed (with pcscd restarting under an encoding, a chip blank read as one without a chip):
    # the wrong blank is spoiled straight from stock, and verify counted it as a blank once reserved.
    from sample_jobs import new_job

    from kartud.ledger.read_only import verify

    store.receive_blanks("B-1", "KTP_EL", 3, None)
    store.submit_job(new_job(1))
    store.claim("j-0001")
    store.wrong_blank("j-0001", "KIA")
    assert store.stock()["KIA"]["spoiled"] == 1
    assert verify(store.conn)["ledger"] == []


def test_seed_16003_the_printer_takes_unplug_as_soon_as_it_says_it_is_on(tmp_path):
    # Found by the long run: an unplug sent right after a power cut's restart was refused, because the
    # control socket learnt of the cable only after the printer had said it was on.
    from printer_fixtures import SimProcess

    from kartud.hw.sim.sim_control import send_command

    control = str(tmp_path / "control.sock")
    for _ in range(5):
        printer = SimProcess(str(tmp_path / "tty"), str(tmp_path / "cards"), "--control", control)
        try:
            assert send_command(control, "unplug") == "ok"
            assert send_command(control, "replug") == "ok"
        finally:
            printer.stop()


def test_a_settle_that_fails_says_why_the_queue_stood_still_in_the_daemons_words():
    from kartud.room.storm import describe_state

    state = {"mode": "waiting", "reason": "cleaning_due", "faults": [{"code": "cover_open", "since": "x"}],
             "queue": {"queued": 5, "in_doubt": 0}, "blanks": {"KTP_EL": {"in_stock": 90, "low": False}},
             "next_print_at": None, "printer": {"connected": True, "cards_until_cleaning": 0},
             "encoder": {"connected": False, "reader": "r"}}
    line = describe_state(state)
    for part in ("mode=waiting", "reason=cleaning_due", "faults=['cover_open']", "'queued': 5", "'in_stock': 90",
                 "printer connected=True", "cards_until_cleaning=0", "encoder connected=False"):
        assert part in line
    assert describe_state({}).startswith("mode=None reason=None faults=[]")      # a partial document still prints
