"""The office side of the MQTT API, as a small blocking client: send a request, wait for its answer, watch events.

Used by the demo, the tests and anyone trying a box by hand::

    with OfficeClient("127.0.0.1", 1883, "kartud/kota-probolinggo-01") as office:
        print(office.request("status/get", {})["data"]["mode"])
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class OfficeClient:
    """An MQTT 5 client that talks to one station. Responses come back on a private topic matched by
    Correlation Data; job and fault events and the retained state are collected as they arrive."""

    def __init__(self, host: str, port: int, root: str, client_id: str | None = None,
                 tls: tuple[str, str, str] | None = None, username: str | None = None, password: str | None = None,
                 connect_timeout: float = 10.0):
        """``tls`` is ``(ca file, client certificate, client key)``; without it the connection is plain."""
        self.root = root
        self.client_id = client_id or f"office-{uuid.uuid4().hex[:8]}"
        # Under the station's response/ topics: the example ACL lets a box write only below its own root.
        self.reply_topic = f"{root}/response/_reply/{self.client_id}"
        self.events: "queue.Queue[dict]" = queue.Queue()
        self.faults: "queue.Queue[dict]" = queue.Queue()
        self.state: dict | None = None
        self.availability: str | None = None
        self.state_changed = threading.Condition()
        self._waiting: dict[bytes, "queue.Queue[dict]"] = {}
        self._subscribed = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        client.reconnect_delay_set(0.1, 0.5)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = lambda *a: self._subscribed.set()
        client.on_socket_open = lambda c, u, s: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            client.tls_set(ca_certs=tls[0], certfile=tls[1], keyfile=tls[2])
        if username is not None:
            client.username_pw_set(username, password)
        self.client = client
        client.connect(host, port, keepalive=30)
        client.loop_start()
        if not self._subscribed.wait(connect_timeout):
            self.close()
            raise TimeoutError(f"no subscription to {root} on {host}:{port} within {connect_timeout} s")

    def __enter__(self) -> "OfficeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe([(f"{self.root}/event/#", 1), (f"{self.root}/state", 1),
                          (f"{self.root}/availability", 1), (f"{self.root}/response/#", 1)])

    def _on_message(self, client, userdata, message) -> None:
        topic = message.topic
        if topic == f"{self.root}/availability":
            with self.state_changed:
                self.availability = message.payload.decode()
                self.state_changed.notify_all()
            return
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if topic == self.reply_topic or topic.startswith(f"{self.root}/response/"):
            correlation = getattr(message.properties, "CorrelationData", None)
            waiter = self._waiting.get(correlation) if correlation else None
            if waiter is not None:
                waiter.put(body)
        elif topic == f"{self.root}/event/job":
            self.events.put(body)
        elif topic == f"{self.root}/event/fault":
            self.faults.put(body)
        elif topic == f"{self.root}/state":
            with self.state_changed:
                self.state = body
                self.state_changed.notify_all()

    def send(self, command: str, payload: dict[str, Any] | bytes, retain: bool = False,
             correlation: bytes | None = None, expiry_s: int | None = None, wait: bool = True) -> bytes:
        """Publish a request with our reply topic (and a Message Expiry, if given); returns its correlation data.
        With ``wait`` it returns once the broker has the request (its PUBACK), else at once (paho queues it)."""
        correlation = correlation or uuid.uuid4().bytes
        self._waiting.setdefault(correlation, queue.Queue())
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = self.reply_topic
        properties.CorrelationData = correlation
        properties.UserProperty = ("client", self.client_id)   # who we are, for the box's audit (unchecked)
        if expiry_s is not None:
            properties.MessageExpiryInterval = expiry_s
        body = payload if isinstance(payload, bytes) else json.dumps(payload)
        info = self.client.publish(f"{self.root}/request/{command}", body, qos=1, retain=retain, properties=properties)
        if wait:
            info.wait_for_publish(10)
        return correlation

    def wait_answer(self, correlation: bytes, timeout: float = 10.0) -> dict:
        try:
            return self._waiting[correlation].get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer within {timeout} s") from None
        finally:
            self._waiting.pop(correlation, None)

    def request(self, command: str, payload: dict[str, Any] | bytes, timeout: float = 10.0, **kwargs) -> dict:
        """Send a request and wait for its response."""
        return self.wait_answer(self.send(command, payload, **kwargs), timeout)

    def wait_state(self, predicate, timeout: float = 10.0) -> dict:
        """Wait until the retained state document satisfies ``predicate``."""
        with self.state_changed:
            if not self.state_changed.wait_for(lambda: self.state is not None and predicate(self.state), timeout):
                raise TimeoutError(f"state never matched within {timeout} s; last: {self.state}")
            return self.state

    def wait_availability(self, value: str, timeout: float = 10.0) -> None:
        with self.state_changed:
            if not self.state_changed.wait_for(lambda: self.availability == value, timeout):
                raise TimeoutError(f"availability stayed {self.availability!r}, not {value!r}")
