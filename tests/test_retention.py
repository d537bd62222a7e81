"""Personal data leaves soon: images, chip data and the full NIK are erased after store.pii_retention_days."""

from __future__ import annotations

import random

from card_faces import SMALL_FRONT

from kartud.room.fake_people import fake_job
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
    assert (erased["nik"], erased["front_png"], erased["back_png"], erased["chip_files"]) == (None,) * 4
    assert erased["nik_masked"] == done.nik_masked and erased["card_uid"] == "04AABBCCDDEEFF"
    for kept in (waiting.job_id, doubtful.job_id):          # not ended, or waiting for a person: kept
        assert rows[kept]["nik"] is not None and rows[kept]["front_png"] is not None
    # A resubmission of the erased job is still recognised by its content hash.
    assert store.submit_job(done)[1] is True
    store.verify_audit_chain()
