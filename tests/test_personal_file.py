"""Two files, one story: the personal-data file commits before the ledger, and a crash between the two is mended.

The personal-data file (faces, chip files, quarantined payloads; readable by kartud only) and the
ledger (readable by the operators) are two SQLite files, so one transaction over both is not atomic
after a crash. The personal data is committed first, then the ledger: the daemon is killed between
the two (``KARTUD_CRASH_AT=personal_committed``) while taking a job and while erasing one, and the
next start finds the station whole; a job whose personal data is lost fails instead of printing.
"""

from __future__ import annotations

import os
import random
import sqlite3
import stat

import pytest
from card_faces import SMALL_FRONT

from kartud.ledger.personal import personal_path
from kartud.ledger.store import PersonalDataMissing
from kartud.room.fake_people import fake_job
from kartud.rules.jobs import validate_submission


def held(room) -> list[str]:
    """The job ids the personal-data file holds, read from outside (as root)."""
    conn = sqlite3.connect(f"file:{personal_path(room.db_path)}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT job_id FROM job_data ORDER BY job_id")]
    finally:
        conn.close()


def test_a_crash_after_the_personal_commit_leaves_no_job_and_no_data_and_the_retry_prints_once(room):
    room.env["KARTUD_CRASH_AT"] = "personal_committed@jobs"
    room.start()
    room.receive_blanks(3)
    job = room.job()
    room.office.send("job/submit", job)                 # never answered: the daemon dies before the ledger commits
    assert room.process.wait(30) == -9
    assert held(room) == [job["job_id"]] and room.query("SELECT COUNT(*) FROM jobs") == [(0,)]
    room.env.pop("KARTUD_CRASH_AT")
    room.start()
    assert held(room) == []                             # data of a job the ledger never took: gone at start
    assert room.submit(job)["status"] == "ok"           # the office sends it again, as it must without an answer
    room.wait_state(job["job_id"], "printed")
    assert [c["destination"] for c in room.cards()] == ["output"]
    assert room.query("SELECT job_id FROM printed_records") == [(job["job_id"],)]


def test_a_crash_between_the_two_commits_of_an_erasure_is_finished_at_the_next_start(room):
    room.overrides["store.pii_retention_days"] = "0"
    room.env["KARTUD_CRASH_AT"] = "personal_committed@erasure"
    room.start()
    room.receive_blanks(3)
    job = room.job()
    assert room.submit(job)["status"] == "ok"
    assert room.process.wait(60) == -9                  # printed, then erased in the personal file only
    assert held(room) == [] and room.query("SELECT pii_erased_at FROM jobs") == [(None,)]
    room.env.pop("KARTUD_CRASH_AT")
    room.start()
    room.wait_log("erased the personal data of 1 finished jobs")
    (erased_at, masked), = room.query("SELECT pii_erased_at, nik_masked FROM jobs")
    assert erased_at is not None and masked == job["nik"][:4] + "*" * 12
    assert [c["destination"] for c in room.cards()] == ["output"]
    room.stop()
    assert oct(stat.S_IMODE(os.stat(personal_path(room.db_path)).st_mode)) == "0o600"


def test_a_job_whose_personal_data_is_lost_fails_when_chosen_and_takes_no_blank(store):
    store.receive_blanks("B-1", "KTP_EL", 2, None)
    job = validate_submission(fake_job(random.Random(2), 2, front_png=SMALL_FRONT), ["KTP_EL"])
    store.submit_job(job)
    store.personal.apply({}, {}, {job.job_id}, set())   # the personal-data file restored from an older copy
    with pytest.raises(PersonalDataMissing) as lost:
        store.claim(job.job_id)
    assert lost.value.view["state"] == "failed" and lost.value.view["reason"] == "personal_data_missing"
    assert store.stock()["KTP_EL"]["in_stock"] == 2 and store.stock()["KTP_EL"]["reserved"] == 0
    store.verify_audit_chain()
