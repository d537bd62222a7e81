"""The trigger-kept job counts always equal a count of the jobs themselves, also after a migration."""

from __future__ import annotations

import random

from store_fixtures import TEST_KEY
from test_pacing import new_job

from kartud.rules.errors import CommandError
from kartud.ledger.store import OutOfBlanks, Store

COUNTED = "SELECT state, card_type, priority, COUNT(*) FROM jobs GROUP BY state, card_type, priority ORDER BY 1, 2, 3"
KEPT = "SELECT state, card_type, priority, n FROM job_counts WHERE n > 0 ORDER BY 1, 2, 3"


def test_counts_follow_every_change(store):
    rng = random.Random(5)
    store.receive_blanks("B", "KIA", 40, None)
    live: list[str] = []
    for serial in range(1, 300):
        action = rng.choice(["submit", "submit", "claim", "cancel", "print", "spoil", "doubt"])
        try:
            if action == "submit":
                job = new_job(serial)
                job.priority = rng.randint(0, 3)
                store.submit_job(job)
                live.append(job.job_id)
            elif live:
                job_id = rng.choice(live)
                state = store.get_job(job_id)["state"]
                if action == "claim" and state == "queued":
                    store.claim(job_id)
                elif action == "cancel" and state == "queued":
                    store.cancel_job(job_id)
                elif action == "print" and state == "printing":
                    store.mark_printed(job_id, None)
                elif action == "spoil" and state == "printing":
                    store.mark_spoiled(job_id, "card_jam", 2)
                elif action == "doubt" and state == "printing":
                    store.mark_in_doubt(job_id, "interrupted")
        except (OutOfBlanks, CommandError):
            pass
        assert [tuple(r) for r in store.conn.execute(KEPT)] == [tuple(r) for r in store.conn.execute(COUNTED)]
    assert sum(store.counts().values()) == store.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


def test_a_database_from_before_the_counts_is_counted_when_migrated(tmp_path, manual_clock):
    path = str(tmp_path / "k.db")
    clock = manual_clock
    store = Store(path, clock, key=TEST_KEY)
    store.open()
    for serial in range(1, 6):
        store.submit_job(new_job(serial))
    store.cancel_job("j-1")
    # Put the file back to schema 4, as an older kartud left it (its personal data stays in the personal file).
    store.conn.executescript("DROP TRIGGER job_counts_insert; DROP TRIGGER job_counts_update;"
                             " DROP TRIGGER job_counts_delete; DROP TABLE job_counts;"
                             " DROP INDEX blank_movements_boot_released; DROP TABLE requests_done;"
                             " DROP TABLE requests_handling; DROP TABLE quarantine; DROP INDEX jobs_pii_due;"
                             " ALTER TABLE jobs ADD COLUMN nik TEXT; ALTER TABLE jobs ADD COLUMN front_png BLOB;"
                             " ALTER TABLE jobs ADD COLUMN back_png BLOB; ALTER TABLE jobs ADD COLUMN chip_files TEXT;"
                             " PRAGMA user_version = 4;")
    store.close()
    again = Store(path, clock, key=TEST_KEY)
    again.open()
    assert [tuple(r) for r in again.conn.execute(KEPT)] == [tuple(r) for r in again.conn.execute(COUNTED)]
    assert again.counts()["queued"] == 4 and again.counts()["cancelled"] == 1
