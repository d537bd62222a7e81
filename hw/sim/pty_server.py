"""Serve a simulated printer on a pseudo-terminal whose slave side is reached through a symlink, as a serial port."""

from __future__ import annotations

import logging
import os
import select
import threading
import tty

log = logging.getLogger("kartud.sim.pty")


class PtyServer:
    """The simulator on a pty: bytes the host writes to ``link_path`` go to ``device.feed``, and its
    answers come back. The server keeps its own handle on the slave side, so the host closing the
    port (or dying) changes nothing: a card parked mid-job stays parked, as in a real printer.

    :meth:`unplug` closes the pty (the host's next read fails, as with a USB-serial cable pulled);
    :meth:`replug` makes a new pty behind the same ``link_path``.
    """

    def __init__(self, device, link_path: str):
        self.device = device
        self.link_path = os.path.abspath(link_path)
        self._master: int | None = None
        self._slave: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def start(self) -> "PtyServer":
        self.replug()
        return self

    def replug(self) -> None:
        """Open a fresh pty and point ``link_path`` at it."""
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)                  # no echo, no line discipline: the printer sees every byte as sent
        temporary = f"{self.link_path}.{os.getpid()}.new"
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(os.ttyname(slave), temporary)
        os.replace(temporary, self.link_path)
        self._master, self._slave = master, slave
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(master,), name="kartud-sim-pty", daemon=True)
        self._thread.start()
        log.info("simulated printer on %s (%s)", self.link_path, os.ttyname(slave))

    def unplug(self) -> None:
        """Close the pty: the host's port fails until it reopens ``link_path`` after :meth:`replug`."""
        if not self.plugged:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(10)
        os.read(self._wake_r, 64)
        for fd in (self._master, self._slave):
            os.close(fd)
        self._master = self._slave = None

    def stop(self) -> None:
        """Unplug and remove the symlink."""
        self.unplug()
        if os.path.islink(self.link_path):
            os.unlink(self.link_path)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _serve(self, master: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([master, self._wake_r], [], [], 1.0)
            if master not in ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:                # EIO: no process has the slave open (cannot happen while we hold it)
                continue
            answer = self.device.feed(data)
            if answer and not self._stop.is_set():
                self._write(master, answer)

    def _write(self, master: int, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._stop.is_set():
            _, writable, _ = select.select([], [master], [], 1.0)
            if writable:
                view = view[os.write(master, view):]
