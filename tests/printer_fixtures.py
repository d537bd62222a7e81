"""Fixtures and helpers for the printer tests: the simulator behind a real pty or the pyusb backend, and a daemon
on a serial line."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
from print_room import STATION, Room
from store_fixtures import key_file

from kartud.hw.printer.evolis import EvolisPrinter, EvolisSettings
from kartud.hw.printer.transport import MemoryTransport, SerialTransport
from kartud.hw.printer.usb import UsbTransport
from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings
from kartud.hw.sim.firmware import PROFILES as FIRMWARE_PROFILES
from kartud.hw.sim.output import CardOutput
from kartud.hw.sim.pty_server import PtyServer
from kartud.hw.sim.usb_backend import SimUsbBackend

TRANSPORTS = ("serial", "usb")
FIRMWARES = tuple(FIRMWARE_PROFILES)


@pytest.fixture(params=FIRMWARES)
def firmware(request) -> str:
    """Each simulator firmware profile in turn (hw/sim/firmware.py): the driver's tests run against each."""
    return request.param


class Link:
    """A driver and a simulator joined by a real transport; ``unplug``/``replug`` pull and reconnect the cable."""

    def __init__(self, kind: str, sim: EvolisSim, directory: str, settings: EvolisSettings):
        self.kind, self.sim = kind, sim
        self.server = self.backend = None
        if kind == "serial":
            self.server = PtyServer(sim, os.path.join(directory, "ttyEVOLIS")).start()
            transport = SerialTransport(self.server.link_path, 115200)
        elif kind == "usb":
            self.backend = SimUsbBackend(sim)
            transport = UsbTransport(transfer_timeout_s=2.0, backend=self.backend)
        else:
            transport = MemoryTransport(sim)
        self.printer = EvolisPrinter(transport, settings)

    def unplug(self) -> None:
        if self.server is not None:
            self.server.unplug()
        elif self.backend is not None:
            self.backend.unplug()
        else:
            self.sim.connected = False

    def replug(self) -> None:
        if self.server is not None:
            self.server.replug()
        elif self.backend is not None:
            self.backend.replug()
        else:
            self.sim.connected = True

    def close(self) -> None:
        self.printer.close()
        if self.server is not None:
            self.server.stop()
        elif self.backend is not None:
            self.backend.unplug()


@contextmanager
def link(kind: str, directory, clock, sim_settings: SimSettings | None = None, settings: EvolisSettings | None = None,
         firmware: str | None = None):
    """A :class:`Link` of ``kind`` ("serial", "usb" or "memory") over a fresh simulator on ``clock`` (the test's
    ``manual_clock``: the simulator takes no real time, and stays deterministic) recording to ``directory``;
    ``firmware`` picks the simulator's firmware profile."""
    directory = str(directory)
    sim_settings = sim_settings or SimSettings()
    if firmware is not None:
        sim_settings = dataclasses.replace(sim_settings, firmware_profile=firmware)
    sim = EvolisSim(clock, CardOutput(os.path.join(directory, "cards")), sim_settings)
    joined = Link(kind, sim, directory, settings or EvolisSettings(reply_timeout_s=2.0, move_timeout_s=5.0))
    try:
        yield joined
    finally:
        joined.close()


