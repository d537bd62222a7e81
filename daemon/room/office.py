"""The office side of the MQTT API, as small blocking clients: one station (OfficeClient) or a whole fleet (FleetClient).

Used by the demo, the tests, the dispatcher (dispatcher.py) and anyone trying a box by hand::

    with OfficeClient("127.0.0.1", 1883, "kartud/kota-probolinggo-01") as office:
        print(office.request("status/get", {})["data"]["mode"])

Answers are matched by MQTT 5 Correlation Data, or else by the request's ``request_id``: across a
mosquitto bridge (MQTT 3.1.1, see etc/mosquitto/kartud-box.conf) a request loses its Response Topic
and Correlation Data, and the box answers on ``{root}/response/<command>`` echoing ``request_id``.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)


def paho_client(client_id: str, tls: tuple[str, str, str] | None, username: str | None,
                password: str | None, protocol: int = mqtt.MQTTv5) -> mqtt.Client:
    """A paho client (MQTT 5 unless told) as the office's clients use it: quick reconnects, Nagle off, TLS and a
    password if given."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    client.reconnect_delay_set(0.1, 0.5)
    client.on_socket_open = lambda c, u, s: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        client.tls_set(ca_certs=tls[0], certfile=tls[1], keyfile=tls[2])
    if username is not None:
        client.username_pw_set(username, password)
    return client


def request_id_of(payload: dict[str, Any] | bytes) -> str | None:
    """The ``request_id`` of a request payload, when it has a readable one."""
    request_id = payload.get("request_id") if isinstance(payload, dict) else None
    return request_id if isinstance(request_id, str) else None


class Answers:
    """Who waits for which answer: by Correlation Data, or by ``request_id`` when an answer carries none.
    Thread-safe: requests are sent from the caller's threads, answers arrive on paho's."""

    def __init__(self):
        self.lock = threading.Lock()
        self.queues: dict[bytes, "queue.Queue[dict]"] = {}
        self._by_request_id: dict[str, bytes] = {}
        self._request_id_of: dict[bytes, str] = {}

    def expect(self, correlation: bytes, request_id: str | None) -> "queue.Queue[dict]":
        with self.lock:
            waiter = self.queues.setdefault(correlation, queue.Queue())
            if request_id is not None:
                self._by_request_id[request_id] = correlation
                self._request_id_of[correlation] = request_id
            return waiter

    def find(self, correlation: bytes | None, body: Any) -> tuple[bytes | None, "queue.Queue[dict] | None"]:
        """The correlation and queue an answer belongs to, or (None, None)."""
        with self.lock:
            if correlation not in self.queues and isinstance(body, dict) and isinstance(body.get("request_id"), str):
                correlation = self._by_request_id.get(body["request_id"])
            waiter = self.queues.get(correlation) if correlation is not None else None
            return (correlation, waiter) if waiter is not None else (None, None)

    def forget(self, correlation: bytes) -> None:
        with self.lock:
            self.queues.pop(correlation, None)
            request_id = self._request_id_of.pop(correlation, None)
            if request_id is not None and self._by_request_id.get(request_id) == correlation:
                del self._by_request_id[request_id]


