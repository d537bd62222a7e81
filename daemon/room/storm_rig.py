"""The storm's room as real processes: mosquitto, pcscd with vpcd, the pty printer simulator, kartud on a moved clock."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import threading
import time

from ..hw.sim.sim_control import send_command
from ..ledger.station_key import make_key
from .sim_room import PrivateBroker, free_port_pair

STATION = "storm-room-01"
ROOT = f"kartud/{STATION}"
VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
FRIENDLY_NAME = "kartud storm vpcd"
READER = f"{FRIENDLY_NAME} 00 00"
SECONDS_PER_CARD = "0.3"


def faketime_library() -> str | None:
    """Debian's libfaketime (package ``libfaketime``), or None when it is not installed."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    return found[0] if found else None


def rig_problem() -> str | None:
    """Why the storm cannot run on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "the storm needs root (its private pcscd runs under unshare --mount)"
    for tool, package in (("mosquitto", "mosquitto"), ("pcscd", "pcscd"), ("unshare", "util-linux")):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "").split(":")
                   + ["/usr/sbin", "/sbin"]):
            return f"{tool} is not installed (Debian package {package})"
    if not os.path.exists(VPCD_DRIVER):
        return "the vpcd reader is not installed (Debian package vsmartcard-vpcd)"
    if faketime_library() is None:
        return "libfaketime is not installed (Debian package libfaketime)"
    return None


def power_cut_problem() -> str | None:
    """Why the database cannot go on the power-cut filesystem here (then a power cut is SIGKILLs only), or None."""
    import importlib.util
    import shutil

    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        return "no FUSE here (/dev/fuse and fusermount3, Debian package fuse3)"
    for module in ("mfusepy", "kartud.room.power_cut_fs"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


def _listening(port: int) -> bool:
    # A TCP connect to vpcd would count as a card put on the reader: look at the listening sockets instead.
    with open("/proc/net/tcp") as table:
        return any(line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"
                   for line in table.readlines()[1:])


def write_config(directory: str, sections: dict[str, dict[str, str]]) -> str:
    """Write ``kartud.toml`` from TOML literals by section; returns its path."""
    path = os.path.join(directory, "kartud.toml")
    with open(path, "w") as handle:
        for section, keys in sections.items():
            handle.write(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) + "\n")
    return path


class StormPcscd:
    """A private pcscd (``unshare --mount``, its own /run/pcscd) whose vpcd reader listens on a free port;
    :meth:`restart` SIGKILLs it and starts it again on the same socket and port. (tests/pcsc_fixtures.py
    has the fuller version the tests use; product code cannot import it.)"""

    def __init__(self, directory: str):
        self.dir = os.path.abspath(directory)
        self.run_dir, self.conf_dir = os.path.join(self.dir, "run"), os.path.join(self.dir, "reader.conf.d")
        self.socket_path = os.path.join(self.run_dir, "pcscd.comm")
        self.port = free_port_pair()
        self.process: subprocess.Popen | None = None
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(self.conf_dir, exist_ok=True)
        with open(os.path.join(self.conf_dir, "vpcd"), "w") as handle:
            handle.write(f'FRIENDLYNAME "{FRIENDLY_NAME}"\nDEVICENAME /dev/null:0x{self.port:04X}\n'
                         f"LIBPATH {VPCD_DRIVER}\nCHANNELID 0x{self.port:04X}\n")

    def start(self) -> "StormPcscd":
        script = (f"mkdir -p /run/pcscd && mount --bind {self.run_dir} /run/pcscd && "
                  f"exec pcscd --foreground --info -c {self.conf_dir}")
        with open(os.path.join(self.dir, "pcscd.log"), "ab") as log:
            self.process = subprocess.Popen(["unshare", "--mount", "sh", "-c", script], stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not (os.path.exists(self.socket_path) and _listening(self.port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pcscd did not start; see {self.dir}/pcscd.log")
            time.sleep(0.005)                    # ready in about 11 ms; no event says so
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()


class StormPrinter:
    """``kartud-sim printer`` as its own process on a pty, its chip cards going to pcscd through vpcd and its
    faults taken over a control socket; what leaves it is in ``<output_dir>/cards.jsonl``."""

    def __init__(self, directory: str, pcscd: StormPcscd):
        self.dir = directory
        self.pty_path = os.path.join(directory, "ttyEVOLIS")
        self.output_dir = os.path.join(directory, "cards")
        self.control_path = os.path.join(directory, "sim-control.sock")
        self.pcscd = pcscd
        self.process: subprocess.Popen | None = None

    def start(self) -> "StormPrinter":
        ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kartud.room.cli", "printer", "--pty", self.pty_path, "--output-dir",
             self.output_dir, "--vpcd", f"127.0.0.1:{self.pcscd.port}", "--control", self.control_path,
             "--seconds-per-card", SECONDS_PER_CARD, "--feeder", "100000"], stderr=subprocess.PIPE, text=True)

        def copy_log(stream, path=os.path.join(self.dir, "printer.log")):
            with open(path, "a") as log:
                for line in stream:
                    log.write(line)
                    log.flush()
                    if "simulated printer on" in line:
                        ready.set()
        threading.Thread(target=copy_log, args=(self.process.stderr,), daemon=True).start()
        if not ready.wait(15):
            raise RuntimeError(f"kartud-sim printer did not start; see {self.dir}/printer.log")
        return self

    def control(self, line: str) -> str:
        """One control line (``inject FAULT``, ``clear FAULT``, ``arm STEP FAULT``, ``unplug``, ``replug``)."""
        return send_command(self.control_path, line)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)


class StormDaemon:
    """``kartud run`` (through :mod:`kartud.room.storm_daemon`) with libfaketime preloaded: :meth:`set_offset`
    moves its wall clock while it runs; its monotonic clock never moves."""

    def __init__(self, directory: str, store_dir: str, broker_port: int, printer: StormPrinter, pcscd: StormPcscd):
        self.dir, self.store_dir = directory, store_dir
        self.offset_file = os.path.join(directory, "faketime")
        self.set_offset(0)
        self.config_path = write_config(directory, {
            "station": {"id": f'"{STATION}"', "card_types": '["KTP_EL", "KIA"]'},
            "mqtt": {"host": '"127.0.0.1"', "port": str(broker_port), "reconnect_min_s": "0.1",
                     "reconnect_max_s": "0.5"},
            "control": {"socket": f'"{directory}/control.sock"'},
            "store": {"path": f'"{store_dir}/kartud.db"', "key_file": f'"{directory}/nik.key"'},
            "limits": {"working_hours": '["mon-sun 00:00-24:00"]', "pacing": '"none"', "daily": "10000",
                       "cleaning_every": "1000000"},
            "printer": {"transport": '"serial"', "serial_port": f'"{printer.pty_path}"', "serial_baud": "115200",
                        "status_poll_s": "0.2", "reply_timeout_s": "2.0", "move_timeout_s": "10.0"},
            "encoder": {"backend": '"pcsc"', "reader": f'"{READER}"', "timeout_s": "5.0"},
            "indicator": {"backend": '"none"'}})
        make_key(os.path.join(directory, "nik.key"), os.path.join(store_dir, "kartud.db"))
        self.env = {"PCSCLITE_CSOCK_NAME": pcscd.socket_path, "LD_PRELOAD": faketime_library() or "",
                    "FAKETIME_TIMESTAMP_FILE": self.offset_file, "FAKETIME_NO_CACHE": "1",
                    "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        self.process: subprocess.Popen | None = None
        self.kills = 0

    def set_offset(self, seconds: int) -> None:
        """Move the daemon's wall clock to real time + ``seconds`` (libfaketime reads the file at every call)."""
        with open(self.offset_file + ".new", "w") as handle:
            handle.write(f"{seconds:+d}\n")
        os.replace(self.offset_file + ".new", self.offset_file)

    def start(self) -> None:
        with open(os.path.join(self.dir, "daemon.log"), "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "kartud.room.storm_daemon", "run", "--config",
                                             self.config_path], stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self.env})

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.kills += 1
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


