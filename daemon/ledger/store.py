"""The SQLite store: jobs, the printed-records ledger, blank stock and the audit chain, one transaction per change."""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import sqlite3
from contextlib import contextmanager
from typing import Any, Iterator

from ..rules import jobs as J
from ..rules.clock import Clock, rfc3339
from ..rules.errors import StorageError
from ..ledger.blank_ledger import BlankLedger, OutOfBlanks
from ..ledger.actors import current_actor
from ..ledger.job_ledger import JobLedger
from ..ledger.request_memory import RequestMemory
from ..ledger.schema import migrate

GENESIS_HASH = "0" * 64
__all__ = ["Store", "OutOfBlanks", "GENESIS_HASH", "verify_audit_chain"]


class Store(JobLedger, BlankLedger, RequestMemory):
    """The one writer of the database. Every method runs on the caller's thread: the daemon calls
    them from its single store thread, tests call them directly.

    Every state change runs inside :meth:`transaction`, which also appends its audit row, so a
    change and its record are committed together or not at all.
    """

    def __init__(self, path: str, clock: Clock):
        self.path = path
        self.clock = clock
        self.conn: sqlite3.Connection | None = None
        self._nik_key: bytes | None = None
        self._lock_handle = None
        self._nesting = 0           # transactions open: an inner one is a savepoint of the outer

    # -- opening -----------------------------------------------------------------------------

    def open(self) -> None:
        """Open (creating if needed), migrate and quick-check the database. Raises StorageError."""
        conn = None
        try:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            self._lock_exclusively()
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
            self.conn = conn
            self._ensure_station_key()
        except BaseException as exc:
            # A refused file must not stay open (it would hold a descriptor and, in WAL mode, locks).
            self.conn = None
            if conn is not None:
                conn.close()
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
        """A keyed hash of a NIK: it outlives the erased NIK for the one-card-per-NIK rule, and the key,
        random per station, keeps a copied hash from being matched against a list of NIKs elsewhere."""
        if self._nik_key is None:
            self._nik_key = bytes.fromhex(self.get_setting("nik_hmac_key"))
        return hmac.new(self._nik_key, nik.encode("ascii", "replace"), hashlib.sha256).hexdigest()

    def _ensure_station_key(self) -> None:
        if self.get_setting("nik_hmac_key") is None:
            # Set-up, not a state change: no audit row (and the key must never be copied into one).
            with self.transaction() as conn:
                conn.execute("INSERT INTO settings (key, value) VALUES ('nik_hmac_key', ?)", (os.urandom(32).hex(),))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self._unlock()

    # -- transactions and the audit chain ---------------------------------------------------

    def now(self) -> str:
        return rfc3339(self.clock.now())

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back on any exception. Opened inside another one
        (a change and the memory of the request that asked for it), it is a savepoint of the outer one:
        its exception rolls back its own changes, and only the outer one commits."""
        conn = self.conn
        inner = self._nesting > 0
        conn.execute("SAVEPOINT inner" if inner else "BEGIN IMMEDIATE")
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
        conn.execute("RELEASE inner" if inner else "COMMIT")

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