class OfficeClient:
    """An MQTT 5 client that talks to one station. Responses come back on a private topic matched by
    Correlation Data; job and fault events and the retained state are collected as they arrive.

    With ``protocol=mqtt.MQTTv311`` (a 3.1.1-only broker) a request carries no properties: it is answered on
    ``{root}/response/<command>`` and matched only by its payload's ``request_id``, which the caller must set."""

    def __init__(self, host: str, port: int, root: str, client_id: str | None = None,
                 tls: tuple[str, str, str] | None = None, username: str | None = None, password: str | None = None,
                 connect_timeout: float = 10.0, protocol: int = mqtt.MQTTv5):
        """``tls`` is ``(ca file, client certificate, client key)``; without it the connection is plain."""
        self.root = root
        self.protocol = protocol
        self.client_id = client_id or f"office-{uuid.uuid4().hex[:8]}"
        # Under the station's response/ topics: the example ACL lets a box write only below its own root.
        self.reply_topic = f"{root}/response/_reply/{self.client_id}"
        self.events: "queue.Queue[dict]" = queue.Queue()
        self.faults: "queue.Queue[dict]" = queue.Queue()
        self.state: dict | None = None
        self.availability: str | None = None
        self.link: str | None = None         # the box's bridge, when it has one: "1" connected, "0" lost
        self.state_changed = threading.Condition()
        self._answers = Answers()
        self._waiting = self._answers.queues
        self._subscribed = threading.Event()
        _connect_and_subscribe(self, host, port, tls, username, password, connect_timeout, root, protocol=protocol)

    def __enter__(self) -> "OfficeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe([(f"{self.root}/event/#", 1), (f"{self.root}/state", 1),
                          (f"{self.root}/availability", 1), (f"{self.root}/response/#", 1),
                          (f"{self.root}/bridge", 1)])

    def _on_message(self, client, userdata, message) -> None:
        topic = message.topic
        if topic == f"{self.root}/availability":
            with self.state_changed:
                self.availability = message.payload.decode()
                self.state_changed.notify_all()
            return
        if topic == f"{self.root}/bridge":
            with self.state_changed:
                self.link = message.payload.decode()
                self.state_changed.notify_all()
            return
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if topic == self.reply_topic or topic.startswith(f"{self.root}/response/"):
            _, waiter = self._answers.find(getattr(message.properties, "CorrelationData", None), body)
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
        With ``wait`` it returns once the broker has the request (its PUBACK), else at once (paho queues it).
        Over MQTT 3.1.1 there are no properties: the answer is found by the payload's ``request_id``."""
        correlation = correlation or uuid.uuid4().bytes
        self._answers.expect(correlation, request_id_of(payload))
        properties = None
        if self.protocol == mqtt.MQTTv5:
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
            self._answers.forget(correlation)

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

    def wait_link(self, value: str, timeout: float = 10.0) -> None:
        """Wait until the box's bridge says ``value`` ("1" connected, "0" lost) on ``{root}/bridge``."""
        with self.state_changed:
            if not self.state_changed.wait_for(lambda: self.link == value, timeout):
                raise TimeoutError(f"the bridge stayed {self.link!r}, not {value!r}")


