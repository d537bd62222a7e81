"""Transactions durable against the process dying but not against a power cut: committed without the fsync.

In WAL mode with ``synchronous=NORMAL`` a commit is written to the WAL without waiting for the disk:
the OS keeps it if the process dies, a power cut may lose it. The WAL is written in order and the next
``synchronous=FULL`` commit fsyncs it, so a cut loses only a tail of light commits after the last full
one, never a full commit and never one light commit without those after it. Use one only where losing
that tail is a state the start-up already handles (the quarantine's marks; a card's steps, see
``JobLedger.set_step``).
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def light_transaction(store: Any) -> Iterator[sqlite3.Connection]:
    """A :class:`~kartud.ledger.store.Store`'s ``transaction()`` committed without the fsync. Inside another transaction it is a savepoint of
    that one, which commits in full: ``synchronous`` is read at the commit, so it is only switched here
    around a transaction of its own."""
    if store._nesting:
        with store.transaction() as tx:
            yield tx
        return
    conn = store.conn
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        with store.transaction() as tx:
            yield tx
    finally:
        conn.execute("PRAGMA synchronous=FULL")
