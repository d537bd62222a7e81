"""The clean-stop note: what lets a start after an orderly stop skip reading the whole database to check it.

A full ``PRAGMA quick_check`` reads every page (0.3 s for 100,000 jobs here, seconds on a Pi's SD
card). It is needed after a crash or power cut, when SQLite's own writes may have been cut short, and
after anything else wrote the files. After an orderly stop, the store leaves a note beside the
database with what the file system says of each of its files (size, inode, modification and change
times, to the nanosecond). The next start takes the note away durably first, so a crash after that
start leaves none; and it trusts the files only when every one of them is exactly as noted. Any write
to a file since (an editor, a restore, bytes flipped by a test) changes its change time, which no
program can set back, so the full check runs.

What the note cannot see: damage the disk does by itself, without a write through the file system
(flash that decays): SQLite meets it when it reads the page, and the daemon raises storage_error then;
and, on a kernel older than 6.13 whose file system keeps coarse timestamps, a write within the same
clock tick (a few milliseconds) as the stop.
"""

from __future__ import annotations

import json
import os

SUFFIX = ".clean-stop"


def note_path(database: str) -> str:
    return database + SUFFIX


def _facts(paths: list[str]) -> dict[str, list[int] | None]:
    """Each file's identity and last change as the file system keeps them; None for a file that is absent."""
    facts: dict[str, list[int] | None] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            facts[path] = None
            continue
        facts[path] = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    return facts


def _sync_directory(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def leave(database: str, paths: list[str]) -> None:
    """After an orderly close of every file in ``paths``: note them, durably (written, synced, renamed)."""
    target = note_path(database)
    temporary = target + ".new"
    with open(temporary, "w") as handle:
        json.dump({"files": _facts(paths)}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    _sync_directory(target)


def take(database: str, paths: list[str]) -> bool:
    """At a start, before anything writes: True when a note was left and every file is as it says. The
    note is gone, durably, when this returns (a crash from here on means a full check next time)."""
    target = note_path(database)
    try:
        os.unlink(target + ".new")                    # a stop cut short while writing its note: never a note
    except FileNotFoundError:
        pass
    try:
        with open(target) as handle:
            noted = json.load(handle).get("files")
    except FileNotFoundError:
        return False
    except (OSError, ValueError, AttributeError):
        noted = None                                  # an unreadable note is no note
    os.unlink(target)
    _sync_directory(target)
    return isinstance(noted, dict) and noted == _facts(paths)
