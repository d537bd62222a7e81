"""kartuctl's side of the control socket: send one JSON request line, read one JSON response line."""

from __future__ import annotations

import json
import socket
from typing import Any

CONNECT_TIMEOUT_S = 2.0
ANSWER_TIMEOUT_S = 30.0         # a month's report on a slow SD card takes a few seconds; a hung daemon never answers


class Unreachable(Exception):
    """The daemon cannot be asked. ``why`` is ``not_running`` (no socket, or nobody listening on it),
    ``denied`` (this user may not open the socket file), ``timeout`` or ``closed`` (it hung up)."""

    def __init__(self, why: str, path: str, detail: str = ""):
        super().__init__(f"{why}: {path} {detail}".strip())
        self.why = why
        self.path = path
        self.detail = detail


class Refused(Exception):
    """The daemon (or the database, for a read-only command while it is down) answered an error."""

    def __init__(self, error: dict[str, Any]):
        super().__init__(error.get("message", ""))
        self.error = error


class DatabaseUnreadable(Exception):
    """The database cannot be read (for a read-only command whose daemon is down, or for verify)."""

    def __init__(self, detail: str, daemon_down: bool = False):
        super().__init__(detail)
        self.daemon_down = daemon_down


class ControlClient:
    """A connection to the daemon's control socket; several requests may use one connection.

    >>> with ControlClient("/run/kartud/control.sock") as daemon:      # doctest: +SKIP
    ...     daemon.request("status/get", {})["data"]["mode"]
    'idle'
    """

    def __init__(self, path: str, timeout: float = ANSWER_TIMEOUT_S):
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> "ControlClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
            sock.close()
            raise Unreachable("not_running", self.path, exc.strerror or "") from None
        except PermissionError as exc:
            sock.close()
            raise Unreachable("denied", self.path, exc.strerror or "") from None
        except OSError as exc:          # a timeout included: a listener whose backlog is full is not answering
            sock.close()
            raise Unreachable("timeout" if isinstance(exc, TimeoutError) else "closed", self.path,
                              exc.strerror or "") from None
        sock.settimeout(self.timeout)
        return sock

    def request(self, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one request; return the daemon's whole response (``status``, ``data`` or ``error``)."""
        if self._sock is None:
            self._sock = self._connect()
        line = json.dumps({"command": command, "payload": payload}, ensure_ascii=False).encode("utf-8") + b"\n"
        try:
            try:
                self._sock.sendall(line)
            except (BrokenPipeError, ConnectionResetError):
                pass                        # refused at once (a peer not allowed): the refusal is still there to read
            return json.loads(self._read_line())
        except TimeoutError:
            self.close()
            raise Unreachable("timeout", self.path, f"no answer within {self.timeout:g} s") from None
        except (OSError, ValueError) as exc:   # reset, broken pipe, or a line that is not JSON
            self.close()
            raise Unreachable("closed", self.path, str(exc)) from None

    def _read_line(self) -> bytes:
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                # The daemon may have answered (a refusal) just before hanging up: use what came.
                if self._buffer.strip():
                    line, self._buffer = self._buffer, b""
                    return line
                raise ConnectionResetError("the daemon closed the connection without answering")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line
