"""The database read from outside the daemon (kartuctl with the daemon down, verify): nothing on disk changes."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from typing import Any
from urllib.parse import quote

from ..ledger.actors import actor_problem
from ..rules.clock import Clock
from ..rules.errors import StorageError
from ..ledger.store import Store, verify_audit_chain


def connect_read_only(path: str) -> sqlite3.Connection:
    """Open the database so that nothing on disk changes, whoever runs kartuctl.

    A stopped daemon leaves no ``-wal`` file (its last close checkpoints it): then the file is opened
    ``immutable``, because an ordinary read-only open would create ``-wal`` and ``-shm`` files owned by
    this user, and a daemon running as kartud could not open the database over root's files. With a
    ``-wal`` present (the daemon runs, or died) the ordinary read-only open reads it as it must.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no database at {path}")
    flags = "mode=ro" if os.path.exists(path + "-wal") else "mode=ro&immutable=1"
    conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?{flags}", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only=ON")
    conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()     # fail here, not halfway through a report
    return conn


def daemon_holds_lock(path: str) -> bool | None:
    """Whether a daemon holds the database's lock (it runs, whatever its socket says); None when the lock
    file cannot be read. Opened read-only so that kartuctl never creates it."""
    try:
        handle = open(path + ".lock", "r")
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        handle.close()


class OfflineStore(Store):
    """The store's own queries on a read-only connection (no lock taken, no migration run)."""

    def __init__(self, path: str):
        super().__init__(path, Clock())
        self.conn = connect_read_only(path)


def verify(conn: sqlite3.Connection) -> dict[str, Any]:
    """Recompute the audit chain, check that every audit row names who did it and that every erased job is
    counted by an erasure row, and check each card type's stock against the sum of its movements.

    Returns ``{"audit_rows", "audit_broken_at" (a message or None), "actors" (see :func:`check_actors`),
    "erasure" (see :func:`check_erasure`), "ledger": [{card_type, field, stock, moved}...] (mismatches
    only), "ok"}``.
    """
    try:
        rows, broken = verify_audit_chain(conn), None
    except StorageError as exc:
        rows, broken = None, str(exc)
    mismatches = []
    for stock in conn.execute("SELECT * FROM blank_stock ORDER BY card_type").fetchall():
        moved = dict(conn.execute("SELECT kind, COALESCE(SUM(count), 0) FROM blank_movements WHERE card_type = ?"
                                  " GROUP BY kind", (stock["card_type"],)).fetchall())
        moved = {kind: moved.get(kind, 0) for kind in ("received", "adjusted", "reserved", "released", "printed",
                                                       "spoiled")}
        # A wrong blank (one of another type than its job's) is spoiled straight from stock, never reserved.
        unreserved = conn.execute("SELECT COALESCE(SUM(count), 0) FROM blank_movements WHERE card_type = ? AND"
                                  " kind = 'spoiled' AND reason = 'wrong_blank'", (stock["card_type"],)).fetchone()[0]
        # Every other printed or spoiled blank was reserved first; a released one went back to stock.
        expected = {**moved, "reserved": moved["reserved"] - moved["released"] - moved["printed"] - moved["spoiled"]
                    + unreserved}
        for field in ("received", "adjusted", "reserved", "printed", "spoiled"):
            if stock[field] != expected[field]:
                mismatches.append({"card_type": stock["card_type"], "field": field, "stock": stock[field],
                                   "moved": expected[field]})
    card_types = [r[0] for r in conn.execute("SELECT card_type FROM blank_stock ORDER BY card_type")]
    actors, erasure = check_actors(conn), check_erasure(conn)
    return {"audit_rows": rows, "audit_broken_at": broken, "actors": actors, "erasure": erasure,
            "card_types": card_types, "ledger": mismatches,
            "ok": broken is None and not mismatches and actors["ok"] and erasure["ok"]}


def check_actors(conn: sqlite3.Connection) -> dict[str, Any]:
    """Every audit row names its actor (:mod:`kartud.ledger.actors`), inside the hashed content. Rows written
    before kartud named actors come first in the chain and are counted as ``legacy``; after the first row
    that names one, a row without a well-formed actor is a fault.

    Returns ``{"named": n, "legacy": n, "unnamed": [row ids, at most 20], "unnamed_count": n, "ok"}``.
    """
    named = legacy = 0
    unnamed: list[int] = []
    for row_id, detail in conn.execute("SELECT id, detail FROM audit ORDER BY id"):
        try:
            actor = json.loads(detail).get("actor")
        except (ValueError, AttributeError):
            actor = None
        if actor_problem(actor) is None:
            named += 1
        elif named == 0 and actor is None:
            legacy += 1
        else:
            unnamed.append(row_id)
    return {"named": named, "legacy": legacy, "unnamed": unnamed[:20], "unnamed_count": len(unnamed),
            "ok": not unnamed}


def check_erasure(conn: sqlite3.Connection) -> dict[str, Any]:
    """Every job whose personal data was erased is counted by an erasure run's audit row
    (``personal_data_erased``: how many jobs, and the first and last job of the run), and the rows count
    no more jobs than were erased. A row from an older kartud (a count without first and last) vouches for
    that many jobs anywhere.

    Returns ``{"runs": n, "erased_jobs": n, "counted": n, "uncounted": [job ids no run names, at most 20, when
    not ok], "ok"}``.
    """
    erased = {job_id: (seq, when) for job_id, seq, when in conn.execute(
        "SELECT job_id, seq, pii_erased_at FROM jobs WHERE pii_erased_at IS NOT NULL")}
    counted, runs, loose = 0, 0, 0
    covered: set[str] = set()
    for (detail,) in conn.execute("SELECT detail FROM audit WHERE kind = 'personal_data_erased' ORDER BY id"):
        try:
            run = json.loads(detail)
            jobs = int(run["jobs"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        runs, counted = runs + 1, counted + jobs
        first, last = erased.get(run.get("first")), erased.get(run.get("last"))
        if first is None or last is None:
            loose += jobs
            continue
        # The run's jobs: those erased at the same instant as its first, between its first and its last.
        covered |= {job_id for job_id, (seq, when) in erased.items() if first[0] <= seq <= last[0] and when == first[1]}
    uncounted = sorted((job_id for job_id in erased if job_id not in covered), key=lambda j: erased[j][0])
    ok = counted == len(erased) and len(uncounted) <= loose
    return {"runs": runs, "erased_jobs": len(erased), "counted": counted, "uncounted": [] if ok else uncounted[:20],
            "ok": ok}
