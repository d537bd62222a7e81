"""A FUSE filesystem for tests that forgets, on a simulated power cut, every byte and directory entry not fsynced.

A SIGKILL is not a power cut: the kernel keeps every write of a killed process. Served from here, a
directory behaves like a disk whose cache dies with the power: :meth:`PowerCutFilesystem.power_cut`
drops whatever no ``fsync``/``fdatasync`` covered (file data, and directory entries made by create,
rename, unlink and truncate) and mounts again what was durable. The server is its own process
(:mod:`kartud.room.power_cut_server`); see its docstring for the model. Needs ``/dev/fuse``,
``fusermount3`` (Debian ``fuse3``) and ``mfusepy``; as root, POSIX locks work between processes on
one mount (the kernel keeps them), and mmap works (no direct_io), which SQLite's ``-shm`` needs.

    with PowerCutFilesystem(backing, mountpoint) as disk:
        ...                      # write under mountpoint; kill every process that has files open there
        disk.power_cut()         # what was not fsynced is gone; mounted again
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path


class PowerCutFilesystem:
    """``mountpoint`` served from ``backing_dir``, which holds only what was synced."""

    def __init__(self, backing_dir: str | Path, mountpoint: str | Path):
        self.backing_dir = str(backing_dir)
        self.mountpoint = str(mountpoint)
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.cuts = 0

    def mount(self) -> None:
        """Serve the mountpoint from the backing directory; returns once mounted."""
        os.makedirs(self.backing_dir, exist_ok=True)
        os.makedirs(self.mountpoint, exist_ok=True)
        errors = tempfile.TemporaryFile("w+")          # not a pipe: an unread pipe would stall the server
        self.process = subprocess.Popen([sys.executable, "-m", "kartud.room.power_cut_server", self.backing_dir,
                                         self.mountpoint], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=errors, text=True)
        line = self.process.stdout.readline()          # "mounted" once libfuse has called init
        if line.strip() != "mounted":
            self.process.kill()
            self.process.wait(10)
            errors.seek(0)
            error = errors.read().strip().splitlines()
            self.process = None
            raise RuntimeError(f"the power-cut filesystem did not mount at {self.mountpoint}: "
                               f"{error[-1] if error else 'no reason given'}")

    def power_cut(self) -> None:
        """Drop every byte and directory entry not covered by fsync/fdatasync, then come back mounted.
        Callers kill their processes on the mount first (a process still in it finds its files gone)."""
        self.process.kill()
        self.process.wait(10)
        self._lazy_unmount()
        self.cuts += 1
        self.mount()

    def unmount(self) -> None:
        """An orderly unmount: everything written becomes durable (as at a shutdown), then the server ends.

        The server is ended, not waited for: a process that entered a new mount namespace while the disk
        was mounted (``unshare --mount``, as the tests' private pcscd does) keeps a copy of the mount,
        and with it the FUSE connection, for as long as it lives."""
        if self.process is None:
            return
        self._ask("sync")
        if subprocess.run(["fusermount3", "-u", self.mountpoint], capture_output=True).returncode != 0:
            self._lazy_unmount()                        # busy: detach it here all the same
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def stats(self) -> dict:
        """Counters since mount or :meth:`reset_stats`: bytes_written (by write calls), bytes_synced (made
        durable by fsync/fdatasync), fsyncs, fdatasyncs, dir_fsyncs (of directories, also in fsyncs), writes, and
        pages_synced (4 KiB pages of files that the syncs rewrote, as a flash disk would)."""
        return self._ask("stats")

    def reset_stats(self) -> None:
        """Start the counters again from zero."""
        self._ask("reset")

    def _ask(self, command: str) -> dict:
        with self.lock:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
            return json.loads(self.process.stdout.readline())

    def _lazy_unmount(self) -> None:
        subprocess.run(["fusermount3", "-uz", self.mountpoint], capture_output=True)

    def __enter__(self) -> "PowerCutFilesystem":
        self.mount()
        return self

    def __exit__(self, *exc) -> None:
        self.unmount()
