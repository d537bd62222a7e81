"""The MQTT adapter: a paho v5 client with a persistent session, manual PUBACK, Last Will, and endless reconnects."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ..rules.wire import json_bytes
from ..service.office_link import OfficeLink, error_words, lost_words, refusal_words

log = logging.getLogger("kartud.mqtt")
MAX_TRACKED = 100_000     # publishes awaiting their PUBACK whose topic is kept, to name it if the broker refuses


@dataclass
class IncomingRequest:
    """One message that arrived on ``{root}/request/<command>``; ``ack()`` sends its PUBACK."""

    command: str
    payload: bytes
    retain: bool
    response_topic: str | None
    correlation_data: bytes | None
    mid: int
    qos: int
    expires_at: float | None = None     # time.monotonic() after which the sender no longer wants it
    topic: str = ""                     # the topic it came on
    sha256: str | None = None           # its fingerprint, once the intake has computed it
    answered: bool = False              # its answer (or its PUBACK alone) has been sent
    client: str | None = None           # the sender's name from its "client" user property (MQTT 5), unchecked


class MqttLink:
    """Connects the daemon to the office's broker. Every paho callback runs on paho's thread and only
    posts to the event loop; the loop owns everything else.

    Requests are acknowledged by :meth:`ack` after the daemon has committed their effect
    (``manual_ack``), so a crash before the commit makes the broker redeliver them.
    """

    def __init__(self, config, loop: asyncio.AbstractEventLoop, on_request: Callable[[IncomingRequest], None],
                 on_connected: Callable[[], None], now: Callable[[], datetime] | None = None):
        self.config = config
        self.loop = loop
        self.root = config.root
        self.on_request = on_request
        self.on_connected = on_connected     # called when the link comes up and when it goes down
        self.link = OfficeLink(f"{config.mqtt.host}:{config.mqtt.port}",
                               now or (lambda: datetime.now(timezone.utc)))
        self.connected = False
        self.stopping = False
        self._awaiting_puback: dict[int, str] = {}    # mid → topic, written by the loop, read by paho's thread
        self._refused_early: dict[int, Any] = {}
        self._puback_lock = threading.Lock()
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        cfg = self.config.mqtt
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.config.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
        client.will_set(f"{self.root}/availability", "offline", qos=1, retain=True)
        if cfg.username:
            password = None
            if cfg.password_file:
                with open(cfg.password_file, encoding="utf-8") as handle:
                    password = handle.read().strip()
            client.username_pw_set(cfg.username, password)
        if cfg.tls_ca:
            client.tls_set(ca_certs=cfg.tls_ca, certfile=cfg.tls_cert or None, keyfile=cfg.tls_key or None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_open = self._on_socket_open
        return client

    def start(self) -> None:
        """Connect in the background and keep reconnecting for ever."""
        cfg = self.config.mqtt
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = cfg.session_expiry_s
        self.client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s, clean_start=False,
                                  properties=properties)
        self.client.loop_start()
        self._network_thread = getattr(self.client, "_thread", None)

    def network_alive(self) -> bool:
        """Whether paho's network thread still runs: an exception in one of its callbacks ends it, and then
        nothing is received or sent again (the health watchdog asks this)."""
        thread = getattr(self, "_network_thread", None)
        return thread is not None and thread.is_alive()

    def stop(self) -> None:
        """Say ``offline`` (retained), then disconnect cleanly; the Will is not sent on a clean disconnect."""
        self.stopping = True
        if self.connected:
            info = self.client.publish(f"{self.root}/availability", "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho's thread ----------------------------------------------------------------------

    @staticmethod
    def _on_socket_open(client, userdata, sock) -> None:
        # Nagle plus delayed ACK costs 40-88 ms a round trip (performance-floors.md).
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:      # logged by the office link, once per change
            self.loop.call_soon_threadsafe(self._link_down, refusal_words(reason_code, self.link.where))
            return
        # Retain As Published: a live subscriber would otherwise see retain=0 and miss a retained request.
        client.subscribe(f"{self.root}/request/#", options=SubscribeOptions(qos=1, retainAsPublished=True))
        self.loop.call_soon_threadsafe(self._connected, bool(flags.session_present))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.loop.call_soon_threadsafe(self._disconnected, str(reason_code))

    def _on_connect_fail(self, client, userdata) -> None:
        # paho calls this inside its ``except OSError``: the exception is still at hand on this thread.
        exc = sys.exc_info()[1]
        words = error_words(exc, self.link.where) if exc else f"cannot connect to {self.link.where}"
        self.loop.call_soon_threadsafe(self._link_down, words)

    def _on_message(self, client, userdata, message) -> None:
        try:
            request = self._request_of(message)
        except Exception as exc:        # never let one message end paho's thread: acknowledge it and say so
            log.error("a message on a request topic could not be read (%s); it is acknowledged and dropped",
                      type(exc).__name__)
            if message.qos > 0:
                client.ack(message.mid, message.qos)
            return
        self.loop.call_soon_threadsafe(self.on_request, request)

    def _request_of(self, message) -> IncomingRequest:
        prefix = f"{self.root}/request/"
        topic = message.topic
        props = getattr(message, "properties", None)
        expiry = getattr(props, "MessageExpiryInterval", None) if props else None
        return IncomingRequest(
            command=topic[len(prefix):] if topic.startswith(prefix) else "",
            payload=message.payload, retain=bool(message.retain),
            response_topic=getattr(props, "ResponseTopic", None) if props else None,
            correlation_data=getattr(props, "CorrelationData", None) if props else None,
            mid=message.mid, qos=message.qos,
            expires_at=time.monotonic() + expiry if expiry is not None else None, topic=topic,
            client=_claimed_client(props))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        refused = getattr(reason_code, "is_failure", False)
        with self._puback_lock:
            topic = self._awaiting_puback.pop(mid, None)
            if topic is None and refused:
                self._refused_early[mid] = reason_code     # its PUBACK beat publish() to the bookkeeping
        if refused and topic is not None:
            _log_refusal(topic, reason_code)

    # -- the loop -----------------------------------------------------------------------------

    def _connected(self, session_present: bool) -> None:
        self.connected = True
        self.link.up()
        log.info("connected to the broker at %s:%s (session %s)", self.config.mqtt.host, self.config.mqtt.port,
                 "resumed" if session_present else "new")
        self.publish("availability", "online", retain=True)
        self.on_connected()

    def _disconnected(self, reason: str) -> None:
        if self.connected and not self.stopping:
            self.connected = False
            self._link_down(lost_words(reason, self.link.where))
        self.connected = False

    def _link_down(self, words: str) -> None:
        if not self.stopping and self.link.down(words):
            self.on_connected()

    def publish(self, suffix: str, payload: Any, retain: bool = False, topic: str | None = None,
                correlation_data: bytes | None = None) -> bool:
        """Publish at QoS 1 to ``{root}/<suffix>`` (or ``topic``); dicts become JSON. Queued by paho while offline.

        Never raises: a publish that cannot be made is logged and False returned. Nothing is ever
        published under ``{root}/request/``: the box must not send itself (or another box) a command.
        """
        topic = topic or f"{self.root}/{suffix}"
        if topic.startswith(f"{self.root}/request/") or topic == f"{self.root}/request":
            log.error("refused to publish onto the request topic %s", topic)
            return False
        body = payload if isinstance(payload, (str, bytes)) else json_bytes(payload)
        properties = None
        if correlation_data is not None:
            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = correlation_data
        try:
            info = self.client.publish(topic, body, qos=1, retain=retain, properties=properties)
        except (ValueError, TypeError, UnicodeError) as exc:
            log.error("cannot publish to %s: %s", topic, type(exc).__name__)
            return False
        # Not held around publish(): paho calls on_publish holding its own lock, which publish() takes too.
        with self._puback_lock:
            early = self._refused_early.pop(info.mid, None)
            if early is None and len(self._awaiting_puback) < MAX_TRACKED:
                self._awaiting_puback[info.mid] = topic
        if early is not None:
            _log_refusal(topic, early)
        return True

    def ack(self, request: IncomingRequest) -> None:
        """Send the PUBACK of a request whose effect is committed."""
        if request.qos > 0:
            self.client.ack(request.mid, request.qos)


def _claimed_client(props) -> str | None:
    """The value of the request's ``client`` user property: who the sender says it is (for the audit's actor
    of an unsigned request; a signed one is named by its key)."""
    for name, value in (getattr(props, "UserProperty", None) or []) if props else []:
        if name == "client":
            return value
    return None


def _log_refusal(topic: str, reason_code) -> None:
    # The broker took the message and threw it away (its ACL, a quota): nobody will read it.
    log.error("the broker refused our publish to %s: %s (reason code 0x%02x)", topic, reason_code,
              getattr(reason_code, "value", 0))
