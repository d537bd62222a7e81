"""Fixtures for the chip tests: a private pcscd with the vpcd reader, and a print room whose encoder talks to it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from kartud.room.sim_room import free_port_pair
from kartud.hw.sim.sim_control import send_command

from printer_fixtures import SerialRoom, SimProcess

VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
FRIENDLY_NAME = "kartud test vpcd"          # pcscd names the readers "<name> 00 00" and "<name> 00 01"
READER = f"{FRIENDLY_NAME} 00 00"           # the one on the vpcd port itself (the other is port + 1)


class PrivatePcscd:
    """A real pcscd of the tests' own, beside any system one: run under ``unshare --mount`` with
    ``directory/run`` bind-mounted over /run/pcscd (pcscd's socket path is fixed) and its own
    reader.conf folder, whose vpcd reader listens on a free ``port``. Clients reach it with
    ``PCSCLITE_CSOCK_NAME`` = :attr:`socket_path` (see :attr:`env`). ``start(reader=False)`` runs it
    with no reader at all; :meth:`kill` and :meth:`start` again keep the socket path and the port.
    """

    def __init__(self, directory: str, port: int | None = None):
        self.dir = os.path.abspath(directory)
        self.run_dir = os.path.join(self.dir, "run")
        self.conf_dir = os.path.join(self.dir, "reader.conf.d")
        self.socket_path = os.path.join(self.run_dir, "pcscd.comm")
        self.log_path = os.path.join(self.dir, "pcscd.log")
        self.port = port or free_port_pair()
        self.process: subprocess.Popen | None = None
        self.has_reader = False
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(self.conf_dir, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        """What a client process needs in its environment to talk to this pcscd."""
        return {"PCSCLITE_CSOCK_NAME": self.socket_path}

    @property
    def vpcd(self) -> str:
        """``HOST:PORT`` of the vpcd reader, for ``kartud-sim printer --vpcd``."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, reader: bool = True) -> "PrivatePcscd":
        """Start pcscd (with the vpcd reader, or with none) and return once it answers."""
        conf = os.path.join(self.conf_dir, "vpcd")
        if reader:
            with open(conf, "w") as handle:
                handle.write(f'FRIENDLYNAME "{FRIENDLY_NAME}"\nDEVICENAME /dev/null:0x{self.port:04X}\n'
                             f"LIBPATH {VPCD_DRIVER}\nCHANNELID 0x{self.port:04X}\n")
        elif os.path.exists(conf):
            os.unlink(conf)
        script = (f"mkdir -p /run/pcscd && mount --bind {self.run_dir} /run/pcscd && "
                  f"exec pcscd --foreground --info -c {self.conf_dir}")
        with open(self.log_path, "ab") as log:
            # unshare and sh exec into pcscd: the Popen is pcscd itself, so kill + wait leaves no zombie
            # whose pid would keep the next start from cleaning the stale socket.
            self.process = subprocess.Popen(["unshare", "--mount", "sh", "-c", script], stdout=log,
                                            stderr=subprocess.STDOUT)
        self.has_reader = reader
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pcscd exited with {self.process.returncode}; see {self.log_path}")
            if self._answers() and (not self.has_reader or self._vpcd_listens()):
                return
            time.sleep(0.005)                    # pcscd is ready in about 11 ms
        raise TimeoutError(f"pcscd did not start within {timeout} s; see {self.log_path}")

    def _answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(self.socket_path)
                return True
            except OSError:
                return False

    def _vpcd_listens(self) -> bool:
        # A plain TCP connect would count as a card put on the reader: look at the listening sockets.
        with open("/proc/net/tcp") as table:
            return any(line.split()[1].endswith(f":{self.port:04X}") and line.split()[3] == "0A"
                       for line in table.readlines()[1:])

    def kill(self) -> None:
        """SIGKILL, as a crash would (the socket file stays behind; the next start cleans it)."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> None:
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def ensure(self, reader: bool = True) -> "PrivatePcscd":
        """Running, with (or without) the reader: as found, or restarted."""
        if self.running and self.has_reader == reader:
            return self
        self.stop()
        return self.start(reader)


def pcscd_usable() -> str | None:
    """Why a private pcscd cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "a private pcscd needs root (unshare --mount)"
    for tool in ("pcscd", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.path.exists(VPCD_DRIVER):
        return "vsmartcard-vpcd is not installed"
    return None


@pytest.fixture(scope="session")
def pcscd_session(tmp_path_factory):
    """The session's private pcscd. This process talks to it too: PCSCLITE_CSOCK_NAME is read once,
    before the first PC/SC call, so it is set here, for the whole session, and there is only ever one
    (this module is registered once, in conftest.py's ``pytest_plugins``, so the fixture is made once)."""
    why = pcscd_usable()
    if why:
        pytest.skip(why)
    pcscd = PrivatePcscd(str(tmp_path_factory.mktemp("pcscd"))).start()
    os.environ.update(pcscd.env)
    yield pcscd
    pcscd.stop()                                 # at the end of the session


@pytest.fixture
def pcscd(pcscd_session):
    """The session's pcscd, running with its vpcd reader at the start of the test (a test before may have
    killed it or taken its reader away)."""
    return pcscd_session.ensure(reader=True)


class ChipSimProcess(SimProcess):
    """``kartud-sim printer --vpcd ... --control SOCKET`` as its own process: chip cards parked at its
    contactless station are presented to ``pcscd``, and :meth:`control` arms faults in it."""

    def __init__(self, pty_path: str, output_dir: str, pcscd: PrivatePcscd, *args: str):
        self.control_path = os.path.join(os.path.dirname(pty_path), "sim-control.sock")
        super().__init__(pty_path, output_dir, "--vpcd", pcscd.vpcd, "--control", self.control_path, *args)

    def control(self, line: str) -> None:
        """Send one control command (``arm encode chip_write_refused``, ``inject cover_open``, ...); it
        has taken effect when this returns."""
        answer = send_command(self.control_path, line)
        assert answer == "ok", f"{line!r}: {answer}"


class PcscRoom(SerialRoom):
    """A print room whose daemon prints on ``kartud-sim printer`` over a pty and encodes chips through
    ``pcscd``: ``encoder.backend = "pcsc"``, and the daemon's environment points at the private socket."""

    def __init__(self, directory, broker, pcscd: PrivatePcscd):
        super().__init__(directory, broker)
        os.makedirs(self.dir, exist_ok=True)
        self.pcscd = pcscd
        self.pty_path = os.path.join(self.dir, "ttyEVOLIS")
        self.env.update(pcscd.env)
        # The encoder waits the daemon's default 10 s for a chip (encoder.timeout_s), as a box does: with 5 s, a
        # chip blank whose chip reached pcscd later on a loaded CI machine was taken for a blank without one
        # (wrong_blank, the station waiting for a person; test_power_cut's random cuts, 2026-12-02).
        self.overrides.update({"encoder.backend": '"pcsc"', "encoder.reader": f'"{READER}"'})
        self.sim: ChipSimProcess | None = None

    def start_printer(self, *args: str) -> ChipSimProcess:
        self.sim = ChipSimProcess(self.pty_path, os.path.join(self.dir, "cards"), self.pcscd,
                                  "--seconds-per-card", "0.3", *args)
        return self.sim

    def close(self) -> None:
        super().close()
        if self.sim is not None:
            self.sim.stop()


@pytest.fixture
def pcsc_room(tmp_path, broker, pcscd):
    """A :class:`PcscRoom` with its simulator running (the test starts the daemon when it is ready)."""
    room = PcscRoom(tmp_path / "room", broker, pcscd)
    room.start_printer()
    yield room
    room.close()


__all__ = ["READER", "ChipSimProcess", "PcscRoom", "PrivatePcscd", "pcsc_room", "pcscd", "pcscd_session",
           "pcscd_usable"]
