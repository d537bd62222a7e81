"""The control socket: kartuctl's local way in, one JSON request per line, answered by the MQTT command handlers."""

from __future__ import annotations

import asyncio
import grp
import json
import logging
import os
import pwd
import socket
import stat
import struct
import sys
import time
from typing import Any, Protocol, runtime_checkable

from ..ledger.actors import acting_as
from ..rules.wire import json_bytes

log = logging.getLogger("kartud.control")

SOCKET_GROUP = "kartud"          # operators who may use kartuctl are members of this group
MAX_CONNECTIONS = 16             # kartuctl opens one at a time; more is a runaway script
IDLE_TIMEOUT_S = 60.0            # a connection that sends nothing for this long is closed
ENVELOPE_BYTES = 64 * 1024       # room for {"command": ..., "payload": ...} around the largest payload
DEFAULT_PAYLOAD_BYTES = 4 * 1024 * 1024
PARSE_OFF_LOOP_BYTES = 64 * 1024  # a larger line is parsed on a worker thread, so answers keep flowing
DISCARD_FOR_S = 5.0             # after a too-large request, how long its rest is read and dropped
REFUSAL_LOG_EVERY_S = 60.0       # one log line per refused uid a minute: a refused loop cannot flood the journal
# SO_PEERGROUPS (Linux 4.13+) is missing from Python's socket module; 59 is its number on the
# generic ABI that x86 and ARM use.
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59 if sys.platform.startswith("linux") else None)


@runtime_checkable
class ControlHost(Protocol):
    """What the control socket needs from the service (the :class:`~kartud.service.daemon.Daemon` is one;
    the tests put a fake that records its requests behind the socket)."""

    async def answer(self, command: str, raw: bytes, retained: bool = False,
                     topic: str | None = None) -> dict[str, Any]:
        """The full response to one raw request, as an MQTT request gets it. Never raises."""


def _error(code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "error": {"code": code, "message": message}}


def encode_line(response: dict[str, Any]) -> bytes:
    """One response as one line, serialised exactly as the MQTT link serialises it."""
    return json_bytes(response) + b"\n"


def parse_envelope(line: bytes) -> tuple[str, bytes] | dict[str, Any]:
    """``(command, payload as JSON bytes)`` from one request line, or the error response refusing it."""
    try:
        request = json.loads(line)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _error("invalid_payload", 'a control request is one line of JSON: {"command": "status/get", '
                                         '"payload": {}}')
    if not isinstance(request, dict) or not isinstance(request.get("command"), str):
        return _error("invalid_payload", 'a control request must be a JSON object with a "command" string and '
                                         'a "payload" object')
    payload = request.get("payload", {})
    if not isinstance(payload, dict):
        return _error("invalid_payload", '"payload" must be a JSON object')
    # Re-encoded so that the daemon parses and checks it exactly as it does a payload from MQTT.
    return request["command"], json_bytes(payload)


def peer_credentials(sock) -> tuple[int, int, int]:
    """``(pid, uid, gid)`` of the process at the other end of a Unix socket, as the kernel knows them."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", raw)


def peer_groups(sock, uid: int) -> set[int] | None:
    """The peer's supplementary groups from the kernel (SO_PEERGROUPS); failing that, from the group
    database for its user name; None when neither can tell."""
    if SO_PEERGROUPS is not None:
        try:
            # 1024 bytes (256 groups) is the most Python's getsockopt accepts; more raises ERANGE.
            raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 1024)
            return set(struct.unpack(f"{len(raw) // 4}I", raw))
        except OSError:
            pass
    try:
        name = pwd.getpwuid(uid).pw_name
        return {entry.gr_gid for entry in grp.getgrall() if name in entry.gr_mem}
    except KeyError:
        return None


def socket_group(name: str = SOCKET_GROUP) -> tuple[int, str]:
    """``(gid, name)`` of the group the socket belongs to: ``name`` where it exists, else the daemon's own."""
    try:
        return grp.getgrnam(name).gr_gid, name
    except KeyError:
        gid = os.getegid()
        try:
            return gid, grp.getgrgid(gid).gr_name
        except KeyError:
            return gid, str(gid)


