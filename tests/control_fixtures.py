"""Fixtures: a real control socket served from a thread's event loop, in front of a fake daemon that records
what it is asked."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from kartud.service.control_socket import ControlSocket


class FakeDaemon:
    """Answers like :meth:`Daemon.answer`: ``replies[command]`` (a full response) or an echo of the request.
    The command ``test/slow`` takes ``payload["seconds"]`` to answer, without blocking the loop."""

    def __init__(self):
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.replies: dict[str, dict[str, Any]] = {}

    async def answer(self, command: str, raw: bytes, retained: bool = False, topic: str | None = None):
        payload = json.loads(raw)
        self.calls.append((command, payload))
        if command == "test/slow":
            await asyncio.sleep(payload["seconds"])
        if command in self.replies:
            return self.replies[command]
        return {"status": "ok", "data": {"command": command, "payload": payload, "topic": topic}}


class ServedSocket:
    """``ControlSocket(daemon, path, **options)`` running on its own loop in a thread until ``stop()``."""

    def __init__(self, daemon, path: str, **options):
        self.daemon = daemon
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.server = ControlSocket(daemon, path, **options)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.started = self.call(self.server.start())

    def call(self, coroutine, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def served(tmp_path):
    """``served(daemon=None, path=None, **options)``: a :class:`ServedSocket` (a :class:`FakeDaemon` behind it unless
    given, at ``<tmp>/run/kartud/control.sock`` unless given), stopped after the test."""
    started = []

    def serve(daemon=None, path=None, **options) -> ServedSocket:
        server = ServedSocket(daemon or FakeDaemon(), path or str(tmp_path / "run" / "kartud" / "control.sock"),
                              **options)
        started.append(server)
        return server

    yield serve
    for server in started:
        server.stop()
