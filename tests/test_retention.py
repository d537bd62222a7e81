"""Personal data leaves soon: faces and chip data go store.pii_retention_days after a job ends, on time even when idle."""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import datetime, timedelta

from card_faces import SMALL_FRONT

from kartud.ledger.personal import personal_path
from kartud.room.fake_people import fake_job
from kartud.rules.clock import rfc3339
from kartud.rules.jobs import validate_submission


def test_personal_data_of_ended_jobs_is_erased_after_retention_and_nothing_else(store, manual_clock):
    clock = manual_clock
    store.receive_blanks("B1", "KTP_EL", 10, None)
    rng = random.Random(3)
    done, waiting, doubtful = (validate_submission(fake_job(rng, i, job_id=f"j-{i}", record_id=f"r-{i}",
                                                            front_png=SMALL_FRONT), ["KTP_EL"]) for i in (1, 2, 3))
    for job in (done, waiting, doubtful):
        store.submit_job(job)
    store.claim(done.job_id)
    store.mark_printed(done.job_id, "04AABBCCDDEEFF")
    store.claim(doubtful.job_id)
    store.mark_in_doubt(doubtful.job_id, "interrupted")

    clock.advance(6 * 86400)
    assert store.erase_personal_data(clock.now(), 7) == 0
    clock.advance(2 * 86400)
    assert store.erase_personal_data(clock.now(), 7) == 1

    rows = {r["job_id"]: dict(r) for r in store.conn.execute("SELECT * FROM jobs")}
    erased = rows[done.job_id]
    assert store.personal.job_data(done.job_id) is None and erased["pii_erased_at"] is not None
    assert erased["nik_masked"] == done.nik[:4] + "*" * 12 and erased["card_uid"] == "04AABBCCDDEEFF"
    assert not {"nik", "front_png", "back_png", "chip_files"} & set(erased)     # the ledger never holds them
    for kept in (waiting.job_id, doubtful.job_id):          # not ended, or waiting for a person: kept
        assert rows[kept]["pii_erased_at"] is None and store.personal.job_data(kept)["front_png"] == SMALL_FRONT
    # A resubmission of the erased job is still recognised by its content hash.
    assert store.submit_job(done)[1] is True
    store.verify_audit_chain()


def test_an_idle_station_holds_no_personal_data_a_minute_past_retention(room):
    """The daemon process on its accelerated clock (60 simulated seconds a second): a card is printed, then
    the station stands idle. It comes back 90 simulated seconds before the card's data falls due (a day
    after it ended) and is given nothing to do; the erasure must come within a minute of the due time."""
    room.overrides.update({"store.pii_retention_days": "1", "sim.clock_speed": "60.0",
                           "sim.clock_start": '"2026-11-23T01:00:00+00:00"'})
    room.start()
    room.receive_blanks(2)
    job = room.job()
    assert room.submit(job)["status"] == "ok"
    room.wait_state(job["job_id"], "printed")
    (ended,), = room.query("SELECT updated_at FROM jobs WHERE job_id = ?", job["job_id"])
    due = datetime.fromisoformat(ended) + timedelta(days=1)
    room.stop()
    room.overrides["sim.clock_start"] = f'"{rfc3339(due - timedelta(seconds=90))}"'
    room.start()
    deadline = time.monotonic() + 20
    while not (erased := room.query("SELECT at FROM audit WHERE kind = 'personal_data_erased'")):
        assert time.monotonic() < deadline, "an idle station kept personal data past its retention"
        time.sleep(0.05)
    late = datetime.fromisoformat(erased[0][0]) - due
    assert timedelta(0) <= late <= timedelta(minutes=1), f"erased {late} after the data fell due"
    assert room.query("SELECT nik_masked FROM jobs") == [(job["nik"][:4] + "*" * 12,)]
    personal = sqlite3.connect(f"file:{personal_path(room.db_path)}?mode=ro", uri=True)
    try:
        assert personal.execute("SELECT COUNT(*) FROM job_data").fetchone() == (0,)
    finally:
        personal.close()
