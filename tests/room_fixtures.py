"""Fixtures: a real mosquitto per test, a simulated print room on it, and systemd's notify socket played by the test."""

from __future__ import annotations

import os
import socket
import threading

import pytest
from print_room import Room

from kartud.room.sim_room import PrivateBroker


@pytest.fixture
def broker(tmp_path):
    broker = PrivateBroker(str(tmp_path / "broker")).start()
    yield broker
    broker.stop()


@pytest.fixture
def room(tmp_path, broker):
    room = Room(tmp_path / "room", broker)
    os.makedirs(room.dir, exist_ok=True)
    yield room
    room.close()


class NotifyListener:
    """Plays systemd's notify socket: a thread reads every datagram at once (an unread socket would fill up
    after ten messages and block the sender), keeping them in ``messages``."""

    def __init__(self, path: str):
        self.path = path
        self.messages: list[str] = []
        self.changed = threading.Condition()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self.changed:
                self.messages.extend(data.decode().splitlines())
                self.changed.notify_all()

    def wait_for(self, message: str, timeout: float = 20.0) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: message in self.messages, timeout):
                raise TimeoutError(f"{message} never came; got {self.messages}")

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    listener = NotifyListener(str(tmp_path / "notify.sock"))
    yield listener
    listener.close()
