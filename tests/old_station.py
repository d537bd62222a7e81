"""A database as kartud before schema 8 left it: its NIK key in the settings, personal data in the ledger.

Three people of :mod:`erased_station`: one job queued, one printed and not yet erased, one printed and
erased the old way (columns set to NULL, ``secure_delete`` off, so the bytes stay in free pages); a
quarantined payload holding a NIK; a remembered answer holding the erased job's 10-digit mask.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import sqlite3

from erased_station import person

from kartud.ledger import schema
from kartud.rules.jobs import mask_nik, validate_submission

OLD_VERSION = 7


def old_database(path: str, key: bytes) -> list:
    """Write the file at ``path``; returns the three people (queued, printed, erased)."""
    rng = random.Random(77)
    people = [person(rng, n) for n in (1, 2, 3)]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for script in schema.MIGRATIONS[:OLD_VERSION]:
        conn.executescript(f"BEGIN; {script} COMMIT;")
    conn.execute(f"PRAGMA user_version = {OLD_VERSION}")
    conn.execute("INSERT INTO settings (key, value) VALUES ('nik_hmac_key', ?)", (key.hex(),))
    at = "2026-11-20T02:00:00+00:00"
    for p, state in zip(people, ("queued", "printed", "printed")):
        job = validate_submission(p.job, ["KTP_EL"])
        chip = json.dumps({k: base64.b64encode(v).decode() for k, v in sorted(job.chip_files.items())})
        conn.execute("INSERT INTO jobs (job_id, record_id, card_type, nik, nik_masked, nik_hmac, front_png, chip_files,"
                     " content_sha256, state, created_at, updated_at, printed_at) VALUES"
                     " (?, ?, 'KTP_EL', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (job.job_id, job.record_id, job.nik, mask_nik(job.nik),
                      hmac.new(key, job.nik.encode(), hashlib.sha256).hexdigest(), job.front_png, chip,
                      job.content_sha256, state, at, at, at if state == "printed" else None))
    erased = people[2].job["job_id"]
    conn.execute("UPDATE jobs SET nik = NULL, front_png = NULL, back_png = NULL, chip_files = NULL, "
                 "pii_erased_at = ? WHERE job_id = ?", (at, erased))
    view = {"job_id": erased, "nik_masked": mask_nik(people[2].nik), "state": "printed"}
    conn.execute("INSERT INTO requests_done (request_id, command, fingerprint, answer, at) VALUES (?, ?, ?, ?, ?)",
                 ("r-old", "job/cancel", "f" * 64, json.dumps({"status": "ok", "data": view}), at))
    conn.execute("INSERT INTO quarantine (message_sha256, command, size, why, payload, at) VALUES (?, ?, ?, ?, ?, ?)",
                 ("cd" * 32, "job/submit", 40, "ValueError", f'{{"nik": "{people[0].nik}"}}'.encode(), at))
    conn.close()
    return people
