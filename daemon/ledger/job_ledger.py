"""The jobs half of the store: submit, claim, step, printed, spoiled, in doubt, cancel, expire, erase."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from typing import Any

from ..rules import jobs as J
from ..rules.clock import rfc3339
from ..ledger.blank_ledger import OutOfBlanks
from ..ledger.light_commit import light_transaction
from ..ledger.request_memory import Repeat, RequestIdReused, error_body
from ..rules.errors import CommandError


class PersonalDataMissing(Exception):
    """The job chosen to print has no personal data (the personal-data file was lost or restored from an
    older copy): it ended ``failed`` with reason ``personal_data_missing``; ``view`` is its job view."""

    def __init__(self, view: dict[str, Any]):
        super().__init__(f"job {view['job_id']} has no personal data to print")
        self.view = view


class JobLedger:
    """Job methods of :class:`~kartud.ledger.store.Store` (which provides ``transaction``, ``_audit``,
    ``now`` and the blank-ledger methods). Every change is one transaction with its audit row."""

    def _job_row(self, conn, job_id: str) -> sqlite3.Row | None:
        return conn.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """The job view of ``job_id``, or None."""
        row = self._job_row(self.conn, job_id)
        return J.job_view(dict(row)) if row else None

    def submit_job(self, job: J.NewJob) -> tuple[dict[str, Any], bool]:
        """Queue ``job``. Returns ``(view, resubmitted)`` or raises the refusal (see :meth:`submit_jobs`)."""
        result = self.submit_jobs([job])[0]
        if isinstance(result, CommandError):
            raise result
        return result[0], result[1]

    def submit_jobs(self, jobs: list[J.NewJob]) -> list[tuple[dict[str, Any], bool, int | None] | CommandError]:
        """Queue several jobs in ONE transaction (group commit: one fsync for all), each in its own
        savepoint so that one refusal leaves the others alone. Returns, per job, ``(view, resubmitted,
        queue_position)``, the :class:`CommandError` refusing it, or the :class:`Repeat` of a request
        done before (a job whose ``memo`` names a request already answered).

        The same ``job_id`` with the same content answers the existing job (a QoS 1 redelivery or a
        producer's retry); different content is ``job_id_conflict``; a record already held by another
        job is ``duplicate_record``; a NIK that already has a card of the type, without ``reprint``,
        is ``duplicate_nik``. Each job's request is remembered with its answer in this transaction.
        """
        results: list = []
        with self.transaction() as conn:
            for keep_days in {job.memo.keep_days for job in jobs if job.memo}:
                self._prune(conn, keep_days)
            for job in jobs:
                conn.execute("SAVEPOINT submit")
                done = None
                try:
                    done = self._recall(conn, job.memo) if job.memo else None
                    results.append(done or self._submit_one(conn, job))
                except CommandError as refusal:
                    conn.execute("ROLLBACK TO submit")
                    results.append(refusal)
                if job.memo and done is None and not isinstance(results[-1], RequestIdReused):
                    self._remember(conn, job.memo, None)     # answered below, once queue positions are known
                conn.execute("RELEASE submit")
            results = self._with_positions(conn, results)
            for job, result in zip(jobs, results):
                if job.memo and not isinstance(result, (Repeat, RequestIdReused)):
                    self._fill(conn, job.memo.request_id, error_body(result) if isinstance(result, CommandError)
                               else {"status": "ok", "data": J.submit_answer(*result)})
            # A repeat within this very batch reads the answer just written.
            return [self._recall(conn, job.memo) if isinstance(r, Repeat) and r.body is None else r
                    for job, r in zip(jobs, results)]

    def _with_positions(self, conn, results: list) -> list:
        """Add each new job's queue position, from one count per priority rather than one scan per job.

        New jobs have the highest sequence numbers, so the jobs ahead of one are all of higher priority
        plus those of its own priority except itself and the new ones inserted after it."""
        per_priority = self.queued_counts("priority")
        later_same: dict[int, int] = {}
        out: list = [None] * len(results)
        for i in range(len(results) - 1, -1, -1):
            result = results[i]
            if isinstance(result, (CommandError, Repeat)):
                out[i] = result
                continue
            view, resubmitted = result
            if resubmitted:
                out[i] = (view, True, self.queue_position(view["job_id"]))
                continue
            priority = view["priority"]
            higher = sum(n for p, n in per_priority.items() if p > priority)
            out[i] = (view, False, higher + per_priority.get(priority, 0) - later_same.get(priority, 0))
            later_same[priority] = later_same.get(priority, 0) + 1
        return out

    def _submit_one(self, conn, job: J.NewJob) -> tuple[dict[str, Any], bool]:
        existing = self._job_row(conn, job.job_id)
        if existing is not None:
            if not job.has_hash(existing["content_sha256"]):
                raise CommandError("job_id_conflict", f"job {job.job_id} was already submitted with different "
                                                      "content; use a new job_id for a different job")
            return J.job_view(dict(existing)), True
        if job.not_after is not None and job.not_after <= self.clock.now():
            raise CommandError("expired", f"not_after {job.not_after.isoformat()} has already passed; the job would "
                                          "never start. Send it again with a later not_after, or none")
        holder = conn.execute(
            "SELECT job_id, state, printed_at, updated_at FROM jobs WHERE record_id = ? AND state IN "
            "('queued', 'printing', 'printed', 'in_doubt')", (job.record_id,)).fetchone()
        if holder is not None:
            raise _duplicate_record(job.record_id, holder)
        nik_hmac = self.nik_hmac(job.nik)
        _refuse_a_second_reprint(conn, job, nik_hmac)
        if job.reprint is None:
            same_person = conn.execute(
                "SELECT job_id, state FROM jobs WHERE nik_hmac = ? AND card_type = ? AND state IN "
                "('queued', 'printing', 'printed', 'in_doubt') ORDER BY seq LIMIT 1",
                (nik_hmac, job.card_type)).fetchone()
            if same_person is not None:
                done = "was already printed" if same_person["state"] == J.PRINTED else "is already on its way"
                raise CommandError("duplicate_nik", f"a {job.card_type} card for this NIK {done} (job "
                                                    f"{same_person['job_id']}); a citizen holds one card of a type: "
                                                    "send \"reprint\" with reason lost, damaged or data_change",
                                   {"job_id": same_person["job_id"], "state": same_person["state"]})
        now = self.now()
        try:
            conn.execute(
                "INSERT INTO jobs (job_id, record_id, card_type, nik_masked, nik_hmac, priority, not_after, reprint,"
                " content_sha256, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                (job.job_id, job.record_id, job.card_type, job.nik_masked, nik_hmac, job.priority,
                 rfc3339(job.not_after.astimezone(timezone.utc)) if job.not_after else None,
                 json.dumps(job.reprint) if job.reprint else None, job.content_sha256, now, now))
        except sqlite3.IntegrityError as exc:
            # The partial unique index is the last line of defence against a second card.
            raise CommandError("duplicate_record", f"record {job.record_id} already has a job") from exc
        # The full NIK is kept nowhere: its masked form and keyed hash are all the ledger needs.
        self._keep_personal(job.job_id, (job.front_png, job.back_png, job.chip_files))
        self._audit(conn, "job_submitted", job.job_id, {"record_id": job.record_id, "card_type": job.card_type,
                                                        "priority": job.priority,
                                                        "reprint": (job.reprint or {}).get("reason")})
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
        """The job that prints next (higher priority first, then first in); :meth:`claim` adds its print data."""
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
        fields.setdefault("step", row["step"] if new == J.IN_DOUBT else None)   # in doubt: where the card was
        fields["state"], fields["updated_at"] = new, self.now()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        conn.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?", (*fields.values(), job_id))
        self._audit(conn, kind, job_id, {"from": row["state"], "to": new, **(detail or {})})
        return self._job_row(conn, job_id)

    def claim(self, job_id: str) -> dict[str, Any] | None:
        """Mark the job ``printing`` (step ``feeding``) and reserve a blank, before any card moves.

        The job was chosen a moment ago, and requests are answered meanwhile: this transaction looks
        again. When the job may no longer start (it left the queue: cancelled, expired, resolved; its
        ``not_after`` has passed; or the queue was paused since) it returns None and changes nothing.
        Raises :class:`OutOfBlanks` (and changes nothing) when the card type has no blank in stock, and
        :class:`PersonalDataMissing` (the job ended failed) when there is nothing to print it from.
        The claimed job comes with its ``front_png``, ``back_png`` and ``chip_files`` (by file id).
        """
        data = self.personal.job_data(job_id)
        with self.transaction() as conn:
            job = self._job_row(conn, job_id)
            if not self._claimable(conn, job):
                return None
            if data is not None:
                return {**self._reserve_and_start(conn, job), **data}
            lost = J.job_view(dict(self._change_state(conn, job_id, J.FAILED, "job_failed",
                                                      {"why": "personal_data_missing"}, reason="personal_data_missing")))
        raise PersonalDataMissing(lost)

    def _reserve_and_start(self, conn, job: sqlite3.Row) -> dict[str, Any]:
        job_id, card_type = job["job_id"], job["card_type"]
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
        return dict(self._change_state(conn, job_id, J.PRINTING, "job_claimed", {"batch_id": batch_id},
                                       step="feeding", attempts=job["attempts"] + 1, batch_id=batch_id, reason=None))

    def _claimable(self, conn, job: sqlite3.Row | None) -> bool:
        """May ``job`` start now, as the ledger stands inside this transaction?"""
        if job is None or job["state"] != J.QUEUED:
            return False
        if job["not_after"] is not None and datetime.fromisoformat(job["not_after"]) < self.clock.now():
            return False                  # the press's expiry sweep ends it next
        paused = conn.execute("SELECT 1 FROM settings WHERE key = 'paused_reason'").fetchone()
        return paused is None

    def set_step(self, job_id: str, step: str) -> dict[str, Any]:
        """Record the printing step a job has reached, without an fsync of its own (:mod:`.light_commit`): the
        job is ``printing`` from its claim (fsynced) to its end (fsynced), and a power cut that loses a step
        leaves it ``printing`` at an earlier step, which the start-up makes ``in_doubt`` as at any step. Only
        ``in_doubt_step`` can then name an earlier step than the card had reached."""
        with light_transaction(self) as conn:
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
        """The card went to the reject box: its blank is spoiled; the job is re-queued or, out of attempts or
        for a reason another blank cannot change (``J.NOT_RETRIED``: chip_too_large), failed."""
        with self.transaction() as conn:
            job = self._job_row(conn, job_id)
            self._use_reserved(conn, job, "spoiled", reason)
            retry = job["attempts"] < max_attempts and reason not in J.NOT_RETRIED
            row = self._change_state(conn, job_id, J.QUEUED if retry else J.FAILED, "job_spoiled", {"reason": reason},
                                     reason=reason)
            return J.job_view(dict(row))

    def release_claim(self, job_id: str, reason: str) -> dict[str, Any]:
        """No card was fed after all (the feeder was empty): the blank goes back to stock, the job to the queue,
        and the attempt does not count."""
        with self.transaction() as conn:
            job = self._job_row(conn, job_id)
            self._take_back(conn, job, reason)
            row = self._change_state(conn, job_id, J.QUEUED, "job_released", {"reason": reason}, reason=reason,
                                     attempts=job["attempts"] - 1, batch_id=None)
            return J.job_view(dict(row))

    def next_expiry(self) -> datetime | None:
        """The earliest ``not_after`` among queued jobs: the next instant a job may expire."""
        # INDEXED BY: left alone, SQLite walks jobs_queue (every queued job) instead of this partial index.
        row = self.conn.execute("SELECT MIN(not_after) FROM jobs INDEXED BY jobs_queued_not_after"
                                " WHERE state = 'queued' AND not_after IS NOT NULL").fetchone()
        return datetime.fromisoformat(row[0]) if row[0] else None

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

    def mark_in_doubt(self, job_id: str, reason: str) -> dict[str, Any]:
        """The card's fate is unknown: the job waits for an operator's ``job/resolve``, its blank stays reserved."""
        with self.transaction() as conn:
            return J.job_view(dict(self._change_state(conn, job_id, J.IN_DOUBT, "job_in_doubt", {"why": reason},
                                                      reason=reason)))

    def resolve_in_doubt(self, job_id: str, outcome: str, note: str, max_attempts: int,
                         attempts: int | None = None) -> dict[str, Any]:
        """An operator looked at the card of an in-doubt job: ``printed`` makes it final (the record
        enters the ledger, the blank is printed); ``spoiled`` voids the blank and re-queues the job.
        The same resolution twice has one effect. With ``attempts`` (what the operator saw in the job
        view), a decision about an earlier card of the job is refused ``stale_request``."""
        with self.transaction() as conn:
            job = self._job_row(conn, job_id)
            if job is None:
                raise CommandError("not_found", f"there is no job {job_id}")
            if attempts is not None and attempts != job["attempts"]:
                raise CommandError("stale_request", f"job {job_id} is at attempt {job['attempts']}, not {attempts}: "
                                                    "that decision was about an earlier card; look at the job again",
                                   {"attempts": job["attempts"], "state": job["state"]})
            if job["state"] != J.IN_DOUBT:
                if job["resolution"] == outcome:
                    return J.job_view(dict(job))
                raise CommandError("not_in_doubt", f"job {job_id} is {job['state']}, not in doubt; nothing to resolve",
                                   {"state": job["state"]})
            detail = {"outcome": outcome, "note": note}
            if outcome == J.PRINTED:
                now = self.now()
                row = self._change_state(conn, job_id, J.PRINTED, "job_resolved", detail, printed_at=now,
                                         resolution=outcome, reason="resolved_printed")
                conn.execute("INSERT INTO printed_records (record_id, job_id, card_type, printed_at, card_uid,"
                             " batch_id) VALUES (?, ?, ?, ?, ?, ?)", (job["record_id"], job_id, job["card_type"], now,
                                                                    job["card_uid"], job["batch_id"]))
                self._use_reserved(conn, job, "printed", None)
            else:
                self._use_reserved(conn, job, "spoiled", "in_doubt_spoiled")
                row = self._change_state(conn, job_id, J.QUEUED, "job_resolved", detail, resolution=outcome,
                                         reason="resolved_spoiled")
            return J.job_view(dict(row))

    def recover_in_doubt(self) -> list[dict[str, Any]]:
        """At start: every job still ``printing`` lost track of its card; it becomes ``in_doubt``, never re-queued.
        One transaction finds and changes them, so no other change can land between the two."""
        with self.transaction() as conn:
            ids = [r[0] for r in conn.execute("SELECT job_id FROM jobs WHERE state = 'printing' ORDER BY seq")]
            return [J.job_view(dict(self._change_state(conn, job_id, J.IN_DOUBT, "job_in_doubt", {"why": "interrupted"},
                                                       reason="interrupted"))) for job_id in ids]


def _duplicate_record(record_id: str, holder: sqlite3.Row) -> CommandError:
    if holder["state"] == J.PRINTED:
        message = f"record {record_id} was printed at {holder['printed_at']} (job {holder['job_id']})"
    else:
        message = f"record {record_id} already has job {holder['job_id']} ({holder['state']})"
    return CommandError("duplicate_record", message + "; a record is printed at most once",
                        {"job_id": holder["job_id"], "state": holder["state"]})


def _refuse_a_second_reprint(conn, job: J.NewJob, nik_hmac: str) -> None:
    """A reprint is one card, not a licence: while another job for the same NIK (its keyed hash) and card
    type is queued, printing or in doubt, a ``reprint`` job is refused ``duplicate_nik``. It needs no
    earlier card on this station (the first may have been printed elsewhere)."""
    if job.reprint is None:
        return
    on_its_way = conn.execute("SELECT job_id, state FROM jobs WHERE nik_hmac = ? AND card_type = ? AND state IN"
                              " ('queued', 'printing', 'in_doubt') ORDER BY seq LIMIT 1",
                              (nik_hmac, job.card_type)).fetchone()
    if on_its_way is not None:
        raise CommandError("duplicate_nik", f"a {job.card_type} card for this NIK is already on its way (job "
                                            f"{on_its_way['job_id']}, {on_its_way['state']}); a reprint is one card: "
                                            "wait until that job has ended, or cancel it",
                           {"job_id": on_its_way["job_id"], "state": on_its_way["state"]})
