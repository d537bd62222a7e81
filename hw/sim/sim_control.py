"""A Unix socket through which tests (or a person) inject and clear faults in a simulator running as its own process."""

from __future__ import annotations

import logging
import os
import socket
import threading

log = logging.getLogger("kartud.sim.control")

USAGE = "commands: inject FAULT | clear FAULT | arm STEP FAULT | unplug | replug"


class ControlServer:
    """Serves :meth:`~kartud.hw.sim.sim_faults.FaultsMixin.inject`, ``clear`` and ``arm`` of ``sim`` on a
    Unix stream socket at ``path``: one command a line, answered ``ok`` or ``error: ...`` once it took
    effect, so a test that waits for the answer knows the fault is in place.

    >>> reply = control("arm encode chip_write_refused")   # doctest: +SKIP
    'ok'
    """

    def __init__(self, sim, path: str, cable=None):
        """``cable`` (the :class:`~kartud.hw.sim.pty_server.PtyServer`, if any) takes ``unplug`` and ``replug``."""
        self.sim = sim
        self.cable = cable
        self.path = os.path.abspath(path)
        if os.path.exists(self.path):
            os.unlink(self.path)             # a socket left by a simulator that was killed
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        os.chmod(self.path, 0o600)           # faults are for the one who started the simulator
        self._sock.listen(4)
        self._thread = threading.Thread(target=self._accept, name="kartud-sim-control", daemon=True)
        self._thread.start()

    def answer(self, line: str) -> str:
        """Carry out one command line and say how it went."""
        words = line.split()
        try:
            if len(words) == 2 and words[0] in ("inject", "clear"):
                getattr(self.sim, words[0])(words[1])
            elif len(words) == 3 and words[0] == "arm":
                self.sim.arm(words[1], words[2])
            elif len(words) == 1 and words[0] in ("unplug", "replug") and self.cable is not None:
                getattr(self.cable, words[0])()  # pull or put back the cable: the host sees its port fail
            else:
                return f"error: {USAGE}"
        except ValueError as exc:
            return f"error: {exc}"
        log.info("control: %s", line)
        return "ok"

    def close(self) -> None:
        """Stop answering and remove the socket."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return                           # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rw", encoding="utf-8", newline="\n") as stream:
            for line in stream:
                if line.strip():
                    stream.write(self.answer(line.strip()) + "\n")
                    stream.flush()


def send_command(path: str, line: str, timeout: float = 5.0) -> str:
    """Send one command to a :class:`ControlServer` at ``path`` and return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        with sock.makefile("rw", encoding="utf-8", newline="\n") as stream:
            stream.write(line + "\n")
            stream.flush()
            return stream.readline().strip()