class FleetClient:
    """One MQTT 5 connection to a broker that carries many stations (``<prefix>/<station>/...``): the office's
    view of a fleet. Every station's retained availability, bridge link and state document are kept as they
    arrive; answers come back by Correlation Data or ``request_id``; job events go to ``on_job_event``.

    ::

        with FleetClient("127.0.0.1", 1883) as fleet:
            fleet.wait_for(lambda f: len(f.states) >= 20)
            print(fleet.request("kota-probolinggo-01", "status/get", {})["data"]["mode"])
    """

    def __init__(self, host: str, port: int, prefix: str = "kartud", client_id: str | None = None,
                 tls: tuple[str, str, str] | None = None, username: str | None = None, password: str | None = None,
                 connect_timeout: float = 10.0, session_expiry_s: int = 3600):
        """``session_expiry_s``: how long the broker keeps this client's session (its subscriptions and the
        answers and events meant for it) across a lost connection: a reconnect then misses nothing."""
        self.prefix = prefix
        self.client_id = client_id or f"office-fleet-{uuid.uuid4().hex[:8]}"
        self.states: dict[str, dict] = {}
        self.availability: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.changed = threading.Condition()      # notified on every availability, link or state change
        self.on_job_event = None                   # called as on_job_event(station, job view), on paho's thread
        self.on_answer = None                      # called as on_answer(station, correlation, body), likewise
        self._answers = Answers()
        self._subscribed = threading.Event()
        session = Properties(PacketTypes.CONNECT)
        session.SessionExpiryInterval = session_expiry_s
        # paho starts clean only at the first connect; its reconnects resume the session the broker kept.
        _connect_and_subscribe(self, host, port, tls, username, password, connect_timeout, f"{prefix}/+", session)

    def __enter__(self) -> "FleetClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect, and let the broker drop this client's session now rather than after its expiry."""
        done = Properties(PacketTypes.DISCONNECT)
        done.SessionExpiryInterval = 0
        self.client.disconnect(properties=done)
        self.client.loop_stop()

    def reachable(self, station: str) -> bool:
        """Whether the station's daemon is up (availability ``online``) and its bridge, if it has one, is not lost."""
        return self.availability.get(station) == "online" and self.links.get(station) != "0"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe([(f"{self.prefix}/+/{leaf}", 1)
                          for leaf in ("availability", "bridge", "state", "event/job", "response/#")])

    def _on_message(self, client, userdata, message) -> None:
        try:
            self._take(message)
        except Exception:               # a defect in a callback must not end paho's thread: nothing would arrive
            log.exception("a message on %s could not be handled", message.topic)

    def _take(self, message) -> None:
        parts = message.topic.split("/")
        if len(parts) < 3 or parts[0] != self.prefix:
            return
        station, leaf = parts[1], "/".join(parts[2:])
        if leaf in ("availability", "bridge"):
            with self.changed:
                (self.availability if leaf == "availability" else self.links)[station] = message.payload.decode()
                self.changed.notify_all()
            return
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if leaf == "state":
            with self.changed:
                self.states[station] = body
                self.changed.notify_all()
        elif leaf == "event/job" and self.on_job_event is not None and isinstance(body.get("job"), dict):
            self.on_job_event(station, body["job"])
        elif leaf.startswith("response/"):
            correlation, waiter = self._answers.find(getattr(message.properties, "CorrelationData", None), body)
            if waiter is not None:
                waiter.put(body)
                if self.on_answer is not None:
                    self.on_answer(station, correlation, body)

    def send(self, station: str, command: str, payload: dict[str, Any], expiry_s: float | None = None,
             wait: bool = True) -> bytes:
        """Publish a request to ``station`` (QoS 1, with a Message Expiry when ``expiry_s`` is given: the broker
        drops it, queued or in flight, if the station has not acknowledged it by then); returns its correlation.
        With ``wait`` it returns once the broker has it (its PUBACK), else at once (paho queues it, and sends
        it again after a reconnect): a caller holding a lock that the callbacks take must not wait."""
        correlation = uuid.uuid4().bytes
        self._answers.expect(correlation, request_id_of(payload))
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = f"{self.prefix}/{station}/response/_reply/{self.client_id}"
        properties.CorrelationData = correlation
        if expiry_s is not None:
            properties.MessageExpiryInterval = max(1, round(expiry_s))
        info = self.client.publish(f"{self.prefix}/{station}/request/{command}", json.dumps(payload), qos=1,
                                   properties=properties)
        if wait:
            info.wait_for_publish(10)
        return correlation

    def forget(self, correlation: bytes) -> None:
        """Stop waiting for the answer to a request (an answer arriving later is ignored)."""
        self._answers.forget(correlation)

    def request(self, station: str, command: str, payload: dict[str, Any], timeout: float = 10.0) -> dict:
        """Send a request to ``station`` and wait for its answer."""
        correlation = self.send(station, command, payload)
        waiter = self._answers.queues.get(correlation) or queue.Queue()
        try:
            return waiter.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer from {station} within {timeout} s") from None
        finally:
            self.forget(correlation)

    def wait_for(self, predicate, timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds; it is checked on every availability, link and state change."""
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self), timeout):
                raise TimeoutError(f"the fleet never matched within {timeout} s")


def _connect_and_subscribe(owner, host: str, port: int, tls, username, password, connect_timeout: float, what: str,
                           properties: Properties | None = None, protocol: int = mqtt.MQTTv5) -> None:
    """Give ``owner`` (an office or fleet client) its paho client, connected, its loop thread running and its
    subscriptions made; a client that is not subscribed within ``connect_timeout`` is closed and raises."""
    client = paho_client(owner.client_id, tls, username, password, protocol)
    client.on_connect = owner._on_connect
    client.on_message = owner._on_message
    client.on_subscribe = lambda *a: owner._subscribed.set()
    owner.client = client
    client.connect(host, port, keepalive=30, properties=properties)
    client.loop_start()
    if not owner._subscribed.wait(connect_timeout):
        owner.close()
        raise TimeoutError(f"no subscription to {what} on {host}:{port} within {connect_timeout} s")