def read_cards(directory) -> list[dict]:
    path = os.path.join(str(directory), "cards", "cards.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


# -- a daemon on a serial line ---------------------------------------------------------------------

class SerialRoom(Room):
    """A print room whose daemon drives the printer over ``printer.transport = "serial"`` at ``pty_path``.

    The simulator (its own process, or a :class:`PtyServer` in the test) records to ``<dir>/cards``,
    so :meth:`Room.cards` reads what left it.
    """

    pty_path: str = ""

    @property
    def config_path(self) -> str:
        values = {
            "station": {"id": f'"{STATION}"', "card_types": '["KTP_EL", "KIA"]'},
            "mqtt": {"host": '"127.0.0.1"', "port": str(self.broker.port), "reconnect_min_s": "0.1",
                     "reconnect_max_s": "0.5"},
            "control": {"socket": f'"{self.dir}/control.sock"'},
            "store": {"path": f'"{self.dir}/kartud.db"', "key_file": f'"{key_file(self.dir)}"'},
            "limits": {"working_hours": '["mon-sun 00:00-24:00"]', "pacing": '"none"'},
            # reply_timeout_s is the default: at 2 s a starved CI machine's late reply refused a feed (2026-12-02).
            "printer": {"transport": '"serial"', "serial_port": f'"{self.pty_path or "/dev/ttyUSB0"}"',
                        "serial_baud": "115200", "status_poll_s": "0.2", "reply_timeout_s": "5.0",
                        "move_timeout_s": "10.0"},
            "encoder": {"backend": '"none"'},
            "indicator": {"backend": '"none"'},
        }
        for dotted, literal in self.overrides.items():
            section, key = dotted.rsplit(".", 1)
            values.setdefault(section, {})[key] = literal
        path = os.path.join(self.dir, "kartud.toml")
        with open(path, "w") as handle:
            for section, keys in values.items():
                handle.write(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) + "\n")
        return path

    def wait_fault(self, code: str, active: bool = True, timeout: float = 10.0) -> None:
        """Wait until the retained state document lists (or no longer lists) ``code``."""
        self.office.wait_state(lambda s: (code in [f["code"] for f in s["faults"]]) == active, timeout=timeout)


@pytest.fixture
def serial_room(tmp_path, broker):
    """A :class:`SerialRoom` on its own pty path; the test puts a simulator there and starts the daemon."""
    room = SerialRoom(tmp_path / "room", broker)
    os.makedirs(room.dir, exist_ok=True)
    room.pty_path = os.path.join(room.dir, "ttyEVOLIS")
    yield room
    room.close()


class UsbRoom(SerialRoom):
    """A print room whose daemon (``tests/usb_daemon.py``) has the simulated printer behind pyusb's backend
    interface in its own process; :meth:`unplug` and :meth:`replug` signal it to pull and reconnect the cable."""

    def start(self, wait_online: bool = True) -> "UsbRoom":
        self.overrides.update({"printer.transport": '"usb"', "printer.sim.output_dir": f'"{self.dir}/cards"'})
        self.overrides.setdefault("printer.sim.seconds_per_card", "0.3")
        helper = os.path.join(os.path.dirname(__file__), "usb_daemon.py")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, helper, "run", "--config", self.config_path],
                                            stdout=log, stderr=subprocess.STDOUT)
        if wait_online:
            self.connect().wait_availability("online", timeout=20)
        return self

    def unplug(self) -> None:
        self.process.send_signal(signal.SIGUSR1)

    def replug(self) -> None:
        self.process.send_signal(signal.SIGUSR2)


class SimProcess:
    """``kartud-sim printer --pty PATH --output-dir DIR`` as its own process, ready when it says so."""

    def __init__(self, pty_path: str, output_dir: str, *args: str):
        self.pty_path = pty_path
        self.process = subprocess.Popen([sys.executable, "-m", "kartud.room.cli", "printer", "--pty", pty_path,
                                         "--output-dir", output_dir, *args],
                                        stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._ready.wait(15):
            self.stop()
            raise TimeoutError(f"kartud-sim printer did not start: {self.lines}")

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip())
            if "simulated printer on" in line:
                self._ready.set()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(15)


def wait_until(predicate, timeout: float = 10.0, what: str = "the condition") -> None:
    """Poll ``predicate`` (for state only a file shows, with no event to await)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


__all__ = ["TRANSPORTS", "FIRMWARES", "Link", "SerialRoom", "UsbRoom", "SimProcess", "link", "read_cards", "serial_room",
           "wait_until", "firmware"]
