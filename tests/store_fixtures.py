"""Fixtures: an open store in the test's folder, on the test's manual clock."""

from __future__ import annotations

import pytest

from kartud.ledger.store import Store


@pytest.fixture
def store(tmp_path, manual_clock):
    """A :class:`Store` at ``<tmp>/kartud.db``, open, on ``manual_clock``; closed after the test."""
    store = Store(str(tmp_path / "kartud.db"), manual_clock)
    store.open()
    yield store
    store.close()
