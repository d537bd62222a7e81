"""The storm's end, replayed in seconds: a few operations of a long storm played on the real room, then the settle."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from kartud.room.storm import SETTLE_S
from kartud.room.storm_rig import rig_problem

SEED = 20261202
JOBS = 5


def play(ops: list[dict], directory) -> subprocess.CompletedProcess:
    """``kartud-sim storm`` on the real room (in its private-pty namespace) with ``ops`` instead of the seed's plan."""
    why = rig_problem()
    if why:
        pytest.skip(why)
    ops_file = directory.parent / "ops.json"
    ops_file.write_text(json.dumps(ops))
    process = subprocess.Popen([sys.executable, "-m", "kartud.room.cli", "storm", "--seed", str(SEED), "--minutes",
                                "1", "--output-dir", str(directory), "--ops-file", str(ops_file)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Broken, the settle gives up only after SETTLE_S without progress: let it, to see its final check.
        stdout, stderr = process.communicate(timeout=SETTLE_S + 120)
    finally:
        if process.poll() is None:               # SIGTERM: the storm stops every process it started
            process.terminate()
            stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.timeout(SETTLE_S + 240)
def test_the_settle_puts_right_a_fault_armed_before_it_and_every_queued_job_is_printed(tmp_path):
    """Seed 20261202 (42 minutes): ``reject_box_full`` armed at the eject step just before the end fired at the
    next card, after the settle had cleared the faults once; nobody cleared it again and the last 4 jobs stayed
    queued. Here the fault is armed while the press is idle (its dwell ends before any card reaches the eject,
    so the fault operation's own clear finds nothing), 5 jobs follow, and the storm goes straight to the settle:
    the first card ejects, the reject box reads full, and only a settle that keeps putting faults right drains
    the other 4."""
    ops = [{"kind": "blanks", "args": {"client": 0, "batch": 2, "count": 20}},
           {"kind": "fault", "args": {"fault": "reject_box_full", "how": "arm eject", "dwell_s": 0.5}}]
    ops += [{"kind": "submit", "args": {"client": n % 3, "job": n, "priority": 0}} for n in range(1, JOBS + 1)]
    run = play(ops, tmp_path / "storm")
    print(run.stdout[-3000:])
    lines = run.stdout.splitlines()
    assert [line for line in lines if line.startswith("#")][:2] == [
        "#00001 blanks client=0 batch=2 count=20", "#00002 fault fault=reject_box_full how=arm eject dwell_s=0.5"]
    # The fault did fire (at a card's eject, so after the fault operation's clear): else this test shows nothing.
    assert "reject_box_full at the eject step" in (tmp_path / "storm" / "printer.log").read_text()
    # The final check (every request answered, no job queued, printing or in doubt, no record twice in the
    # output, the ledger agreeing with the cards) held, and every job's card is in the output.
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert lines[-1] == f"storm: seed {SEED}: every check held"
    assert (tmp_path / "storm" / "storm.log").read_text().splitlines() == lines    # the room keeps the log too
    final = next(line for line in lines if line.startswith(f"final check after op {len(ops)}: ok"))
    counts = dict(re.findall(r"(\w+)=(\d+)", final))
    assert (counts["acknowledged"], counts["printed"], counts["output"]) == (str(JOBS),) * 3


@pytest.mark.timeout(SETTLE_S + 240)
def test_jobs_held_while_the_clock_was_behind_print_once_the_clock_is_set_with_nothing_else_happening(tmp_path):
    """Seed 976230878 (a CI storm, 2026-12-02; replayed by hand it did it again): the wall clock jumped 23 hours back,
    so the station stopped with ``clock_not_set``; the settle set the clock right, and the queue stood still for
    good. The press had decided ``clock_not_set`` and waited for an event, and a clock being set is none (on a box:
    NTP setting the clock of a Pi that booted without one). It now looks again every few seconds while the
    clock is behind."""
    ops = [{"kind": "blanks", "args": {"client": 0, "batch": 2, "count": 20}}]
    ops += [{"kind": "submit", "args": {"client": 0, "job": n, "priority": 0}} for n in (1, 2)]
    ops += [{"kind": "pause", "args": {"seconds": 4.0}},
            {"kind": "clock", "args": {"jump": "back", "offset_s": -82800}}]
    ops += [{"kind": "submit", "args": {"client": n % 3, "job": n, "priority": 0}} for n in range(3, JOBS + 1)]
    ops += [{"kind": "pause", "args": {"seconds": 3.0}}]
    run = play(ops, tmp_path / "storm")
    print(run.stdout[-3000:])
    # The clock did stop the station (else this test shows nothing), and then every job was printed once.
    assert "station fault (clock_not_set)" in (tmp_path / "storm" / "daemon.log").read_text()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    final = next(line for line in lines if line.startswith(f"final check after op {len(ops)}: ok"))
    counts = dict(re.findall(r"(\w+)=(\d+)", final))
    assert (counts["acknowledged"], counts["printed"], counts["output"]) == (str(JOBS),) * 3
