"""Erasure: past ``store.pii_retention_days`` a job keeps what the ledger needs, and its personal data is gone.

What an erased job keeps: record id, card type, states and times, outcome, card UID, batch, the
keyed NIK hash (one card per NIK) and the content hash (a resubmission is still recognised), and
``nik_masked`` cut to the first 4 digits (``3574************``). Its faces and chip files are deleted
from the personal-data file (zeroed there by ``secure_delete``), the answers remembered for its
requests get the cut view, and quarantined payloads of the same age go too. After each run both
write-ahead logs are truncated, so nothing erased stays in any of the station's files. Jobs in doubt,
queued or printing keep everything until they end.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

from ..rules import jobs as J
from ..rules.clock import rfc3339

ENDED = "('printed', 'failed', 'cancelled', 'expired')"


class Erasure:
    """Erasure methods of :class:`~kartud.ledger.store.Store` (which provides ``transaction``, ``_audit``,
    ``_forget_personal``, ``checkpoint`` and ``now``)."""

    def next_erasure(self, retention_days: int) -> datetime | None:
        """The earliest instant at which some personal data falls due (a job that ended, a quarantined
        payload), or None when nothing is held that has a due time yet."""
        ended = self.conn.execute("SELECT MIN(updated_at) FROM jobs INDEXED BY jobs_pii_due WHERE pii_erased_at IS NULL"
                                  f" AND state IN {ENDED}").fetchone()[0]
        kept = self.conn.execute("SELECT MIN(at) FROM quarantine WHERE payload_kept = 1").fetchone()[0]
        times = [datetime.fromisoformat(t) for t in (ended, kept) if t is not None]
        return min(times) + timedelta(days=retention_days) if times else None

    def erase_due(self, now: datetime, retention_days: int) -> dict[str, Any]:
        """One erasure run: every job that ended, and every payload quarantined, ``retention_days`` or more
        before ``now``, in one transaction, then both write-ahead logs truncated. Returns ``{"jobs": n,
        "payloads": n, "checkpointed": bool}`` (False: a reader held the ledger's log; try again soon)."""
        due_at = self.next_erasure(retention_days)
        if due_at is None or due_at > now:          # most runs: nothing due, no write transaction
            return {"jobs": 0, "payloads": 0, "checkpointed": True}
        cutoff = rfc3339((now - timedelta(days=retention_days)).astimezone(timezone.utc))
        with self.transaction() as conn:
            due = [r[0] for r in conn.execute(f"SELECT job_id FROM jobs INDEXED BY jobs_pii_due WHERE pii_erased_at "
                                              f"IS NULL AND state IN {ENDED} AND updated_at <= ? ORDER BY seq",
                                              (cutoff,))]
            at = self.now()
            for job_id in due:
                row = conn.execute("SELECT nik_masked FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
                conn.execute("UPDATE jobs SET pii_erased_at = ?, nik_masked = ? WHERE job_id = ?",
                             (at, J.erased_mask(row[0]), job_id))
            if due:
                minimise_answers(conn, set(due))
                self._audit(conn, "personal_data_erased", None, {"jobs": len(due), "first": due[0], "last": due[-1],
                                                                 "ended_before": cutoff})
            payloads = erase_payloads_before(conn, cutoff)
            self._forget_personal(due, payloads)
        checkpointed = self.checkpoint() if due or payloads else True
        return {"jobs": len(due), "payloads": len(payloads), "checkpointed": checkpointed}

    def erase_personal_data(self, now: datetime, retention_days: int) -> int:
        """:meth:`erase_due`; returns how many jobs were erased."""
        return self.erase_due(now, retention_days)["jobs"]


def erase_payloads_before(conn: sqlite3.Connection, cutoff: str) -> list[int]:
    """Mark the payloads quarantined at or before ``cutoff`` erased (the caller forgets them); returns their numbers."""
    seqs = [r[0] for r in conn.execute("SELECT seq FROM quarantine WHERE payload_kept = 1 AND at <= ?", (cutoff,))]
    conn.executemany("UPDATE quarantine SET payload_kept = 0 WHERE seq = ?", [(s,) for s in seqs])
    return seqs


def minimise_answers(conn: sqlite3.Connection, job_ids: set[str]) -> int:
    """Rewrite the remembered answers (``requests_done``) that hold a view of one of ``job_ids`` with the
    view cut as an erased job's is. Returns how many were rewritten."""
    if not job_ids:
        return 0
    changed = []
    for request_id, answer in conn.execute("SELECT request_id, answer FROM requests_done "
                                           "WHERE answer LIKE '%\"nik\\_masked\":%' ESCAPE '\\'").fetchall():
        body = json.loads(answer)
        if _cut(body, job_ids):
            changed.append((json.dumps(body, separators=(",", ":"), ensure_ascii=True), request_id))
    conn.executemany("UPDATE requests_done SET answer = ? WHERE request_id = ?", changed)
    return len(changed)


def _cut(value: Any, job_ids: set[str]) -> bool:
    """Cut ``nik_masked`` in every job view inside ``value`` whose job is in ``job_ids``; whether any was."""
    found = False
    if isinstance(value, dict):
        if value.get("job_id") in job_ids and isinstance(value.get("nik_masked"), str):
            cut = J.erased_mask(value["nik_masked"])
            found, value["nik_masked"] = cut != value["nik_masked"], cut
        for item in value.values():
            found = _cut(item, job_ids) or found
    elif isinstance(value, list):
        for item in value:
            found = _cut(item, job_ids) or found
    return found
