"""journald's native protocol, spoken with the standard library: one entry of KEY=VALUE fields as one datagram.

What ``sd_journal_sendv`` in libsystemd does (systemd.io/JOURNAL_NATIVE_PROTOCOL), without loading
libsystemd into the daemon (0.8 MiB of the idle daemon: docs/performance.md, "Memory"):

- a field is ``KEY=value`` and a newline; a value holding a newline is ``KEY``, a newline, its length
  as 64-bit little-endian, the bytes and a newline;
- an entry too big for one datagram goes as a sealed memfd whose descriptor is passed with
  SCM_RIGHTS in an empty datagram; journald reads the entry from it.

Unlike libsystemd, a missing socket is an error here too (libsystemd drops the entry silently), so the
handler puts that record on stderr instead.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from typing import Iterable

SOCKET_PATH = "/run/systemd/journal/socket"
SEND_BUFFER = 8 << 20       # as libsystemd asks for; the kernel caps it at net.core.wmem_max
# The datagram did not fit (EMSGSIZE) or the queue is full for now: the entry goes through a memfd.
_TOO_BIG = (errno.EMSGSIZE, errno.ENOBUFS, errno.EAGAIN)
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL


def encode_entry(fields: Iterable[tuple[str, str]]) -> bytes:
    """One entry in the native framing. Names are the caller's (upper-case letters, digits, underscores)."""
    parts = []
    for name, value in fields:
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            parts.append(b"%s\n%s%s\n" % (name.encode(), struct.pack("<Q", len(data)), data))
        else:
            parts.append(b"%s=%s\n" % (name.encode(), data))
    return b"".join(parts)


class JournalSocket:
    """A datagram socket to journald. :meth:`send` raises OSError when the entry could not be handed over
    (journald not listening, its socket gone, a memfd refused), so the caller can put it elsewhere.

    >>> journal = JournalSocket("/run/systemd/journal/socket")     # doctest: +SKIP
    >>> journal.send([("MESSAGE", "ready"), ("PRIORITY", "6")])    # doctest: +SKIP
    """

    def __init__(self, path: str = SOCKET_PATH):
        self.path = path
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            except OSError:     # a smaller buffer only sends more entries through a memfd
                pass
            self._sock = sock
        return self._sock

    def send(self, fields: Iterable[tuple[str, str]]) -> None:
        """Hand one entry to journald (blocking, as libsystemd does, while journald's queue is full)."""
        data = encode_entry(fields)
        sock = self._socket()
        try:
            sock.sendto(data, self.path)
        except OSError as exc:
            if exc.errno not in _TOO_BIG:
                raise
            self._send_as_memfd(sock, data)

    def _send_as_memfd(self, sock: socket.socket, data: bytes) -> None:
        memfd = os.memfd_create("journal-entry", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(memfd, view):]
            fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, _SEALS)   # journald takes only a sealed memfd
            os.lseek(memfd, 0, os.SEEK_SET)                  # journald maps it whole; a plain reader starts here
            sock.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", memfd))],
                         0, self.path)
        finally:
            os.close(memfd)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
