"""A start after a clean stop skips reading the whole database, and a damaged one still never reports READY."""

from __future__ import annotations

import os

import pytest
from sample_jobs import new_job
from store_fixtures import TEST_KEY
from test_store_opening import damage, filled_store

from kartud.ledger import clean_stop
from kartud.ledger.store import Store
from kartud.rules.errors import StorageError

FULL, SKIPPED = "quick_check", "unchanged since a clean stop"


def _reopened(path: str, clock) -> Store:
    store = Store(path, clock, key=TEST_KEY)
    store.open()
    return store


def test_after_a_clean_stop_the_next_start_skips_the_full_check_and_the_one_after_a_crash_does_not(
        tmp_path, manual_clock):
    path = str(tmp_path / "kartud.db")
    filled_store(path, manual_clock).close(clean=True)
    assert os.path.exists(clean_stop.note_path(path))
    store = _reopened(path, manual_clock)
    assert store.start_check == SKIPPED
    assert len(store.conn.execute("SELECT job_id FROM jobs").fetchall()) == 12
    # The note was taken away at the start: a crash now (no clean close) means a full check next time.
    assert not os.path.exists(clean_stop.note_path(path))
    store.close()
    assert _reopened(path, manual_clock).start_check == FULL


@pytest.mark.parametrize("stop", ["clean", "crash"])
def test_a_damaged_database_is_refused_after_a_clean_stop_and_after_a_crash(tmp_path, manual_clock, stop):
    path = str(tmp_path / "kartud.db")
    filled_store(path, manual_clock).close(clean=stop == "clean")
    assert os.path.exists(clean_stop.note_path(path)) == (stop == "clean")
    damage(path)
    with pytest.raises(StorageError) as caught:
        _reopened(path, manual_clock)
    assert "damaged" in str(caught.value) and path in str(caught.value)
    assert not os.path.exists(clean_stop.note_path(path))


def test_a_damaged_personal_data_file_is_refused_after_a_clean_stop(tmp_path, manual_clock):
    path = str(tmp_path / "kartud.db")
    store = filled_store(path, manual_clock)
    personal = store.personal.path
    store.close(clean=True)
    damage(personal, seed=2)
    with pytest.raises(StorageError) as caught:
        _reopened(path, manual_clock)
    assert personal in str(caught.value)


def test_a_file_cut_short_or_put_back_after_a_clean_stop_gets_the_full_check(tmp_path, manual_clock):
    path = str(tmp_path / "kartud.db")
    filled_store(path, manual_clock).close(clean=True)
    with open(path, "rb") as handle:
        original = handle.read()
    with open(path, "wb") as handle:       # the same bytes written back: a write all the same
        handle.write(original)
    store = _reopened(path, manual_clock)
    assert store.start_check == FULL
    store.close(clean=True)
    os.truncate(path, len(original) - 4096)
    with pytest.raises(StorageError):
        _reopened(path, manual_clock)


def test_an_unreadable_note_is_no_note(tmp_path, manual_clock):
    path = str(tmp_path / "kartud.db")
    filled_store(path, manual_clock).close(clean=True)
    with open(clean_stop.note_path(path), "w") as handle:
        handle.write("{not json")
    store = _reopened(path, manual_clock)
    assert store.start_check == FULL
    assert not os.path.exists(clean_stop.note_path(path))
    store.close()


def _cannot_start(room, notify_socket) -> list[str]:
    """Start the daemon on its (damaged) database: it must end with status 1 and never send READY=1."""
    room.env["NOTIFY_SOCKET"] = notify_socket.path
    room.start(wait_online=False)
    assert room.process.wait(30) == 1
    with notify_socket.changed:            # the datagrams come in order: READY=1 would come before this
        assert notify_socket.changed.wait_for(
            lambda: any(m.startswith("STATUS=cannot start") for m in notify_socket.messages), 10)
    return notify_socket.messages


@pytest.mark.parametrize("stop", ["clean", "kill"])
def test_the_daemon_never_reports_ready_on_a_damaged_database_after_either_stop(room, notify_socket, stop):
    room.start()
    room.receive_blanks(20)
    for _ in range(8):
        assert room.submit(room.job())["status"] == "ok"
    if stop == "clean":
        assert room.stop() == 0
        assert os.path.exists(clean_stop.note_path(room.db_path))
    else:
        room.kill()
        assert not os.path.exists(clean_stop.note_path(room.db_path))
    damage(room.db_path)
    messages = _cannot_start(room, notify_socket)
    assert "READY=1" not in messages
    last = room.log().splitlines()[-1]
    assert "cannot start" in last and ("is damaged" in last or "malformed" in last), last


def test_the_daemon_after_a_clean_stop_starts_on_the_schema_check_only(room, notify_socket):
    room.start()
    assert room.stop() == 0
    room.env["NOTIFY_SOCKET"] = notify_socket.path
    room.start()
    notify_socket.wait_for("READY=1")
    assert "database checked: its files are as the last clean stop left them" in room.log()
    assert room.stop() == 0


def test_a_commit_that_failed_between_the_two_files_leaves_no_note_and_the_next_start_puts_them_in_step(
        tmp_path, manual_clock):
    path = str(tmp_path / "kartud.db")
    store = filled_store(path, manual_clock)

    def fail(what: str) -> None:
        raise OSError("the ledger's disk went away")    # the personal-data file has committed, the ledger not

    store.on_personal_commit = fail
    with pytest.raises(OSError):
        store.submit_job(new_job(99))
    held_before = store.personal.held()[0]
    store.close(clean=True)
    assert not os.path.exists(clean_stop.note_path(path))
    reopened = _reopened(path, manual_clock)
    assert reopened.start_check == FULL
    ledger_jobs = {r[0] for r in reopened.conn.execute("SELECT job_id FROM jobs WHERE pii_erased_at IS NULL")}
    assert reopened.personal.held()[0] == ledger_jobs and len(held_before) == len(ledger_jobs) + 1
    reopened.close()
