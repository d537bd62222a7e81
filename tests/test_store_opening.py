"""The store's file: opened as WAL with full sync, reopened intact, and a newer, corrupted or foreign file refused."""

from __future__ import annotations

import os
import random
import sqlite3

import pytest
from sample_jobs import new_job
from store_fixtures import TEST_KEY

from kartud.ledger import schema
from kartud.ledger.store import Store
from kartud.rules import jobs as J
from kartud.rules.errors import StorageError


def test_open_creates_a_wal_database_with_full_sync_and_foreign_keys(tmp_path, manual_clock):
    path = tmp_path / "sub" / "dir" / "kartud.db"
    store = Store(str(path), manual_clock, key=TEST_KEY)
    store.open()
    try:
        assert path.exists()
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert set(store.stock()) == {"KTP_EL", "KIA"}
    finally:
        store.close()
    # WAL is a property of the file: an outside reader sees it too.
    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_reopening_keeps_the_data_and_the_schema(tmp_path, manual_clock):
    path = str(tmp_path / "kartud.db")
    store = Store(path, manual_clock, key=TEST_KEY)
    store.open()
    store.submit_job(new_job(1))
    store.receive_blanks("B-1", "KTP_EL", 5, None)
    store.close()
    assert store.conn is None
    for _ in range(2):
        again = Store(path, manual_clock, key=TEST_KEY)
        again.open()
        try:
            assert again.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
            assert again.get_job("j-0001")["state"] == J.QUEUED
            assert again.stock()["KTP_EL"]["in_stock"] == 5
            assert again.verify_audit_chain() == 2
        finally:
            again.close()


def test_migrate_reports_versions(tmp_path):
    conn = sqlite3.connect(str(tmp_path / "m.db"), isolation_level=None)
    try:
        assert schema.migrate(conn) == (0, schema.SCHEMA_VERSION)
        assert schema.migrate(conn) == (schema.SCHEMA_VERSION, schema.SCHEMA_VERSION)
    finally:
        conn.close()


def test_a_database_from_a_newer_kartud_is_refused(tmp_path, manual_clock):
    path = str(tmp_path / "kartud.db")
    store = Store(path, manual_clock, key=TEST_KEY)
    store.open()
    store.close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    newer = Store(path, manual_clock, key=TEST_KEY)
    with pytest.raises(StorageError, match="newer") as caught:
        newer.open()
    assert path in str(caught.value)
    assert newer.conn is None
    # Nothing was changed by the refusal.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION + 1
    finally:
        conn.close()


PAGE = 4096


def filled_store(path: str, clock) -> Store:
    """An open store whose file has pages worth damaging: 50 blanks received and 12 jobs submitted."""
    store = Store(path, clock, key=TEST_KEY)
    store.open()
    store.receive_blanks("B-1", "KTP_EL", 50, None)
    for serial in range(1, 13):
        store.submit_job(new_job(serial))
    return store


def damage(path: str, where: float = 0.5, seed: int = 1) -> None:
    """Random bytes over two pages at ``where`` (a fraction of the file, never its first page), as a failing disk
    or a stray write leaves them."""
    start = max(PAGE, int(os.path.getsize(path) * where) // PAGE * PAGE)
    with open(path, "r+b") as handle:
        handle.seek(start)
        handle.write(random.Random(seed).randbytes(2 * PAGE))


@pytest.mark.parametrize("where", [0.25, 0.5, 0.75])
def test_a_corrupted_database_fails_open_with_storage_error(tmp_path, manual_clock, where):
    path = str(tmp_path / "kartud.db")
    filled_store(path, manual_clock).close()  # the last connection closes: the WAL is checkpointed into the file
    assert not os.path.exists(path + "-wal") or os.path.getsize(path + "-wal") == 0
    assert os.path.getsize(path) >= 8 * PAGE, os.path.getsize(path)
    damage(path, where, seed=int(where * 100))
    broken = Store(path, manual_clock, key=TEST_KEY)
    with pytest.raises(StorageError) as caught:
        broken.open()
    assert path in str(caught.value)
    assert broken.conn is None


def test_a_file_that_is_not_a_database_fails_open_with_storage_error(tmp_path, manual_clock):
    path = tmp_path / "kartud.db"
    path.write_bytes(b"this is a shopping list, not a database\n" * 200)
    with pytest.raises(StorageError):
        Store(str(path), manual_clock, key=TEST_KEY).open()