class ControlSocket:
    """An asyncio Unix stream server at ``path`` that answers kartuctl.

    Each line ``{"command": "job/get", "payload": {"job_id": "j-1"}}`` gets one line back: the very
    response an MQTT request gets, from ``await host.answer(command, payload_bytes)`` (topic None:
    the socket is local and permission-checked, so no request signature is asked for). A request
    line may hold ``max_payload_bytes`` of payload (``mqtt.max_payload_bytes``, as over MQTT) and its
    envelope, unless ``max_request_bytes`` says otherwise.

    Who may connect: root, the daemon's own user, and members of the socket's group (``kartud``
    where that group exists). The file is mode 0660 in that group, and the kernel's account of the
    peer (SO_PEERCRED) is checked as well, so a socket made reachable by mistake still refuses.

    >>> server = ControlSocket(daemon, "/run/kartud/control.sock")   # doctest: +SKIP
    >>> await server.start(); ...; await server.close()              # doctest: +SKIP
    """

    def __init__(self, host: ControlHost, path: str, group: str = SOCKET_GROUP, max_request_bytes: int | None = None,
                 max_payload_bytes: int = DEFAULT_PAYLOAD_BYTES):
        self.host = host
        self.path = path
        self.gid, self.group_name = socket_group(group)
        self.max_request_bytes = max_request_bytes or max_payload_bytes + ENVELOPE_BYTES
        self._server: asyncio.AbstractServer | None = None
        self._inode: tuple[int, int] | None = None
        self._connections: set[asyncio.Task] = set()
        self._last_refusal_log: dict[int, float] = {}

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> bool:
        """Create the socket and start answering. On failure (a folder that cannot be made, say) log why
        and return False: the station goes on printing and answering over MQTT without it."""
        try:
            sock = self._bind()
            self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=self.max_request_bytes)
        except OSError as exc:
            log.error("the control socket %s cannot be created (%s); kartuctl will not reach this daemon",
                      self.path, exc.strerror or exc)
            return False
        log.info("control socket listening at %s (group %s)", self.path, self.group_name)
        return True

    def _bind(self) -> socket.socket:
        """Bind under a temporary name, set mode and group, then rename into place: the socket is never
        reachable at ``path`` with looser permissions (changing the umask would race other threads)."""
        directory = os.path.dirname(self.path) or "."
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o750, exist_ok=True)
            _chgrp(directory, self.gid)
        self._remove_stale()
        temporary = os.path.join(directory, f".{os.path.basename(self.path)}.{os.getpid()}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if os.path.lexists(temporary):
                os.unlink(temporary)
            sock.bind(temporary)
            os.chmod(temporary, 0o660)
            _chgrp(temporary, self.gid)
            os.rename(temporary, self.path)
            info = os.stat(self.path)
            self._inode = (info.st_dev, info.st_ino)
            sock.setblocking(False)
            return sock
        except BaseException:
            sock.close()
            if os.path.lexists(temporary):
                os.unlink(temporary)
            raise

    def _remove_stale(self) -> None:
        """A socket left by a daemon that died. Only one daemon runs per database (the store's lock,
        taken before this), so nobody else is answering on it; anything that is not a socket is kept."""
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise OSError(f"{self.path} exists and is not a socket; remove it or set control.socket elsewhere")
        os.unlink(self.path)

    async def close(self) -> None:
        """Stop listening, end open connections (their requests are not half-answered: a request in
        progress is cancelled before its response is written) and remove the socket file."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        try:
            info = os.stat(self.path)
            if (info.st_dev, info.st_ino) == self._inode:     # never remove a newer daemon's socket
                os.unlink(self.path)
        except FileNotFoundError:
            pass

    # -- connections --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            await self._conversation(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass                                    # the client went away; nothing to answer
        except Exception:
            log.exception("control socket: internal error on a connection")
        finally:
            self._connections.discard(task)
            writer.close()

    async def _conversation(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) > MAX_CONNECTIONS:
            await self._send(writer, _error("busy", f"the control socket already serves {MAX_CONNECTIONS} "
                                                    "connections; try again in a moment"))
            return
        sock = writer.get_extra_info("socket")
        refusal = self._check_peer(sock)
        if refusal is not None:
            await self._send(writer, refusal)
            return
        with acting_as(unix_actor(peer_credentials(sock)[1])):     # what this user asks is audited as theirs
            await self._requests(reader, writer)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT_S)
            except asyncio.TimeoutError:
                return
            except ValueError:                      # longer than the limit: the rest cannot be resynchronised
                await self._send(writer, _error("payload_too_large", f"a control request may be at most "
                                                                     f"{self.max_request_bytes} bytes"))
                await self._discard_rest(reader)
                return
            if not line:
                return
            if not line.strip():
                continue
            await self._send(writer, await self._answer(line))

    @staticmethod
    async def _discard_rest(reader: asyncio.StreamReader) -> None:
        """Read and drop what the client is still sending, for a few seconds at most: a client blocked
        writing the rest of a huge request would otherwise never get to read the refusal."""
        deadline = asyncio.get_running_loop().time() + DISCARD_FOR_S
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                if not await asyncio.wait_for(reader.read(65536), left):
                    return
            except asyncio.TimeoutError:
                return

    async def _answer(self, line: bytes) -> dict[str, Any]:
        if len(line) > PARSE_OFF_LOOP_BYTES:
            parsed = await asyncio.get_running_loop().run_in_executor(None, parse_envelope, line)
        else:
            parsed = parse_envelope(line)
        if isinstance(parsed, dict):
            return parsed
        command, payload = parsed
        return await self.host.answer(command, payload)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, response: dict[str, Any]) -> None:
        writer.write(encode_line(response))
        await writer.drain()

    def _check_peer(self, sock) -> dict[str, Any] | None:
        """None when the peer may talk to the daemon, else the refusal to send it (and a log line)."""
        pid, uid, gid = peer_credentials(sock)
        if uid in (0, os.geteuid()) or gid == self.gid:
            return None
        groups = peer_groups(sock, uid)
        if groups is not None and self.gid in groups:
            return None
        now = time.monotonic()
        if now - self._last_refusal_log.get(uid, -REFUSAL_LOG_EVERY_S) >= REFUSAL_LOG_EVERY_S:
            self._last_refusal_log[uid] = now
            log.warning("control socket: refused uid %d (pid %d): not root, not kartud's user, not in group %s",
                        uid, pid, self.group_name)
        return _error("permission_denied", f"user {_user_name(uid)} may not control kartud: only root, kartud's "
                                           f"own user and members of group {self.group_name} may. An administrator "
                                           f"can add you with: usermod -aG {self.group_name} {_user_name(uid)} "
                                           "(then log in again)")


def unix_actor(uid: int) -> str:
    """The audit's actor for a request from the control socket: ``unix:`` and the user the kernel reports at
    the other end (``SO_PEERCRED``), or ``unix:uid:<n>`` for a uid without a name."""
    try:
        return f"unix:{pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"unix:uid:{uid}"


def _chgrp(path: str, gid: int) -> None:
    if os.stat(path).st_gid != gid:
        os.chown(path, -1, gid)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
