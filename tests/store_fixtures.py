"""Fixtures: an open store in the test's folder, on the test's manual clock."""

from __future__ import annotations

import os

import pytest

from kartud.ledger.store import Store

TEST_KEY = bytes(range(32))     # the station NIK key of the store tests (a box's is random, in its own file)


@pytest.fixture
def store(tmp_path, manual_clock):
    """A :class:`Store` at ``<tmp>/kartud.db``, open, on ``manual_clock``, with :data:`TEST_KEY`; closed after the test."""
    store = Store(str(tmp_path / "kartud.db"), manual_clock, key=TEST_KEY)
    store.open()
    yield store
    store.close()


def key_file(directory) -> str:
    """``<directory>/nik.key`` holding :data:`TEST_KEY` as ``kartud make-key`` writes a key (hex, mode 0600),
    for a config's ``store.key_file``; returns its path."""
    path = os.path.join(str(directory), "nik.key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(TEST_KEY.hex() + "\n")
    return path
