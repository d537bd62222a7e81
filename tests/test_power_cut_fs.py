"""The power-cut filesystem loses what a power cut loses (unsynced bytes and directory entries) and keeps the rest."""

from __future__ import annotations

import fcntl
import os
import random
import sqlite3
import subprocess
import sys

import pytest

from kartud.room.power_cut_fs import PowerCutFilesystem


def write(path, data: bytes, sync: bool = False, mode: str = "wb") -> None:
    with open(path, mode) as handle:
        handle.write(data)
        handle.flush()
        if sync:
            os.fsync(handle.fileno())


def sync_dir(path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


@pytest.fixture
def disk(power_cut_disk):
    """The mounted disk, with one durable file ``old`` (content b"old") already on it."""
    root = power_cut_disk.mountpoint
    write(f"{root}/old", b"old", sync=True)
    sync_dir(root)
    return power_cut_disk


def test_a_write_without_fsync_is_lost_in_a_cut_and_one_with_fsync_is_kept(disk):
    root = disk.mountpoint
    write(f"{root}/old", b" unsynced", mode="ab")
    assert read(f"{root}/old") == b"old unsynced"          # readers saw it before the cut
    disk.power_cut()
    assert read(f"{root}/old") == b"old"
    write(f"{root}/old", b" synced", sync=True, mode="ab")
    disk.power_cut()
    assert read(f"{root}/old") == b"old synced"


def test_fdatasync_counts_as_a_sync_and_an_overwrite_in_the_middle_is_undone(disk):
    root = disk.mountpoint
    write(f"{root}/old", b"0123456789", sync=True)
    with open(f"{root}/old", "r+b") as handle:
        handle.seek(3)
        handle.write(b"abc")
        handle.flush()
        os.fdatasync(handle.fileno())
        handle.seek(7)
        handle.write(b"XYZ")                                 # after the last sync: lost
    disk.power_cut()
    assert read(f"{root}/old") == b"012abc6789"


def test_a_truncate_without_fsync_is_undone(disk):
    root = disk.mountpoint
    os.truncate(f"{root}/old", 1)
    assert read(f"{root}/old") == b"o"
    disk.power_cut()
    assert read(f"{root}/old") == b"old"
    with open(f"{root}/old", "r+b") as handle:              # shrink, grow, sync: the middle is zeros
        handle.truncate(1)
        handle.truncate(3)
        os.fsync(handle.fileno())
    disk.power_cut()
    assert read(f"{root}/old") == b"o\0\0"


def test_a_new_file_whose_directory_was_never_fsynced_vanishes_though_its_data_was(disk):
    root = disk.mountpoint
    os.mkdir(f"{root}/sub")
    sync_dir(root)
    write(f"{root}/sub/new", b"data", sync=True)             # the file's bytes are durable, its name is not
    disk.power_cut()
    assert os.listdir(f"{root}/sub") == []
    write(f"{root}/sub/new", b"data", sync=True)
    sync_dir(f"{root}/sub")
    disk.power_cut()
    assert read(f"{root}/sub/new") == b"data"


def test_a_new_directory_needs_its_parent_fsynced(disk):
    root = disk.mountpoint
    os.mkdir(f"{root}/sub")
    write(f"{root}/sub/new", b"data", sync=True)
    sync_dir(f"{root}/sub")
    disk.power_cut()
    assert sorted(os.listdir(root)) == ["old"]


def test_a_rename_is_durable_only_once_its_directory_is_fsynced(disk):
    root = disk.mountpoint
    write(f"{root}/old.tmp", b"new", sync=True)
    os.replace(f"{root}/old.tmp", f"{root}/old")             # the atomic-replace idiom, without the dir fsync
    assert read(f"{root}/old") == b"new"
    disk.power_cut()
    assert sorted(os.listdir(root)) == ["old"] and read(f"{root}/old") == b"old"
    write(f"{root}/old.tmp", b"new", sync=True)
    os.replace(f"{root}/old.tmp", f"{root}/old")
    sync_dir(root)
    disk.power_cut()
    assert sorted(os.listdir(root)) == ["old"] and read(f"{root}/old") == b"new"


def test_an_unlink_without_a_directory_fsync_comes_back_and_one_with_it_does_not(disk):
    root = disk.mountpoint
    os.unlink(f"{root}/old")
    disk.power_cut()
    assert read(f"{root}/old") == b"old"
    os.unlink(f"{root}/old")
    sync_dir(root)
    disk.power_cut()
    assert os.listdir(root) == []


WRITER = """
import os, sys, signal
with open(sys.argv[1], "ab") as handle:
    handle.write(b" unsynced")
    handle.flush()                       # in the kernel's hands now, but never fsynced
print("written", flush=True)
signal.pause()
"""


def test_a_sigkill_of_the_writer_alone_keeps_the_unsynced_write_and_a_power_cut_loses_it(disk):
    path = f"{disk.mountpoint}/old"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "written\n"
    writer.kill()
    assert writer.wait(10) == -9
    assert read(path) == b"old unsynced"                     # a SIGKILL alone loses nothing: the server kept it
    disk.power_cut()
    assert read(path) == b"old"                              # the cut does


def test_an_orderly_unmount_keeps_everything(tmp_path):
    with PowerCutFilesystem(tmp_path / "b", tmp_path / "m") as disk:
        os.mkdir(f"{disk.mountpoint}/sub")
        write(f"{disk.mountpoint}/sub/file", b"never synced")
    assert read(tmp_path / "b" / "sub" / "file") == b"never synced"
    with PowerCutFilesystem(tmp_path / "b", tmp_path / "m") as disk:
        assert read(f"{disk.mountpoint}/sub/file") == b"never synced"


def test_stats_count_what_was_written_and_synced(disk):
    root = disk.mountpoint
    disk.reset_stats()
    write(f"{root}/a", b"x" * 1000)
    write(f"{root}/b", b"y" * 300, sync=True)
    sync_dir(root)
    stats = disk.stats()
    assert (stats["bytes_written"], stats["bytes_synced"]) == (1300, 300)
    assert (stats["fsyncs"], stats["dir_fsyncs"]) == (2, 1)
    disk.reset_stats()
    assert disk.stats()["bytes_written"] == 0


LOCKER = """
import fcntl, sys
handle = open(sys.argv[1], "r+b")
try:
    fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("got it")
except OSError:
    print("refused")
"""


def test_posix_locks_hold_between_processes(disk):
    path = f"{disk.mountpoint}/old"
    with open(path, "r+b") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        held = subprocess.run([sys.executable, "-c", LOCKER, path], capture_output=True, text=True, timeout=20)
        assert held.stdout.strip() == "refused"
    free = subprocess.run([sys.executable, "-c", LOCKER, path], capture_output=True, text=True, timeout=20)
    assert free.stdout.strip() == "got it"


COMMITTER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=FULL")
conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY, pad BLOB)")
n = conn.execute("SELECT COALESCE(MAX(n), 0) FROM t").fetchone()[0]
while True:
    n += 1
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (?, randomblob(3000))", (n,))
    if n % 7 == 0:
        conn.execute("DELETE FROM t WHERE n = ?", (n - 5,))
    conn.execute("COMMIT")
    print(n, flush=True)
    if n % 50 == 0:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
