"""A daemon under test: the real kartud process on the simulated printer, behind a private mosquitto."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time

from kartud.room.sim_room import PrivateBroker, sim_config

COOL_HEAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cool_head.py")

STATION = "bench-room-01"
ROOT = f"kartud/{STATION}"
# Nothing prints while a benchmark fills the queue, and the clock runs at real speed.
BASE = {"sim.clock_speed": "1.0", "printer.status_poll_s": "2.0", "station.card_types": '["KTP_EL", "KIA"]'}
# A printer that never runs out or fills up, with no limits in the way: for the per-card figure.
FAST_PRINTER = {
    "printer.sim.seconds_per_card": "0.01", "printer.sim.feeder_cards": "100000",
    "printer.sim.hopper_capacity": "100000", "printer.sim.reject_box_capacity": "100000",
    "printer.sim.ribbon_prints": "100000", "printer.sim.cleaning_every": "1000000",
    "limits.daily": "10000", "limits.pacing": '"none"', "limits.working_hours": '["mon-sun 00:00-24:00"]',
    "limits.cleaning_every": "1000000",
}


class NotifySocket:
    """Plays systemd's notify socket and notes when READY=1 arrives."""

    def __init__(self, path: str):
        if os.path.exists(path):
            os.unlink(path)
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.ready = threading.Event()
        self.ready_at: float | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if b"READY=1" in data.split(b"\n") and not self.ready.is_set():
                self.ready_at = time.perf_counter()
                self.ready.set()

    def close(self) -> None:
        self.sock.close()


UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "etc", "systemd", "kartud.service")


def unit_environment(path: str = UNIT) -> dict[str, str]:
    """The ``Environment=`` assignments of the unit's [Service] section, as systemd would set them (later ones
    win; an empty ``Environment=`` clears the list): the daemon is measured as a box runs it."""
    env: dict[str, str] = {}
    section = None
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section == "Service" and line.startswith("Environment="):
                assignments = shlex.split(line[len("Environment="):])
                if not assignments:
                    env.clear()
                env.update(item.split("=", 1) for item in assignments if "=" in item)
    return env


class Daemon:
    """``kartud run`` in ``directory`` against ``broker``; ``started_at``/``ready_s`` time its start. ``prefix``
    goes before the command (``["taskset", "-c", "0"]``: the daemon on one core). ``env`` is the environment
    added to the benchmark's own; None means the unit's ``Environment=`` (the daemon as a box runs it)."""

    def __init__(self, directory: str, broker: PrivateBroker, fresh: bool = True, cool_head: bool = False,
                 env: dict | None = None, prefix: list[str] | None = None, **overrides):
        if fresh:
            shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.config = sim_config(directory, broker.port, station=STATION, **{**BASE, **overrides})
        self.notify = NotifySocket(os.path.join(directory, "notify.sock"))
        self.started_at = time.perf_counter()
        program = [COOL_HEAD] if cool_head else ["-m", "kartud.service.cli"]
        with open(os.path.join(directory, "daemon.log"), "ab") as log:
            self.process = subprocess.Popen([*(prefix or []), sys.executable, *program, "run", "--config", self.config],
                                            stdout=log,
                                            stderr=subprocess.STDOUT,
                                            env={**os.environ, **(unit_environment() if env is None else env),
                                                 "NOTIFY_SOCKET": self.notify.path})
        if not self.notify.ready.wait(30):
            self.stop()
            raise RuntimeError(f"kartud did not become ready; see {directory}/daemon.log")
        self.ready_s = self.notify.ready_at - self.started_at

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.notify.close()
