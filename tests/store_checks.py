"""The store's promises checked from outside, and a job brought to any state through the store's own paths."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from clock_fixtures import START

from kartud.ledger.store import Store
from kartud.rules import jobs as J
from kartud.rules.clock import rfc3339


def balanced(store: Store) -> None:
    """The blank equation, per card type, and no negative count."""
    for card_type, s in store.stock().items():
        assert s["received"] + s["adjusted"] == s["in_stock"] + s["reserved"] + s["printed"] + s["spoiled"], card_type
        for name in ("received", "in_stock", "reserved", "printed", "spoiled"):
            assert s[name] >= 0, (card_type, name, s)


def dump(store: Store, *tables: str) -> dict[str, list[tuple]]:
    return {t: [tuple(r) for r in store.conn.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in tables}


def audit_rows(store: Store) -> list[sqlite3.Row]:
    return store.conn.execute("SELECT * FROM audit ORDER BY id").fetchall()


def bring_to(store: Store, job: J.NewJob, state: str) -> dict:
    """Submit ``job`` and move it to ``state`` through the store's own paths (on a clock standing at START)."""
    store.submit_job(job)
    if state == J.QUEUED:
        pass
    elif state == J.CANCELLED:
        store.cancel_job(job.job_id)
    elif state == J.EXPIRED:
        store.conn.execute("UPDATE jobs SET not_after = ? WHERE job_id = ?", (rfc3339(START), job.job_id))
        store.expire_due(START + timedelta(seconds=1))
    else:
        store.receive_blanks(f"B-for-{job.job_id}", job.card_type, 1, None)
        store.claim(job.job_id)
        if state == J.PRINTED:
            store.mark_printed(job.job_id, "04AABBCCDDEEFF")
        elif state == J.IN_DOUBT:
            store.recover_in_doubt()
        elif state == J.FAILED:
            store.mark_spoiled(job.job_id, "encode_failed", max_attempts=1)
    view = store.get_job(job.job_id)
    assert view["state"] == state
    return view
