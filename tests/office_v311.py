"""The office side over MQTT 3.1.1, as a 3.1.1-only broker allows: answers on {root}/response/<command>, by request_id."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt


class Office311:
    """What ``OfficeClient`` does, without MQTT 5: a request carries a fresh ``request_id`` and its answer is the
    message on ``{root}/response/<command>`` that echoes it. Events, the retained state and availability are
    collected as they arrive (the same attributes, so ``print_room.Room`` can use it as its office)."""

    def __init__(self, host: str, port: int, root: str, client_id: str | None = None, connect_timeout: float = 10.0,
                 username: str = "office"):
        self.root = root
        self.events: "queue.Queue[dict]" = queue.Queue()
        self.state: dict | None = None
        self.availability: str | None = None
        self.state_changed = threading.Condition()
        self.answers: dict[str, "queue.Queue[dict]"] = {}
        self._subscribed = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"office-{uuid.uuid4().hex[:8]}",
                             protocol=mqtt.MQTTv311)
        client.reconnect_delay_set(0.1, 0.5)
        client.username_pw_set(username)        # amqtt keeps the sessions of named clients only
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [(f"{root}/event/#", 1), (f"{root}/state", 1), (f"{root}/availability", 1), (f"{root}/response/#", 1)])
        client.on_subscribe = lambda *a: self._subscribed.set()
        client.on_message = self._on_message
        self.client = client
        client.connect(host, port, keepalive=30)
        client.loop_start()
        if not self._subscribed.wait(connect_timeout):
            self.close()
            raise TimeoutError(f"no MQTT 3.1.1 subscription on {host}:{port} within {connect_timeout} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == f"{self.root}/availability":
            with self.state_changed:
                self.availability = message.payload.decode()
                self.state_changed.notify_all()
            return
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if message.topic.startswith(f"{self.root}/response/") and isinstance(body, dict):
            self.answers.setdefault(str(body.get("request_id")), queue.Queue()).put(body)
        elif message.topic == f"{self.root}/event/job":
            self.events.put(body)
        elif message.topic == f"{self.root}/state":
            with self.state_changed:
                self.state = body
                self.state_changed.notify_all()

    def send(self, command: str, payload: dict[str, Any], request_id: str | None = None) -> str:
        """Publish a request at QoS 1 with a ``request_id`` (a new one unless given); returns it once the broker
        has the request."""
        request_id = request_id or str(uuid.uuid4())
        self.answers.setdefault(request_id, queue.Queue())
        info = self.client.publish(f"{self.root}/request/{command}", json.dumps({**payload, "request_id": request_id}),
                                   qos=1)
        info.wait_for_publish(10)
        return request_id

    def wait_answer(self, request_id: str, timeout: float = 10.0) -> dict:
        try:
            return self.answers.setdefault(request_id, queue.Queue()).get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer to {request_id} within {timeout} s") from None

    def request(self, command: str, payload: dict[str, Any], timeout: float = 10.0) -> dict:
        """Send a request and wait for the answer that echoes its ``request_id``."""
        return self.wait_answer(self.send(command, payload), timeout)

    def wait_state(self, predicate, timeout: float = 10.0) -> dict:
        with self.state_changed:
            if not self.state_changed.wait_for(lambda: self.state is not None and predicate(self.state), timeout):
                raise TimeoutError(f"state never matched within {timeout} s; last: {self.state}")
            return self.state

    def wait_availability(self, value: str, timeout: float = 10.0) -> None:
        with self.state_changed:
            if not self.state_changed.wait_for(lambda: self.availability == value, timeout):
                raise TimeoutError(f"availability stayed {self.availability!r}, not {value!r}")
