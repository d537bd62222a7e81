"""The key is not in the database: the NIK key lives in its own file, made once, and kartud will not start without it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from erased_station import KEY, found_in, person, station_files, write_key
from old_station import old_database

from kartud.ledger.station_key import CREDENTIAL, KeyFileProblem, key_path, make_key, read_key
from kartud.ledger.store import Store
from kartud.room.sim_room import sim_config
from kartud.rules.clock import ManualClock
from kartud.rules.errors import CommandError, StorageError
from kartud.rules.jobs import validate_submission
from kartud.service.cli import main as kartud


def test_a_station_keeps_its_key_out_of_every_database_file(room):
    room.start()
    room.receive_blanks(2)
    job = room.job()
    assert room.submit(job)["status"] == "ok"
    room.wait_state(job["job_id"], "printed")
    room.stop()
    settings = dict(room.query("SELECT key, value FROM settings"))
    assert "nik_hmac_key" not in settings and not any(len(v) >= 64 for v in settings.values())
    key = read_key(os.path.join(room.dir, "nik.key"))
    assert found_in(station_files(room.dir), [key, key.hex().encode(), key.hex().upper().encode()]) == []


def test_kartud_refuses_to_start_without_its_key_file_and_says_how_to_make_one(tmp_path):
    config = sim_config(str(tmp_path), 1)
    os.remove(tmp_path / "nik.key")
    run = subprocess.run([sys.executable, "-m", "kartud.service.cli", "run", "--config", config],
                         capture_output=True, text=True, timeout=20)
    assert run.returncode == 2, run.stderr
    assert f"kartud make-key --config {config}" in run.stderr and "does not exist" in run.stderr
    assert not (tmp_path / "kartud.db").exists()


def test_check_config_names_a_missing_or_broken_key_file(tmp_path, capsys):
    config = sim_config(str(tmp_path), 1)
    assert kartud(["check-config", "--config", config]) == 0
    (tmp_path / "nik.key").write_text("not a key\n")
    assert kartud(["check-config", "--config", config]) == 2
    assert "store.key_file:" in capsys.readouterr().out
    os.remove(tmp_path / "nik.key")
    assert kartud(["check-config", "--config", config]) == 2
    assert "kartud make-key" in capsys.readouterr().out


def test_make_key_writes_a_new_key_once_readable_by_its_owner_only(tmp_path, capsys):
    config = sim_config(str(tmp_path), 1)
    os.remove(tmp_path / "nik.key")
    assert kartud(["make-key", "--config", config]) == 0
    assert "wrote a new key" in capsys.readouterr().out
    path = tmp_path / "nik.key"
    key = read_key(str(path))
    assert len(key) == 32 and os.stat(path).st_mode & 0o777 == 0o600
    assert kartud(["make-key", "--config", config]) == 0          # never over an existing key
    assert "kept the existing" in capsys.readouterr().out and read_key(str(path)) == key


def test_under_systemd_the_key_is_the_credential(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert key_path("/etc/kartud/nik.key") == "/etc/kartud/nik.key"
    write_key(tmp_path / CREDENTIAL)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert key_path("/etc/kartud/nik.key") == str(tmp_path / CREDENTIAL)
    with pytest.raises(KeyFileProblem, match="64 hex digits"):
        (tmp_path / "short").write_text("abcd")
        read_key(str(tmp_path / "short"))


def test_an_older_database_hands_its_key_to_make_key_then_forgets_it_and_its_personal_data(tmp_path, caplog):
    db, key_file = str(tmp_path / "kartud.db"), str(tmp_path / "nik.key")
    queued, printed, erased = old_database(db, KEY)
    secrets = [KEY.hex().encode(), erased.nik.encode(), *erased.secrets[2:]]
    assert found_in(station_files(tmp_path), secrets[:3])        # the old file holds them, free pages included
    assert "the key the database" in make_key(key_file, db) and read_key(key_file) == KEY
    clock = ManualClock(datetime(2026, 11, 21, 1, tzinfo=timezone.utc))
    store = Store(db, clock, key=read_key(key_file))
    caplog.set_level(logging.INFO, logger="kartud")
    store.open()
    try:
        assert "deleted from the database" in caplog.text
        assert store.get_setting("nik_hmac_key") is None
        assert found_in(station_files(tmp_path), secrets) == []
        ledger = [f for f in station_files(tmp_path) if "personal" not in f.name]     # the operators may read it
        assert found_in(ledger, [s for p in (queued, printed) for s in p.secrets]) == []
        assert store.personal.job_data(queued.job["job_id"])["front_png"][1000:1032] == queued.secrets[2]
        assert store.get_job(erased.job["job_id"])["nik_masked"] == erased.nik[:4] + "*" * 12
        assert erased.nik[-4:] not in store.conn.execute("SELECT answer FROM requests_done").fetchone()[0]
        again = {**printed.job, "job_id": "j-again", "record_id": "PRR-9999-777777"}
        with pytest.raises(CommandError, match="already printed"):      # the old hashes still count
            store.submit_job(validate_submission(again, ["KTP_EL"]))
        assert [r[0] for r in store.conn.execute("SELECT kind FROM audit")][-1] == "station_key_moved_out"
        store.verify_audit_chain()
    finally:
        store.close()


def test_a_move_cut_short_is_done_again(tmp_path, monkeypatch):
    """The personal data is committed to its file first; a failure before the ledger's step commits leaves
    the old ledger whole, and the next start moves it again."""
    from kartud.ledger import schema

    db = str(tmp_path / "kartud.db")
    queued, _, _ = old_database(db, KEY)
    clock = ManualClock(datetime(2026, 11, 21, 1, tzinfo=timezone.utc))
    broken = schema.MIGRATIONS[:7] + [schema.MIGRATIONS[7] + "\nSELECT no_such_column FROM jobs;"]
    monkeypatch.setattr(schema, "MIGRATIONS", broken)
    with pytest.raises(StorageError):
        Store(db, clock, key=KEY).open()
    monkeypatch.undo()
    store = Store(db, clock, key=KEY)
    store.open()
    try:
        assert store.personal.held()[0] == {queued.job["job_id"], "j-0002"}
        assert store.personal.job_data(queued.job["job_id"])["front_png"][1000:1032] == queued.secrets[2]
    finally:
        store.close()


def test_a_database_key_unlike_the_key_file_is_refused(tmp_path):
    db = str(tmp_path / "kartud.db")
    old_database(db, KEY)
    with pytest.raises(StorageError, match="kartud make-key"):
        Store(db, ManualClock(datetime(2026, 11, 21, tzinfo=timezone.utc)), key=bytes(32)).open()


def test_a_replaced_key_is_noticed_and_recorded(tmp_path, manual_clock, caplog):
    path = str(tmp_path / "kartud.db")
    p = person(__import__("random").Random(9), 1)
    store = Store(path, manual_clock, key=KEY)
    store.open()
    store.submit_job(validate_submission(p.job, ["KTP_EL"]))
    store.close()
    caplog.set_level(logging.WARNING, logger="kartud")
    store = Store(path, manual_clock, key=bytes(32))          # the key was lost, and a new one made
    store.open()
    try:
        assert "no longer knows those jobs' cards" in caplog.text
        assert [r[0] for r in store.conn.execute("SELECT kind FROM audit")][-1] == "station_key_changed"
        # What losing the key costs: a second card for the same NIK is no longer caught.
        again = {**p.job, "job_id": "j-again", "record_id": "PRR-9999-777777"}
        assert store.submit_job(validate_submission(again, ["KTP_EL"]))[0]["state"] == "queued"
    finally:
        store.close()
