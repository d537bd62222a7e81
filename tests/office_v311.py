"""The office side over MQTT 3.1.1, as a 3.1.1-only broker allows: answers on {root}/response/<command>, by request_id."""

from __future__ import annotations

import uuid
from typing import Any

import paho.mqtt.client as mqtt

from kartud.room.office import OfficeClient


class Office311(OfficeClient):
    """``OfficeClient`` over MQTT 3.1.1: a request carries a fresh ``request_id`` (or the one given, for a retry)
    and its answer is the message on ``{root}/response/<command>`` that echoes it. Requests are named by their
    ``request_id`` here, not by Correlation Data (3.1.1 has none)."""

    def __init__(self, host: str, port: int, root: str, client_id: str | None = None, connect_timeout: float = 10.0,
                 username: str = "office"):     # amqtt keeps the sessions of named clients only
        super().__init__(host, port, root, client_id, username=username, connect_timeout=connect_timeout,
                         protocol=mqtt.MQTTv311)

    def send(self, command: str, payload: dict[str, Any], request_id: str | None = None) -> str:
        """Publish a request at QoS 1 with a ``request_id`` (a new one unless given); returns it once the broker
        has the request."""
        request_id = request_id or str(uuid.uuid4())
        super().send(command, {**payload, "request_id": request_id}, correlation=request_id.encode())
        return request_id

    def wait_answer(self, request_id: str, timeout: float = 10.0) -> dict:
        """The answer that echoes ``request_id``; a ``TimeoutError`` if none comes within ``timeout``."""
        return super().wait_answer(request_id.encode(), timeout)

    def answered(self, request_id: str) -> bool:
        """Whether an answer to ``request_id`` has come and not been taken by ``wait_answer``."""
        waiter = self._waiting.get(request_id.encode())
        return waiter is not None and not waiter.empty()