class StormRig:
    """Every process of the storm's room, under ``directory``; :meth:`close` stops them all."""

    def __init__(self, directory: str):
        self.dir = os.path.abspath(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.broker = PrivateBroker(os.path.join(self.dir, "broker"))
        self.pcscd = StormPcscd(os.path.join(self.dir, "pcscd"))
        self.printer = StormPrinter(self.dir, self.pcscd)
        self.store_dir = os.path.join(self.dir, "box")
        os.makedirs(self.store_dir, exist_ok=True)
        self.disk = None                         # the power-cut filesystem under store_dir, when there is one
        self.daemon = StormDaemon(self.dir, self.store_dir, self.broker.port, self.printer, self.pcscd)

    @property
    def db_path(self) -> str:
        return os.path.join(self.store_dir, "kartud.db")

    @property
    def cards_path(self) -> str:
        return os.path.join(self.printer.output_dir, "cards.jsonl")

    def start(self) -> "StormRig":
        if power_cut_problem() is None:
            from .power_cut_fs import PowerCutFilesystem

            self.disk = PowerCutFilesystem(os.path.join(self.dir, "disk"), self.store_dir)
            self.disk.mount()
        self.broker.start()
        self.pcscd.start()
        self.printer.start()
        self.daemon.start()
        return self

    def close(self) -> None:
        self.daemon.stop()
        if self.disk is not None:
            self.disk.unmount()
        self.printer.kill()
        self.pcscd.kill()
        self.broker.stop()
