"""A simulated print room on one machine: a private mosquitto and a kartud daemon on the simulated printer."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib

from ..ledger.station_key import make_key

MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence {persistence}
persistence_location {dir}/
log_dest file {dir}/mosquitto.log
set_tcp_nodelay true
max_queued_messages 100000
max_inflight_messages 1000
{user}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_pair() -> int:
    """A free port P with P + 1 free too (the vpcd reader listens on both)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free ports in a row for vpcd")


def wait_for_port(port: int, timeout: float = 10.0, process: subprocess.Popen | None = None) -> None:
    """Wait until something accepts connections on the loopback ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


class BrokerProcess:
    """A broker running as a child process (``self.process``, set by a subclass's ``start()``)."""

    process: subprocess.Popen | None = None

    def kill(self) -> None:
        """SIGKILL, as a crash or power cut would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not exited within 5 s."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


class PrivateBroker(BrokerProcess):
    """A real mosquitto on a free loopback port, in its own folder; ``kill()`` and ``start()`` again at will."""

    def __init__(self, directory: str, port: int | None = None, persistence: bool = False):
        self.directory = directory
        self.port = port or free_port()
        self.persistence = persistence
        self.process: subprocess.Popen | None = None
        os.makedirs(directory, exist_ok=True)
        self.conf = os.path.join(directory, "mosquitto.conf")
        user = "user root" if os.geteuid() == 0 else ""
        with open(self.conf, "w") as handle:
            handle.write(MOSQUITTO_CONF.format(port=self.port, dir=directory, user=user,
                                               persistence="true" if persistence else "false"))

    def start(self) -> "PrivateBroker":
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen([binary, "-c", self.conf], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for_port(self.port, process=self.process)
        return self


def sim_config(directory: str, broker_port: int, station: str = "demo-room-01", **overrides) -> str:
    """Write a config for a daemon on the simulated printer and return its path. The station's NIK key
    file is made beside it (``nik.key``) unless it exists: on a box it lives apart, in /etc/kartud.

    ``overrides`` maps "section.key" (e.g. ``"printer.sim.seconds_per_card"``) to a TOML literal.
    """
    values = {
        "station.id": f'"{station}"',
        "station.card_types": '["KTP_EL", "KIA"]',
        "mqtt.host": '"127.0.0.1"',
        "mqtt.port": str(broker_port),
        "mqtt.reconnect_min_s": "0.1",
        "mqtt.reconnect_max_s": "0.5",
        "control.socket": f'"{directory}/control.sock"',
        "store.path": f'"{directory}/kartud.db"',
        "store.key_file": f'"{os.path.abspath(directory)}/nik.key"',
        "limits.working_hours": '["mon-sun 00:00-24:00"]',
        "limits.pacing": '"none"',
        "printer.transport": '"sim"',
        "printer.status_poll_s": "0.2",
        "printer.sim.output_dir": f'"{directory}/cards"',
        "printer.sim.seconds_per_card": "15.0",
        "printer.sim.feeder_cards": "1000",
        "encoder.backend": '"sim"',
        "indicator.backend": '"none"',
        "sim.clock_speed": "100.0",
    }
    values.update(overrides)
    sections: dict[str, list[str]] = {}
    for dotted, literal in values.items():
        section, key = dotted.rsplit(".", 1)
        sections.setdefault(section, []).append(f"{key} = {literal}")
    key_file = tomllib.loads(f"k = {values['store.key_file']}")["k"]
    make_key(key_file, tomllib.loads(f"p = {values['store.path']}")["p"])
    path = os.path.join(directory, "kartud.toml")
    with open(path, "w") as handle:
        for section, lines in sections.items():
            handle.write(f"[{section}]\n" + "\n".join(lines) + "\n\n")
    return path


def start_daemon(config_path: str, log_path: str, env: dict | None = None) -> subprocess.Popen:
    """``kartud run`` as a child process, its log in ``log_path``."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "kartud.service.cli", "run", "--config", config_path],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    finally:
        log.close()