"""


def test_sqlite_keeps_every_acknowledged_commit_and_its_integrity_through_cuts(disk):
    """A second process reads while a writer commits (WAL's -shm is mmapped: it must work over FUSE)."""
    rng = random.Random(16)
    db = f"{disk.mountpoint}/cut.db"
    for _ in range(8):
        writer = subprocess.Popen([sys.executable, "-c", COMMITTER, db], stdout=subprocess.PIPE, text=True)
        acknowledged = 0
        for _ in range(rng.randint(20, 120)):
            acknowledged = int(writer.stdout.readline())
        reader = sqlite3.connect(db, timeout=10)
        assert reader.execute("SELECT MAX(n) FROM t").fetchone()[0] >= acknowledged
        reader.close()
        writer.kill()
        writer.wait(10)
        disk.power_cut()
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("SELECT MAX(n) FROM t").fetchone()[0] >= acknowledged
        finally:
            conn.close()


def test_the_key_file_kartud_make_key_writes_survives_a_cut_at_once(disk):
    from kartud.ledger.station_key import make_key

    key = f"{disk.mountpoint}/nik.key"
    make_key(key, f"{disk.mountpoint}/kartud.db")            # an fsynced temporary, hard-linked, dir fsynced
    written = read(key)
    disk.power_cut()
    assert read(key) == written and len(written) == 65
    assert sorted(os.listdir(disk.mountpoint)) == ["nik.key", "old"]
