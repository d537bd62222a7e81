"""Fixtures: a power-cut filesystem (daemon/room/power_cut_fs.py) mounted for one test, and a print room on it."""

from __future__ import annotations

import pytest
from power_cut_room import PowerCutRoom

from kartud.room.power_cut_fs import PowerCutFilesystem


@pytest.fixture
def power_cut_disk(tmp_path):
    """A :class:`PowerCutFilesystem` mounted at ``tmp_path/disk`` from ``tmp_path/disk-backing``."""
    with PowerCutFilesystem(tmp_path / "disk-backing", tmp_path / "disk") as disk:
        yield disk


@pytest.fixture
def power_cut_room(tmp_path, broker, pcscd, power_cut_disk):
    """A :class:`PowerCutRoom` on ``power_cut_disk`` with its printer running (the test starts the daemon)."""
    room = PowerCutRoom(tmp_path / "room", broker, pcscd, power_cut_disk)
    room.start_printer()
    yield room
    room.close()
