"""A card's step changes are committed without an fsync of their own: a power cut may lose them, never a promise.

A job whose card is under way is ``printing`` from its claim (fsynced) to ``printed`` or ``spoiled``
(fsynced); the steps in between (``encoding``, ``printing``, ``ejecting``) only say how far the card
had come. The store below runs in a process of its own on a power-cut filesystem and is killed; the
disk then forgets what was not fsynced. Cut after the steps, the job is still ``printing`` (at its
claim's step) and the start-up's recovery makes it ``in_doubt``, its blank still reserved, as a cut at
any step always did. Killed without a cut, the steps are all there (the process's death loses nothing).
Cut after ``printed``, the card is printed: that commit's fsync of the WAL carried the steps before it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from store_checks import audit_rows, balanced
from store_fixtures import TEST_KEY

from kartud.ledger.store import Store
from kartud.rules.clock import Clock

CARD_WAY = f"""
import os, signal, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
from test_pacing import new_job
from kartud.ledger.store import Store
from kartud.rules.clock import Clock
store = Store(sys.argv[1], Clock(), key=bytes(range(32)))
store.open()
store.receive_blanks("B", "KIA", 1, None)
store.submit_job(new_job(1))
store.claim("j-1")
for step in ("encoding", "printing", "ejecting"):
    store.set_step("j-1", step)
if sys.argv[2] == "printed":
    store.mark_printed("j-1", "04AABBCCDDEEFF")
os.kill(os.getpid(), signal.SIGKILL)     # the process dies with the store open: nothing is closed or checkpointed
"""


def run_card_way(db_path: str, until: str) -> None:
    done = subprocess.run([sys.executable, "-c", CARD_WAY, db_path, until], capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr.decode()


def reopen(db_path: str) -> Store:
    store = Store(db_path, Clock(), key=TEST_KEY)
    store.open()
    return store


@pytest.fixture
def db_path(power_cut_disk):
    return os.path.join(power_cut_disk.mountpoint, "kartud.db")


def test_a_cut_after_the_steps_loses_them_and_the_job_goes_in_doubt_as_at_any_step(power_cut_disk, db_path):
    run_card_way(db_path, "steps")
    power_cut_disk.power_cut()
    store = reopen(db_path)
    try:
        job = store.get_job("j-1")
        assert (job["state"], job["step"]) == ("printing", "feeding")    # the claim is durable, its steps were not
        assert [row["kind"] for row in audit_rows(store) if row["kind"] == "job_step"] == []
        [doubt] = store.recover_in_doubt()
        assert (doubt["job_id"], doubt["state"], doubt["attempts"]) == ("j-1", "in_doubt", 1)
        assert store.stock()["KIA"]["reserved"] == 1        # the blank waits for the operator's decision
        balanced(store)
    finally:
        store.close()


def test_the_process_dying_without_a_cut_keeps_every_step(tmp_path):
    db_path = str(tmp_path / "kartud.db")
    run_card_way(db_path, "steps")
    store = reopen(db_path)
    try:
        assert store.get_job("j-1")["step"] == "ejecting"
        [doubt] = store.recover_in_doubt()
        assert doubt["in_doubt_step"] == "ejecting"
    finally:
        store.close()


def test_a_cut_after_printed_keeps_the_card_and_the_steps_before_it(power_cut_disk, db_path):
    run_card_way(db_path, "printed")
    power_cut_disk.power_cut()
    store = reopen(db_path)
    try:
        assert store.get_job("j-1")["state"] == "printed"
        steps = [json.loads(row["detail"])["step"] for row in audit_rows(store) if row["kind"] == "job_step"]
        assert steps == ["encoding", "printing", "ejecting"]
        assert store.recover_in_doubt() == []
        assert store.stock()["KIA"]["printed"] == 1
        balanced(store)
    finally:
        store.close()
