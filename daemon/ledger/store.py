"""The SQLite store: jobs, the printed-records ledger, blank stock and the audit chain, one transaction per change."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import logging
import os
import sqlite3
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from ..rules import jobs as J
from ..rules.clock import Clock, rfc3339
from ..rules.errors import StorageError
from ..ledger import clean_stop
from ..ledger.blank_ledger import BlankLedger, OutOfBlanks
from ..ledger.actors import current_actor
from ..ledger.erasure import Erasure, minimise_answers
from ..ledger.job_ledger import JobLedger, PersonalDataMissing
from ..ledger.personal import PersonalFile, checkpoint, personal_path
from ..ledger.request_memory import RequestMemory
from ..ledger.schema import migrate

GENESIS_HASH = "0" * 64
KEY_BYTES = 32
OLD_KEY_SETTING = "nik_hmac_key"        # where kartud before schema 8 kept the key, in this database
KEY_CHECK_SETTING = "nik_key_check"     # a value derived from the key: tells a replaced key, reveals nothing
__all__ = ["Store", "OutOfBlanks", "PersonalDataMissing", "GENESIS_HASH", "verify_audit_chain"]
log = logging.getLogger("kartud.store")


class _Pending:
    """Personal-data writes of the open transaction, made just before the ledger commits."""

    def __init__(self):
        self.jobs: dict[str, tuple] = {}
        self.payloads: dict[int, bytes] = {}
        self.forget_jobs: set[str] = set()
        self.forget_payloads: set[int] = set()


class Store(JobLedger, BlankLedger, RequestMemory, Erasure):
    """The one writer of the database. Every method runs on the caller's thread: the daemon calls
    them from its single store thread, tests call them directly.

    Every state change runs inside :meth:`transaction`, which also appends its audit row, so a
    change and its record are committed together or not at all. Personal data goes to its own file
    (:class:`~kartud.ledger.personal.PersonalFile`), committed just before the ledger.

    ``key`` is the station's NIK key (:mod:`kartud.ledger.station_key`); without it the store does
    everything but hash a NIK, which submitting a job needs.
    """

    def __init__(self, path: str, clock: Clock, key: bytes | None = None):
        self.path = path
        self.clock = clock
        self.key = key
        self.conn: sqlite3.Connection | None = None
        self.personal = PersonalFile(personal_path(path))
        self._lock_handle = None
        self._nesting = 0           # transactions open: an inner one is a savepoint of the outer
        self._pending: _Pending | None = None
        self._moved_out = False
        self._out_of_step = False   # a personal-data commit whose ledger commit then failed: no clean-stop note
        self.start_check = ""       # how open() checked the files: "quick_check" or "unchanged since a clean stop"
        # Called once the personal-data file has committed and the ledger has not yet, with what was written
        # ("jobs" or "erasure"): the daemon puts a crash point there (kartud.service.crashpoints).
        self.on_personal_commit: Callable[[str], None] | None = None

    # -- opening -----------------------------------------------------------------------------

    def open(self) -> None:
        """Open (creating if needed), migrate and check the ledger and the personal-data file, settle the
        station key and (but after a clean stop) drop personal data the ledger no longer holds. Raises
        StorageError.

        The check reads every page (``PRAGMA quick_check``) unless the files are exactly as the last
        orderly stop left them (:mod:`kartud.ledger.clean_stop`); ``start_check`` says which ran."""
        conn = None
        try:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            self._lock_exclusively()
            unchanged = clean_stop.take(self.path, self._files())
            self.start_check = "unchanged since a clean stop" if unchanged else "quick_check"
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            conn.row_factory = sqlite3.Row
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StorageError(f"the database at {self.path} cannot use WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA secure_delete=ON")     # what is deleted or overwritten is zeroed, not left
            self.personal.open(whole_check=not unchanged)
            migrate(conn, prepare={8: self._move_personal_data_out})
            if self._moved_out:
                conn.execute("VACUUM")                  # no free page keeps what the old schema held
            problems = _light_check(conn, self.path) if unchanged else [r[0] for r in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise StorageError(f"the database at {self.path} is damaged: {'; '.join(problems[:3])}")
            log.info("database checked: %s", "every page (quick_check)" if not unchanged else
                     "its files are as the last clean stop left them, so its schema only")
            self.conn = conn
            self._settle_key()
            if not unchanged:       # after a clean stop the two files are in step: no scan of every job in both
                self._drop_what_the_ledger_does_not_hold()
            if self._moved_out:
                self.checkpoint()
        except BaseException as exc:
            # A refused file must not stay open (it would hold a descriptor and, in WAL mode, locks).
            self.conn = None
            if conn is not None:
                conn.close()
            self.personal.close()
            self._unlock()
            # migrate() refuses a newer schema with RuntimeError; a directory we cannot create is OSError.
            if isinstance(exc, (sqlite3.Error, RuntimeError, OSError)):
                raise StorageError(f"cannot open the database at {self.path}: {exc}") from exc
            raise

    def _lock_exclusively(self) -> None:
        """One daemon per database: two would print the same queue (and share one MQTT client id). The
        kernel drops the lock when the process dies, even by SIGKILL, so a crash never blocks a restart."""
        handle = open(self.path + ".lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StorageError(f"another kartud is already running with the database {self.path}") from None
        self._lock_handle = handle

    def _unlock(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def nik_hmac(self, nik: str) -> str:
        """A keyed hash of a NIK: it outlives the erased NIK for the one-card-per-NIK rule. The key, random
        per station and kept out of the database, keeps the hash from being matched against every NIK."""
        if self.key is None:
            raise StorageError("the store was opened without the station's NIK key (store.key_file)")
        return hmac.new(self.key, nik.encode("ascii", "replace"), hashlib.sha256).hexdigest()

    def _settle_key(self) -> None:
        """Delete the key an older kartud kept in the database, once the key file holds the same key; note a
        key that changed (a lost key replaced): jobs hashed before are not matched by the new one."""
        if self.key is None:
            return
        check = hmac.new(self.key, b"kartud station key check", hashlib.sha256).hexdigest()[:16]
        old, known = self.get_setting(OLD_KEY_SETTING), self.get_setting(KEY_CHECK_SETTING)
        if old is not None and old != self.key.hex():
            raise StorageError("the database holds the NIK key its hashes were made with, and store.key_file holds "
                               "another: move the key file away and run `kartud make-key`, which writes the "
                               "database's key to it")
        if old is None and known == check:
            return
        with self.transaction() as conn:
            conn.execute("DELETE FROM settings WHERE key = ?", (OLD_KEY_SETTING,))
            conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                         (KEY_CHECK_SETTING, check, check))
            if old is not None:
                self._audit(conn, "station_key_moved_out", None, {"to": "store.key_file"})
            elif known is not None:
                hashed = conn.execute("SELECT COUNT(*) FROM jobs WHERE nik_hmac IS NOT NULL").fetchone()[0]
                self._audit(conn, "station_key_changed", None, {"jobs_hashed_before": hashed})
                log.warning("the station's NIK key is not the one this database's %d jobs were hashed with (a lost "
                            "key replaced?): the one-card-per-NIK check no longer knows those jobs' cards", hashed)
        if old is not None:
            self.checkpoint()                   # the key's bytes leave the write-ahead log too
            log.info("the station's NIK key was deleted from the database: it lives in store.key_file only")

    def _move_personal_data_out(self, conn: sqlite3.Connection) -> None:
        """Migration 8's first part: the personal data of an older schema into the personal-data file,
        committed there before the ledger drops it (a crash between the two moves it again)."""
        batch: dict[str, tuple] = {}
        for row in conn.execute("SELECT job_id, front_png, back_png, chip_files FROM jobs "
                                "WHERE pii_erased_at IS NULL AND front_png IS NOT NULL"):
            chip = {int(k, 16): base64.b64decode(v) for k, v in json.loads(row[3]).items()} if row[3] else None
            batch[row[0]] = (row[1], row[2], chip)
            if len(batch) >= 200:
                self.personal.apply(batch, {}, set(), set())
                batch = {}
        payloads = dict(conn.execute("SELECT seq, payload FROM quarantine WHERE payload IS NOT NULL").fetchall())
        self.personal.apply(batch, payloads, set(), set())
        minimise_answers(conn, {r[0] for r in conn.execute("SELECT job_id FROM jobs WHERE pii_erased_at IS NOT NULL")})
        self._moved_out = True

    def _drop_what_the_ledger_does_not_hold(self) -> None:
        """At start: personal data of no unerased job (a crash between the two commits) goes; a kept payload
        the personal-data file lost is listed as erased."""
        jobs = {r[0] for r in self.conn.execute("SELECT job_id FROM jobs WHERE pii_erased_at IS NULL")}
        payloads = {r[0] for r in self.conn.execute("SELECT seq FROM quarantine WHERE payload_kept = 1")}
        if self.personal.keep_only(jobs, payloads):
            self.personal.checkpoint()
        lost = payloads - self.personal.held()[1]
        if lost:
            with self.transaction() as conn:
                conn.executemany("UPDATE quarantine SET payload_kept = 0 WHERE seq = ?", [(s,) for s in lost])

    def checkpoint(self) -> bool:
        """Truncate both write-ahead logs (after an erasure: nothing erased stays in them). False when a reader
        of the ledger held it past two seconds; the next erasure run tries again."""
        self.personal.checkpoint()
        self.conn.execute("PRAGMA busy_timeout=2000")      # never hold the store thread long for a reader
        try:
            return checkpoint(self.conn)
        finally:
            self.conn.execute("PRAGMA busy_timeout=10000")

    def close(self, clean: bool = False) -> None:
        """Close both files. ``clean``: an orderly stop that met no database error, so the next start may
        skip the full check, and the scan for personal data the ledger does not hold, if the files stay as
        they are now (:mod:`kartud.ledger.clean_stop`); a commit of the two files that failed halfway
        leaves no note all the same."""
        was_open = self.conn is not None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.personal.close()
        if clean and was_open and not self._out_of_step:
            clean_stop.leave(self.path, self._files())   # while still locked: no other kartud writes meanwhile
        self._unlock()

    def release_memory(self) -> None:
        """Let go of both connections' page caches (after a burst; they fill again as needed), so that the
        memory they held can go back to the system."""
        for conn in (self.conn, self.personal.conn):
            if conn is not None:
                conn.execute("PRAGMA shrink_memory")

    def _files(self) -> list[str]:
        """Every file the start check vouches for: the ledger, the personal-data file, and their WALs."""
        return [self.path, self.path + "-wal", self.personal.path, self.personal.path + "-wal"]

    # -- transactions and the audit chain ---------------------------------------------------

    def now(self) -> str:
        return rfc3339(self.clock.now())

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back on any exception. Opened inside another one
        (a change and the memory of the request that asked for it), it is a savepoint of the outer one:
        its exception rolls back its own changes, and only the outer one commits.

        Personal data the transaction kept or erased (:meth:`_keep_personal`, :meth:`_forget_personal`)
        is committed to the personal-data file first, as the ledger transaction stands at its end; then
        the ledger commits. :mod:`kartud.ledger.personal` says what a crash between the two leaves."""
        conn = self.conn
        inner = self._nesting > 0
        conn.execute("SAVEPOINT inner" if inner else "BEGIN IMMEDIATE")
        if not inner:
            self._pending = _Pending()
        self._nesting += 1
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO inner" if inner else "ROLLBACK")
            if inner:
                conn.execute("RELEASE inner")
            raise
        finally:
            self._nesting -= 1
            pending = self._pending
            if not inner:
                self._pending = None
        if inner:
            conn.execute("RELEASE inner")
            return
        try:
            written = self._commit_personal(conn, pending)
        except BaseException:
            self._out_of_step = True
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            self._out_of_step = True
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if written:                         # best effort; the next start drops them in any case
                self.personal.apply({}, {}, written[0], written[1])
            raise

    def _keep_personal(self, job_id: str, data: tuple) -> None:
        """Keep a job's ``(front_png, back_png, chip_files)`` in the personal-data file with this transaction."""
        self._pending.jobs[job_id] = data

    def _keep_payload(self, seq: int, payload: bytes) -> None:
        self._pending.payloads[seq] = payload

    def _forget_personal(self, job_ids, seqs=()) -> None:
        """Erase these jobs' personal data and these quarantined payloads with this transaction."""
        self._pending.forget_jobs.update(job_ids)
        self._pending.forget_payloads.update(seqs)

    def _commit_personal(self, conn, pending: _Pending) -> tuple | None:
        """Commit to the personal-data file what the ledger transaction, as it stands, holds: data of jobs it
        has unerased, payloads it keeps, erasures it marked (a savepoint rolled back takes its part back)."""
        def holds(sql: str, keys) -> set:
            return {k for k in keys if conn.execute(sql, (k,)).fetchone()}

        jobs = holds("SELECT 1 FROM jobs WHERE job_id = ? AND pii_erased_at IS NULL", pending.jobs)
        payloads = holds("SELECT 1 FROM quarantine WHERE seq = ? AND payload_kept = 1", pending.payloads)
        forget_jobs = holds("SELECT 1 FROM jobs WHERE job_id = ? AND pii_erased_at IS NOT NULL", pending.forget_jobs)
        forget_payloads = holds("SELECT 1 FROM quarantine WHERE seq = ? AND payload_kept = 0", pending.forget_payloads)
        if not (jobs or payloads or forget_jobs or forget_payloads):
            return None
        self.personal.apply({j: pending.jobs[j] for j in jobs}, {s: pending.payloads[s] for s in payloads},
                            forget_jobs, forget_payloads)
        if self.on_personal_commit is not None:
            self.on_personal_commit("erasure" if forget_jobs or forget_payloads else "jobs")
        return jobs, payloads

    def _audit(self, conn: sqlite3.Connection, kind: str, job_id: str | None, detail: dict[str, Any]) -> None:
        """Append one audit row chained to the previous one. ``detail`` must hold no personal data. The row
        names its actor (:mod:`kartud.ledger.actors`) inside the hashed content, so it cannot be altered."""
        at = self.now()
        body = json.dumps({**detail, "actor": current_actor()}, sort_keys=True, separators=(",", ":"))
        row = conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS_HASH
        digest = hashlib.sha256("\n".join([prev, at, kind, job_id or "", body]).encode()).hexdigest()
        conn.execute("INSERT INTO audit (at, kind, job_id, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                     (at, kind, job_id, body, prev, digest))

    def verify_audit_chain(self) -> int:
        """Recompute the audit chain; return the number of rows, or raise StorageError at the first break."""
        return verify_audit_chain(self.conn)

    # -- station ------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Number of jobs in each state (from the trigger-kept job_counts, not a scan of the jobs)."""
        counts = {state: 0 for state in J.STATES}
        for state, n in self.conn.execute("SELECT state, SUM(n) FROM job_counts GROUP BY state"):
            counts[state] = n
        return counts

    def queued_counts(self, by: str) -> dict:
        """Queued jobs per ``card_type`` or per ``priority`` (constant time, see schema migration 5)."""
        column = {"card_type": "card_type", "priority": "priority"}[by]
        return {key: n for key, n in self.conn.execute(
            f"SELECT {column}, SUM(n) FROM job_counts WHERE state = 'queued' GROUP BY {column}") if n}

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


def _light_check(conn: sqlite3.Connection, path: str) -> list[str]:
    """The check of a file unchanged since a clean stop: SQLite reads its header and whole schema, and the
    pages the header counts fill the file exactly (a file cut short or grown from outside is refused)."""
    conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    if os.path.exists(path + "-wal") and os.path.getsize(path + "-wal") > 0:
        return ["ok"]                           # pages in the WAL (a migration just now): the file is not all
    page_size, pages = (conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_size", "page_count"))
    size = os.path.getsize(path)
    return ["ok"] if pages * page_size == size else [f"{size} bytes where the header counts {pages} pages"]


def verify_audit_chain(conn: sqlite3.Connection) -> int:
    """Recompute the hash chain of the audit table on any connection (read-only is enough); return the
    number of rows, or raise :class:`StorageError` naming the first row whose link is broken."""
    prev, count = GENESIS_HASH, 0
    for row_id, at, kind, job_id, detail, prev_hash, digest in conn.execute(
            "SELECT id, at, kind, job_id, detail, prev_hash, hash FROM audit ORDER BY id"):
        expected = hashlib.sha256("\n".join([prev, at, kind, job_id or "", detail]).encode()).hexdigest()
        if prev_hash != prev or digest != expected:
            raise StorageError(f"the audit chain breaks at row {row_id}")
        prev, count = digest, count + 1
    return count
