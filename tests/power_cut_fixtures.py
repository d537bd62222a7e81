"""Fixture: a power-cut filesystem (daemon/room/power_cut_fs.py) mounted for one test, unmounted after it."""

from __future__ import annotations

import pytest

from kartud.room.power_cut_fs import PowerCutFilesystem


@pytest.fixture
def power_cut_disk(tmp_path):
    """A :class:`PowerCutFilesystem` mounted at ``tmp_path/disk`` from ``tmp_path/disk-backing``."""
    with PowerCutFilesystem(tmp_path / "disk-backing", tmp_path / "disk") as disk:
        yield disk
