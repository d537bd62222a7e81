"""The personal-data file: each live job's faces and chip files, and quarantined payloads, readable by kartud only.

The ledger (``store.path``) is readable by the operators' group, for offline ``kartuctl``; it holds no
personal data. What is personal lives here, in ``<name>-personal.db`` beside it, created mode 0600
(its ``-wal`` and ``-shm`` take the same mode), with ``secure_delete`` on so that erased bytes are
overwritten, and checkpointed with ``TRUNCATE`` after each erasure so that no old page stays in the WAL.

Two files are two commits, and after a crash a WAL transaction over both is atomic per file only. So
the store writes the two in one order (see :meth:`Store.transaction
<kartud.ledger.store.Store.transaction>`): this file's change is committed first, inside the open
ledger transaction, then the ledger's. A crash between the two leaves rows here that the ledger does
not know (a job never acknowledged), deleted at the next start by :meth:`keep_only`; or, during an
erasure, data already gone for an ended job the ledger still calls unerased, which the next erasure
run marks. A job that may still print (queued, printing, in doubt) always has its data here.

>>> import tempfile, os
>>> folder = tempfile.mkdtemp()
>>> personal = PersonalFile(personal_path(os.path.join(folder, "kartud.db")))
>>> personal.open(); personal.apply({"j-1": (b"front", None, {0x0101: b"chip"})}, {}, set(), set())
>>> personal.job_data("j-1")["chip_files"], oct(os.stat(personal.path).st_mode & 0o777)
({257: b'chip'}, '0o600')
>>> personal.close()
"""

from __future__ import annotations

import os
import sqlite3
import struct
from typing import Any

from ..rules.errors import StorageError

JobData = tuple[bytes, "bytes | None", "dict[int | str, bytes] | None"]     # front, back, chip files by file id

MIGRATIONS = [
    """
    CREATE TABLE job_data (
        job_id     TEXT PRIMARY KEY,
        front_png  BLOB NOT NULL,
        back_png   BLOB,
        chip_files BLOB            -- each file: its id (2 bytes), its length (4 bytes), its bytes
    );
    CREATE TABLE quarantined_payloads (
        seq     INTEGER PRIMARY KEY,   -- the ledger's quarantine.seq
        payload BLOB NOT NULL
    );
    """,
]


def personal_path(ledger_path: str) -> str:
    """``/var/lib/kartud/kartud.db`` → ``/var/lib/kartud/kartud-personal.db``."""
    stem, dot, suffix = ledger_path.rpartition(".")
    return f"{stem}-personal.{suffix}" if dot and "/" not in suffix else ledger_path + "-personal"


def pack_chip(files: dict[int | str, bytes] | None) -> bytes | None:
    """Chip files (by file id, an int or 4 hex digits) as one blob, in ascending file id order."""
    if files is None:
        return None
    by_id = {int(fid, 16) if isinstance(fid, str) else fid: data for fid, data in files.items()}
    return b"".join(struct.pack(">HI", fid, len(data)) + data for fid, data in sorted(by_id.items()))


def unpack_chip(blob: bytes | None) -> dict[int, bytes] | None:
    if blob is None:
        return None
    files, at = {}, 0
    while at < len(blob):
        fid, size = struct.unpack_from(">HI", blob, at)
        files[fid] = bytes(blob[at + 6:at + 6 + size])
        at += 6 + size
    return files


class PersonalFile:
    """The personal-data file, on its own connection. Its writes happen only in :meth:`apply`, which the
    store calls just before it commits the ledger."""

    def __init__(self, path: str):
        self.path = path
        self.conn: sqlite3.Connection | None = None

    def open(self, whole_check: bool = True) -> None:
        """Open (creating it mode 0600), migrate and check the file: every page (``quick_check``), or, with
        ``whole_check`` False (unchanged since a clean stop), its schema. Raises StorageError."""
        try:
            # The mode is set here, not left to the umask (0027 gives the group read access): SQLite gives
            # the -wal and -shm files the mode of the database file.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            if os.stat(self.path).st_mode & 0o077:
                os.chmod(self.path, 0o600)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StorageError(f"the personal-data file {self.path} cannot use WAL mode (got {mode})")
            for pragma in ("synchronous=FULL", "secure_delete=ON", "busy_timeout=10000"):
                conn.execute(f"PRAGMA {pragma}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StorageError(f"the personal-data file {self.path} is from a newer kartud")
            for number in range(version, len(MIGRATIONS)):
                conn.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;")
            check = "PRAGMA quick_check" if whole_check else "SELECT 'ok' FROM sqlite_master LIMIT 1"
            problems = [row[0] for row in conn.execute(check)] or ["ok"]
            if problems != ["ok"]:
                raise StorageError(f"the personal-data file {self.path} is damaged: {'; '.join(problems[:3])}")
            self.conn = conn
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the personal-data file {self.path}: {exc}") from exc

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def apply(self, jobs: dict[str, JobData], payloads: dict[int, bytes], forget_jobs: set[str],
              forget_payloads: set[int]) -> None:
        """Write and delete, in one committed transaction (one fsync)."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO job_data (job_id, front_png, back_png, chip_files) VALUES (?, ?, ?, ?)",
                             [(job_id, front, back, pack_chip(chip)) for job_id, (front, back, chip) in jobs.items()])
            conn.executemany("INSERT OR REPLACE INTO quarantined_payloads (seq, payload) VALUES (?, ?)",
                             list(payloads.items()))
            conn.executemany("DELETE FROM job_data WHERE job_id = ?", [(j,) for j in forget_jobs])
            conn.executemany("DELETE FROM quarantined_payloads WHERE seq = ?", [(s,) for s in forget_payloads])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def job_data(self, job_id: str) -> dict[str, Any] | None:
        """``{front_png, back_png, chip_files}`` of a job (chip files by integer file id), or None."""
        row = self.conn.execute("SELECT front_png, back_png, chip_files FROM job_data WHERE job_id = ?",
                                (job_id,)).fetchone()
        if row is None:
            return None
        return {"front_png": row[0], "back_png": row[1], "chip_files": unpack_chip(row[2])}

    def payload(self, seq: int) -> bytes | None:
        row = self.conn.execute("SELECT payload FROM quarantined_payloads WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    def held(self) -> tuple[set[str], set[int]]:
        """The job ids and quarantine numbers whose data this file holds."""
        jobs = {r[0] for r in self.conn.execute("SELECT job_id FROM job_data")}
        return jobs, {r[0] for r in self.conn.execute("SELECT seq FROM quarantined_payloads")}

    def keep_only(self, jobs: set[str], payloads: set[int]) -> int:
        """Delete what the ledger does not hold as unerased (a crash between the two commits left it
        behind, or the ledger was restored from an older copy). Returns how much went."""
        held_jobs, held_payloads = self.held()
        extra_jobs, extra_payloads = held_jobs - jobs, held_payloads - payloads
        if extra_jobs or extra_payloads:
            self.apply({}, {}, extra_jobs, extra_payloads)
        return len(extra_jobs) + len(extra_payloads)

    def checkpoint(self) -> bool:
        """Copy the WAL into the file and truncate it: what was deleted is gone from both."""
        return checkpoint(self.conn)


def checkpoint(conn: sqlite3.Connection) -> bool:
    """``wal_checkpoint(TRUNCATE)``: False when a reader holding an older snapshot outlasted the busy timeout."""
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy
