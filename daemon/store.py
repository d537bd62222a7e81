"""The SQLite store: jobs, the printed-records ledger, blank stock and the audit chain, one transaction per change."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from . import jobs as J
from .clock import Clock, rfc3339
from .errors import CommandError, StorageError
from .schema import migrate

GENESIS_HASH = "0" * 64


class OutOfBlanks(Exception):
    """No blank of the card type is in stock."""


class Store:
    """The one writer of the database. Every method runs on the caller's thread: the daemon calls
    them from its single store thread, tests call them directly.

    Every state change runs inside :meth:`transaction`, which also appends its audit row, so a
    change and its record are committed together or not at all.
    """

    def __init__(self, path: str, clock: Clock):
        self.path = path
        self.clock = clock
        self.conn: sqlite3.Connection | None = None

    # -- opening -----------------------------------------------------------------------------

    def open(self) -> None:
        """Open (creating if needed), migrate and quick-check the database. Raises StorageError."""
        conn = None
        try:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            conn.row_factory = sqlite3.Row
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StorageError(f"the database at {self.path} cannot use WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            migrate(conn)
            problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise StorageError(f"the database at {self.path} is damaged: {'; '.join(problems[:3])}")
        except BaseException as exc:
            # A refused file must not stay open (it would hold a descriptor and, in WAL mode, locks).
            if conn is not None:
                conn.close()
            # migrate() refuses a newer schema with RuntimeError; a directory we cannot create is OSError.
            if isinstance(exc, (sqlite3.Error, RuntimeError, OSError)):
                raise StorageError(f"cannot open the database at {self.path}: {exc}") from exc
            raise
        self.conn = conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- transactions and the audit chain ---------------------------------------------------

    def now(self) -> str:
        return rfc3339(self.clock.now())

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back on any exception."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _audit(self, conn: sqlite3.Connection, kind: str, job_id: str | None, detail: dict[str, Any]) -> None:
        """Append one audit row chained to the previous one. ``detail`` must hold no personal data."""
        at = self.now()
        body = json.dumps(detail, sort_keys=True, separators=(",", ":"))
        row = conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS_HASH
        digest = hashlib.sha256("\n".join([prev, at, kind, job_id or "", body]).encode()).hexdigest()
        conn.execute("INSERT INTO audit (at, kind, job_id, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                     (at, kind, job_id, body, prev, digest))

    def verify_audit_chain(self) -> int:
        """Recompute the audit chain; return the number of rows, or raise StorageError at the first break."""
        prev, count = GENESIS_HASH, 0
        for row in self.conn.execute("SELECT id, at, kind, job_id, detail, prev_hash, hash FROM audit ORDER BY id"):
            expected = hashlib.sha256("\n".join([prev, row["at"], row["kind"], row["job_id"] or "",
                                                 row["detail"]]).encode()).hexdigest()
            if row["prev_hash"] != prev or row["hash"] != expected:
                raise StorageError(f"the audit chain breaks at row {row['id']}")
            prev, count = row["hash"], count + 1
        return count

    # -- jobs ---------------------------------------------------------------------------------

    def _job_row(self, conn, job_id: str) -> sqlite3.Row | None:
        return conn.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """The job view of ``job_id``, or None."""
        row = self._job_row(self.conn, job_id)
        return J.job_view(dict(row)) if row else None

    def submit_job(self, job: J.NewJob) -> tuple[dict[str, Any], bool]:
        """Queue ``job``. Returns ``(view, resubmitted)``.

        The same ``job_id`` with the same content answers the existing job (a QoS 1 redelivery or
        a producer's retry); different content is ``job_id_conflict``; a record already held by
        another job is ``duplicate_record``.
        """
        with self.transaction() as conn:
            existing = self._job_row(conn, job.job_id)
            if existing is not None:
                if existing["content_sha256"] != job.content_sha256:
                    raise CommandError("job_id_conflict",
                                       f"job {job.job_id} was already submitted with different content; "
                                       "use a new job_id for a different job")
                return J.job_view(dict(existing)), True
            holder = conn.execute(
                "SELECT job_id, state, printed_at, updated_at FROM jobs WHERE record_id = ? AND state IN "
                "('queued', 'printing', 'printed', 'in_doubt')", (job.record_id,)).fetchone()
            if holder is not None:
                raise _duplicate_record(job.record_id, holder)
            now = self.now()
            chip = json.dumps({k: base64.b64encode(v).decode() for k, v in sorted(job.chip_files.items())}) \
                if job.chip_files is not None else None
            try:
                conn.execute(
                    "INSERT INTO jobs (job_id, record_id, card_type, nik, nik_masked, front_png, back_png, chip_files,"
                    " priority, not_after, reprint, content_sha256, state, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                    (job.job_id, job.record_id, job.card_type, job.nik, job.nik_masked, job.front_png, job.back_png,
                     chip, job.priority, rfc3339(job.not_after.astimezone(timezone.utc)) if job.not_after else None,
                     json.dumps(job.reprint) if job.reprint else None, job.content_sha256, now, now))
            except sqlite3.IntegrityError as exc:
                # The partial unique index is the last line of defence against a second card.
                raise CommandError("duplicate_record", f"record {job.record_id} already has a job") from exc
            self._audit(conn, "job_submitted", job.job_id, {"record_id": job.record_id, "card_type": job.card_type,
                                                            "priority": job.priority})
            return J.job_view(dict(self._job_row(conn, job.job_id))), False

    def queue_position(self, job_id: str) -> int | None:
        """1 for the job that prints next, None when the job is not queued."""
        row = self._job_row(self.conn, job_id)
        if row is None or row["state"] != J.QUEUED:
            return None
        ahead = self.conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND (priority > ? OR (priority = ? AND seq < ?))",
            (row["priority"], row["priority"], row["seq"])).fetchone()[0]
        return ahead + 1

    def list_jobs(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Job views, newest first."""
        if state is None:
            rows = self.conn.execute("SELECT * FROM jobs ORDER BY seq DESC LIMIT ?", (limit,))
        else:
            rows = self.conn.execute("SELECT * FROM jobs WHERE state = ? ORDER BY seq DESC LIMIT ?", (state, limit))
        return [J.job_view(dict(r)) for r in rows]

    def next_queued(self, card_types: list[str]) -> dict[str, Any] | None:
        """The job that prints next (higher priority first, then first in), with its print data."""
        marks = ",".join("?" * len(card_types))
        row = self.conn.execute(
            f"SELECT * FROM jobs WHERE state = 'queued' AND card_type IN ({marks}) ORDER BY priority DESC, seq LIMIT 1",
            card_types).fetchone()
        return dict(row) if row else None

    def _change_state(self, conn, job_id: str, new: str, kind: str, detail: dict[str, Any] | None = None,
                      **fields: Any) -> sqlite3.Row:
        """Move a job to ``new`` (checked against the state machine), set ``fields``, audit it."""
        row = self._job_row(conn, job_id)
        if row is None:
            raise KeyError(job_id)
        J.check_transition(row["state"], new)
        fields.setdefault("step", None)
        fields["state"], fields["updated_at"] = new, self.now()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        conn.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?", (*fields.values(), job_id))
        self._audit(conn, kind, job_id, {"from": row["state"], "to": new, **(detail or {})})
        return self._job_row(conn, job_id)

    def claim(self, job_id: str) -> dict[str, Any]:
        """Mark the job ``printing`` (step ``feeding``) and reserve a blank, before any card moves.

        Raises :class:`OutOfBlanks` (and changes nothing) when the card type has no blank in stock.
        """
        with self.transaction() as conn:
            job = self._job_row(conn, job_id)
            card_type = job["card_type"]
            stock = conn.execute("SELECT in_stock FROM blank_stock WHERE card_type = ?", (card_type,)).fetchone()
            if stock["in_stock"] <= 0:
                raise OutOfBlanks(card_type)
            batch = conn.execute("SELECT batch_id FROM blank_batches WHERE card_type = ? AND remaining > 0"
                                 " ORDER BY received_at, rowid LIMIT 1", (card_type,)).fetchone()
            batch_id = batch["batch_id"] if batch else None
            if batch_id:
                conn.execute("UPDATE blank_batches SET remaining = remaining - 1 WHERE batch_id = ?", (batch_id,))
            conn.execute("UPDATE blank_stock SET in_stock = in_stock - 1, reserved = reserved + 1 WHERE card_type = ?",
                         (card_type,))
            self._movement(conn, card_type, "reserved", 1, batch_id, job_id)
            row = self._change_state(conn, job_id, J.PRINTING, "job_claimed", {"batch_id": batch_id},
                                     step="feeding", attempts=job["attempts"] + 1, batch_id=batch_id, reason=None)
            return dict(row)

    def set_step(self, job_id: str, step: str) -> dict[str, Any]:
        """Record the printing step a job has reached."""
        with self.transaction() as conn:
            conn.execute("UPDATE jobs SET step = ?, updated_at = ? WHERE job_id = ? AND state = 'printing'",
                         (step, self.now(), job_id))
            self._audit(conn, "job_step", job_id, {"step": step})
            return J.job_view(dict(self._job_row(conn, job_id)))

    def mark_printed(self, job_id: str, card_uid: str | None) -> dict[str, Any]:
        """The card left the printer: the job is ``printed``, the record enters the ledger, the blank is used."""
        with self.transaction() as conn:
            job = self._job_row(conn, job_id)
            now = self.now()
            row = self._change_state(conn, job_id, J.PRINTED, "job_printed", {"card_uid": card_uid},
                                     printed_at=now, card_uid=card_uid)
            conn.execute("INSERT INTO printed_records (record_id, job_id, card_type, printed_at, card_uid, batch_id)"
                         " VALUES (?, ?, ?, ?, ?, ?)", (job["record_id"], job_id, job["card_type"], now, card_uid,
                                                        job["batch_id"]))
            self._use_reserved(conn, job, "printed", None)
            return J.job_view(dict(row))

    def mark_spoiled(self, job_id: str, reason: str, max_attempts: int) -> dict[str, Any]:
        """The card went to the reject box: its blank is spoiled; the job is re-queued or, out of attempts, failed."""
        with self.transaction() as conn:
            job = self._job_row(conn, job_id)
            self._use_reserved(conn, job, "spoiled", reason)
            new = J.QUEUED if job["attempts"] < max_attempts else J.FAILED
            row = self._change_state(conn, job_id, new, "job_spoiled", {"reason": reason}, reason=reason)
            return J.job_view(dict(row))

    def release_claim(self, job_id: str, reason: str) -> dict[str, Any]:
        """No card was fed after all (the feeder was empty): the blank goes back to stock, the job to the queue,
        and the attempt does not count."""
        with self.transaction() as conn:
            job = self._job_row(conn, job_id)
            card_type = job["card_type"]
            conn.execute("UPDATE blank_stock SET reserved = reserved - 1, in_stock = in_stock + 1 WHERE card_type = ?",
                         (card_type,))
            if job["batch_id"]:
                conn.execute("UPDATE blank_batches SET remaining = remaining + 1 WHERE batch_id = ?",
                             (job["batch_id"],))
            self._movement(conn, card_type, "released", 1, job["batch_id"], job_id, reason)
            row = self._change_state(conn, job_id, J.QUEUED, "job_released", {"reason": reason}, reason=reason,
                                     attempts=job["attempts"] - 1, batch_id=None)
            return J.job_view(dict(row))

    def expire_due(self, now: datetime) -> list[dict[str, Any]]:
        """Queued jobs whose ``not_after`` has passed end ``expired``."""
        due = [r[0] for r in self.conn.execute("SELECT job_id FROM jobs WHERE state = 'queued' AND not_after IS NOT NULL"
                                                " AND not_after < ?", (rfc3339(now.astimezone(timezone.utc)),))]
        views = []
        for job_id in due:
            with self.transaction() as conn:
                views.append(J.job_view(dict(self._change_state(conn, job_id, J.EXPIRED, "job_expired",
                                                                reason="not_after_passed"))))
        return views

    def erase_personal_data(self, now: datetime, retention_days: int) -> int:
        """Erase the full NIK, images and chip data of jobs that ended more than ``retention_days`` ago.

        What stays is what accounting needs: ids, masked NIK, states, times, card UID, batch, and the
        content hash that recognises a resubmission. Jobs in doubt keep their data until resolved.
        """
        cutoff = rfc3339((now - timedelta(days=retention_days)).astimezone(timezone.utc))
        with self.transaction() as conn:
            erased = conn.execute(
                "UPDATE jobs SET nik = NULL, front_png = NULL, back_png = NULL, chip_files = NULL, pii_erased_at = ?"
                " WHERE pii_erased_at IS NULL AND state IN ('printed', 'failed', 'cancelled', 'expired')"
                " AND updated_at < ?", (self.now(), cutoff)).rowcount
            if erased:
                self._audit(conn, "personal_data_erased", None, {"jobs": erased, "ended_before": cutoff})
            return erased

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job; cancelling a cancelled job answers it unchanged."""
        with self.transaction() as conn:
            job = self._job_row(conn, job_id)
            if job is None:
                raise CommandError("not_found", f"there is no job {job_id}")
            if job["state"] == J.CANCELLED:
                return J.job_view(dict(job))
            if job["state"] != J.QUEUED:
                raise CommandError("not_cancellable", f"job {job_id} is {job['state']}; only queued jobs can be "
                                                      "cancelled", {"state": job["state"]})
            return J.job_view(dict(self._change_state(conn, job_id, J.CANCELLED, "job_cancelled",
                                                      reason="cancelled")))

    def _use_reserved(self, conn, job, kind: str, reason: str | None) -> None:
        card_type = job["card_type"]
        conn.execute(f"UPDATE blank_stock SET reserved = reserved - 1, {kind} = {kind} + 1 WHERE card_type = ?",
                     (card_type,))
        self._movement(conn, card_type, kind, 1, job["batch_id"], job["job_id"], reason)

    def mark_in_doubt(self, job_id: str, reason: str) -> dict[str, Any]:
        """The card's fate is unknown: the job waits for an operator's ``job/resolve``, its blank stays reserved."""
        with self.transaction() as conn:
            return J.job_view(dict(self._change_state(conn, job_id, J.IN_DOUBT, "job_in_doubt", {"why": reason},
                                                      reason=reason)))

    def recover_in_doubt(self) -> list[dict[str, Any]]:
        """At start: every job still ``printing`` lost track of its card; it becomes ``in_doubt``, never re-queued."""
        ids = [r[0] for r in self.conn.execute("SELECT job_id FROM jobs WHERE state = 'printing' ORDER BY seq")]
        return [self.mark_in_doubt(job_id, "interrupted") for job_id in ids]

    # -- blanks -------------------------------------------------------------------------------

    def _movement(self, conn, card_type, kind, count, batch_id=None, job_id=None, reason=None) -> None:
        conn.execute("INSERT INTO blank_movements (at, card_type, kind, count, batch_id, job_id, reason)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)", (self.now(), card_type, kind, count, batch_id, job_id, reason))

    def receive_blanks(self, batch_id: str, card_type: str, count: int, note: str | None) -> int:
        """Add a batch of blanks; the same batch twice with the same content counts once. Returns in_stock."""
        with self.transaction() as conn:
            existing = conn.execute("SELECT * FROM blank_batches WHERE batch_id = ?", (batch_id,)).fetchone()
            if existing is not None:
                if (existing["card_type"], existing["count"]) != (card_type, count):
                    raise CommandError("batch_conflict",
                                       f"batch {batch_id} was already received as {existing['count']} "
                                       f"{existing['card_type']} blanks; use a new batch_id for a different batch")
            else:
                conn.execute("INSERT INTO blank_batches (batch_id, card_type, count, remaining, note, received_at)"
                             " VALUES (?, ?, ?, ?, ?, ?)", (batch_id, card_type, count, count, note, self.now()))
                conn.execute("UPDATE blank_stock SET received = received + ?, in_stock = in_stock + ?"
                             " WHERE card_type = ?", (count, count, card_type))
                self._movement(conn, card_type, "received", count, batch_id)
                self._audit(conn, "blanks_received", None, {"batch_id": batch_id, "card_type": card_type,
                                                            "count": count})
            return conn.execute("SELECT in_stock FROM blank_stock WHERE card_type = ?", (card_type,)).fetchone()[0]

    def stock(self) -> dict[str, dict[str, int]]:
        """Per card type: received, adjusted, in_stock, reserved, printed, spoiled."""
        return {r["card_type"]: {k: r[k] for k in r.keys() if k != "card_type"}
                for r in self.conn.execute("SELECT * FROM blank_stock ORDER BY card_type")}

    # -- station ------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Number of jobs in each state."""
        counts = {state: 0 for state in J.STATES}
        for state, n in self.conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            counts[state] = n
        return counts

    def cards_started_between(self, start: datetime, end: datetime) -> dict[str, int]:
        """Blanks fed (printed or spoiled or in hand) between two instants: what used the head."""
        bounds = (rfc3339(start.astimezone(timezone.utc)), rfc3339(end.astimezone(timezone.utc)))
        counts = dict(self.conn.execute("SELECT kind, COUNT(*) FROM blank_movements WHERE at >= ? AND at < ?"
                                        " GROUP BY kind", bounds).fetchall())
        return {"started": counts.get("reserved", 0), "printed": counts.get("printed", 0),
                "spoiled": counts.get("spoiled", 0)}

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str | None, kind: str, detail: dict[str, Any]) -> bool:
        """Set (or with None, clear) a station setting; audited. Returns whether anything changed."""
        with self.transaction() as conn:
            old = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            if (old[0] if old else None) == value:
                return False
            if value is None:
                conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                             (key, value, value))
            self._audit(conn, kind, None, detail)
            return True


def _duplicate_record(record_id: str, holder: sqlite3.Row) -> CommandError:
    if holder["state"] == J.PRINTED:
        message = f"record {record_id} was printed at {holder['printed_at']} (job {holder['job_id']})"
    else:
        message = f"record {record_id} already has job {holder['job_id']} ({holder['state']})"
    return CommandError("duplicate_record", message + "; a record is printed at most once",
                        {"job_id": holder["job_id"], "state": holder["state"]})
