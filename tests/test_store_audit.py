"""The store's settings and audit chain, the append-only ledger and audit log, and no full NIK in either."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sample_jobs import new_job
from store_checks import audit_rows, bring_to, dump

from kartud.rules import jobs as J
from kartud.rules.errors import StorageError


@pytest.mark.parametrize("statement", [
    "UPDATE printed_records SET card_uid = 'FFFF'",
    "UPDATE printed_records SET record_id = 'PRR-forged'",
    "DELETE FROM printed_records",
    "UPDATE audit SET detail = '{}'",
    "UPDATE audit SET hash = 'x' WHERE id = 1",
    "DELETE FROM audit",
    "DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)",
])
def test_the_ledger_and_the_audit_log_are_append_only(store, statement):
    bring_to(store, new_job(1), J.PRINTED)
    before = dump(store, "printed_records", "audit")
    assert before["printed_records"] and before["audit"]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.conn.execute(statement)
    assert dump(store, "printed_records", "audit") == before


def test_set_setting(store):
    assert store.get_setting("paused") is None
    assert store.get_setting("paused", "no") == "no"
    assert store.set_setting("paused", "operator lunch", "queue_paused", {"reason": "lunch"}) is True
    assert store.get_setting("paused") == "operator lunch"
    assert store.set_setting("paused", "operator lunch", "queue_paused", {"reason": "lunch"}) is False
    assert store.set_setting("paused", "other", "queue_paused", {"reason": "other"}) is True
    assert store.get_setting("paused") == "other"
    assert store.set_setting("paused", None, "queue_resumed", {}) is True
    assert store.get_setting("paused") is None
    assert store.set_setting("paused", None, "queue_resumed", {}) is False
    assert [r["kind"] for r in audit_rows(store)] == ["queue_paused", "queue_paused", "queue_resumed"]
    assert store.verify_audit_chain() == 3


def test_audit_chain_counts_rows(store):
    assert store.verify_audit_chain() == 0
    bring_to(store, new_job(1), J.PRINTED)
    rows = audit_rows(store)
    assert store.verify_audit_chain() == len(rows) == 4
    assert rows[0]["prev_hash"] == "0" * 64
    for previous, row in zip(rows, rows[1:]):
        assert row["prev_hash"] == previous["hash"]


def test_audit_chain_detects_a_changed_detail(store):
    bring_to(store, new_job(1), J.PRINTED)
    store.submit_job(new_job(2))
    count = store.verify_audit_chain()
    store.conn.execute("DROP TRIGGER audit_no_update")
    store.conn.execute("UPDATE audit SET detail = ? WHERE id = 2", (json.dumps({"record_id": "PRR-forged"}),))
    with pytest.raises(StorageError, match="row 2"):
        store.verify_audit_chain()
    assert count == 5


def test_audit_chain_detects_a_rehashed_row(store):
    """Recomputing a forged row's own hash is not enough: the next row's link breaks."""
    import hashlib

    bring_to(store, new_job(1), J.PRINTED)
    store.conn.execute("DROP TRIGGER audit_no_update")
    row = audit_rows(store)[1]
    detail = json.dumps({"forged": True})
    digest = hashlib.sha256("\n".join([row["prev_hash"], row["at"], row["kind"], row["job_id"] or "",
                                       detail]).encode()).hexdigest()
    store.conn.execute("UPDATE audit SET detail = ?, hash = ? WHERE id = ?", (detail, digest, row["id"]))
    with pytest.raises(StorageError, match=f"row {row['id'] + 1}"):
        store.verify_audit_chain()


def test_no_full_nik_in_the_audit_or_views(store):
    niks = []
    store.receive_blanks("B-1", "KTP_EL", 10, None)
    store.receive_blanks("B-2", "KIA", 10, None)
    for serial, state in enumerate([J.QUEUED, J.PRINTED, J.IN_DOUBT, J.FAILED, J.CANCELLED, J.EXPIRED], start=1):
        job = new_job(serial, "KIA" if serial % 2 else "KTP_EL")
        niks.append(job.nik)
        bring_to(store, job, state)
    store.submit_job(new_job(50))
    store.claim("j-0050")
    niks.append(new_job(50).nik)
    texts = [r["detail"] for r in audit_rows(store)]
    texts += [json.dumps(v) for v in store.list_jobs(limit=1000)]
    texts += [json.dumps(store.get_job(f"j-{n:04d}")) for n in (1, 2, 3, 4, 5, 6, 50)]
    texts += [json.dumps([dict(r) for r in store.conn.execute("SELECT * FROM printed_records")])]
    texts += [json.dumps([dict(r) for r in store.conn.execute("SELECT * FROM blank_movements")])]
    for nik in niks:
        for text in texts:
            assert nik not in text
    for view in store.list_jobs(limit=1000):
        assert "nik" not in view
        assert view["nik_masked"][6:12] == "******"
