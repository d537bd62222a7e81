"""A journald stand-in: our own socket at /run/systemd/journal/socket inside a private mount namespace."""

from __future__ import annotations

import array
import os
import shutil
import socket
import struct
import threading


def parse_native(data: bytes) -> dict[str, str]:
    """One datagram of journald's native protocol: ``NAME=value`` lines, or for a value holding a newline
    ``NAME`` newline, its length as 64-bit little-endian, the bytes, newline."""
    fields: dict[str, str] = {}
    at = 0
    while at < len(data):
        end = data.index(b"\n", at)
        line = data[at:end]
        if b"=" in line:
            name, value = line.split(b"=", 1)
            at = end + 1
        else:
            name = line
            (size,) = struct.unpack("<Q", data[end + 1:end + 9])
            value = data[end + 9:end + 9 + size]
            at = end + 9 + size + 1
        fields[name.decode()] = value.decode()
    return fields


def can_capture() -> str | None:
    """Why the capture cannot work here, or None."""
    if os.geteuid() != 0:
        return "a private mount namespace needs root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    return None


class JournalCapture:
    """Binds ``<directory>/journal/socket`` and keeps every entry sent to it in ``entries``.

    :meth:`command` wraps a program so that it runs in a private mount namespace where
    ``/run/systemd`` is ``directory``: libsystemd there sends its records to us, while the
    machine's own journal (if any) is untouched.
    """

    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(os.path.join(directory, "journal"), exist_ok=True)
        self.path = os.path.join(directory, "journal", "socket")
        self.entries: list[dict[str, str]] = []
        self.raw: list[bytes] = []
        self.changed = threading.Condition()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(self.path)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def command(self, argv: list[str]) -> list[str]:
        # Where the machine has no /run/systemd, a private tmpfs on /run gives us one.
        script = ('[ -d /run/systemd ] || { mount -t tmpfs tmpfs /run && mkdir /run/systemd; }; '
                  'mount --bind "$0" /run/systemd && exec "$@"')
        # LIBMOUNT_UTAB: mount(8) keeps its bookkeeping in our folder, not in the machine's /run/mount.
        return ["env", f"LIBMOUNT_UTAB={self.directory}/utab", "unshare", "--mount", "--propagation", "private",
                "sh", "-c", script, self.directory, *argv]

    def _read(self) -> None:
        fd_size = array.array("i").itemsize
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(fd_size))
            except OSError:
                return
            for level, kind, payload in ancillary:
                # A record too big for one datagram comes as a sealed memfd (libsystemd's fallback).
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fd = array.array("i", payload[:fd_size])[0]
                    with os.fdopen(fd, "rb") as memfd:
                        data = memfd.read()
            with self.changed:
                self.raw.append(data)
                self.entries.append(parse_native(data))
                self.changed.notify_all()

    def wait_for(self, predicate, timeout: float = 20.0) -> dict[str, str]:
        """The first entry satisfying ``predicate``, waiting for it to come."""
        def found():
            return next((e for e in self.entries if predicate(e)), None)

        with self.changed:
            if not self.changed.wait_for(found, timeout):
                raise TimeoutError(f"no such journal entry within {timeout} s; got "
                                   f"{[e.get('MESSAGE') for e in self.entries]}")
            return found()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
