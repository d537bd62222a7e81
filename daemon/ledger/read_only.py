"""The database read from outside the daemon (kartuctl with the daemon down, verify): nothing on disk changes."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from typing import Any
from urllib.parse import quote

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
    """Recompute the audit chain and check each card type's stock against the sum of its movements.

    Returns ``{"audit_rows", "audit_broken_at" (a message or None), "ledger": [{card_type, field,
    stock, moved}...] (mismatches only), "ok"}``.
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
        # Every printed or spoiled blank was reserved first; a released one went back to stock.
        expected = {**moved, "reserved": moved["reserved"] - moved["released"] - moved["printed"] - moved["spoiled"]}
        for field in ("received", "adjusted", "reserved", "printed", "spoiled"):
            if stock[field] != expected[field]:
                mismatches.append({"card_type": stock["card_type"], "field": field, "stock": stock[field],
                                   "moved": expected[field]})
    card_types = [r[0] for r in conn.execute("SELECT card_type FROM blank_stock ORDER BY card_type")]
    return {"audit_rows": rows, "audit_broken_at": broken, "card_types": card_types, "ledger": mismatches,
            "ok": broken is None and not mismatches}
