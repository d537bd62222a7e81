"""The MQTT adapter: a paho client (MQTT 5, or 3.1.1) with a persistent session, manual PUBACK, Last Will, endless reconnects."""

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
from ..service.broker_protocol import MQTT5, UNSUPPORTED_VERSION, ProtocolChoice
from ..service.office_link import OfficeLink, error_words, lost_words, refusal_words

log = logging.getLogger("kartud.mqtt")
if mqtt.ssl is None:
    # kartud.service.cli kept ``ssl`` out (no TLS configured). paho then still names ssl's exceptions in
    # its socket reads and writes, so every EAGAIN would end in AttributeError: classes nothing raises
    # stand in for those names (the TLS calls themselves are never made without mqtt.tls_ca).
    mqtt.ssl = type("NoTls", (), {name: type(name, (OSError,), {}) for name in (
        "SSLWantReadError", "SSLWantWriteError", "CertificateError", "SSLError")})
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
    """Connects the daemon to the office's broker, in the MQTT version :class:`ProtocolChoice` picks. Every paho
    callback runs on paho's thread and only posts to the event loop; the loop owns everything else.

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
        where = f"{config.mqtt.host}:{config.mqtt.port}"
        self.protocol = ProtocolChoice(config.mqtt.protocol, where, config.mqtt.connack_timeout_s)
        self.link = OfficeLink(where, now or (lambda: datetime.now(timezone.utc)), self.protocol.status)
        self.connected = False
        self.stopping = False
        self._awaiting_puback: dict[int, str] = {}    # mid → topic, written by the loop, read by paho's thread
        self._refused_early: dict[int, Any] = {}
        self._puback_lock = threading.Lock()
        # Requests from paho's thread wait here for the loop: it is woken once per batch, not once per message.
        self._inbox: list[IncomingRequest] = []
        self._inbox_lock = threading.Lock()
        # Until auto has settled on a version, publishes wait here, not in a paho client that may be replaced.
        self._held: list[tuple[str, Any, bool, bytes | None]] = []
        self._attempt = 0                   # connection attempts (sockets opened) of the current client
        self._awaiting_connack = False      # the current attempt's CONNECT is not answered yet
        self._connack_timer: asyncio.TimerHandle | None = None
        self._switcher: threading.Thread | None = None     # replaces a client whose version the broker refused
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        cfg = self.config.mqtt
        v5 = self.protocol.current == MQTT5
        # 3.1.1 has no session expiry: the broker keeps a clean_session=False session as long as it sees fit.
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.config.client_id,
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, clean_session=None if v5 else False,
                             manual_ack=True)
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
        self._start_client(self.client)

    def _start_client(self, client: mqtt.Client) -> None:
        cfg = self.config.mqtt
        if self.protocol.current == MQTT5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = cfg.session_expiry_s
            client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s, clean_start=False,
                                 properties=properties)
        else:
            client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        client.loop_start()
        self._network_thread = getattr(client, "_thread", None)

    def network_alive(self) -> bool:
        """Whether paho's network thread still runs: an exception in one of its callbacks ends it, and then
        nothing is received or sent again (the health watchdog asks this)."""
        if self._switcher is not None and self._switcher.is_alive():
            return True             # between the refused client and its successor
        thread = getattr(self, "_network_thread", None)
        return thread is not None and thread.is_alive()

    def stop(self) -> None:
        """Say ``offline`` (retained), then disconnect cleanly; the Will is not sent on a clean disconnect."""
        self.stopping = True
        if self._switcher is not None:
            self._switcher.join(10)
        if self.connected:
            info = self.client.publish(f"{self.root}/availability", "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho's thread ----------------------------------------------------------------------

    def _on_socket_open(self, client, userdata, sock) -> None:
        # Nagle plus delayed ACK costs 40-88 ms a round trip (performance-floors.md).
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        self.loop.call_soon_threadsafe(self._attempt_opened, client)     # the CONNECT follows at once

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self.client:       # a client being replaced
            return
        if reason_code.is_failure:      # logged by the office link, once per change
            self.loop.call_soon_threadsafe(self._refused, reason_code)
            return
        if client.protocol == mqtt.MQTTv5:
            # Retain As Published: a live subscriber would otherwise see retain=0 and miss a retained request.
            client.subscribe(f"{self.root}/request/#", options=SubscribeOptions(qos=1, retainAsPublished=True))
        else:       # 3.1.1 has no such option: docs/mqtt.md says what that costs
            client.subscribe(f"{self.root}/request/#", qos=1)
        self.loop.call_soon_threadsafe(self._connected, bool(flags.session_present))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is self.client:
            self.loop.call_soon_threadsafe(self._disconnected, str(reason_code))

    def _on_connect_fail(self, client, userdata) -> None:
        # paho calls this inside its ``except OSError``: the exception is still at hand on this thread.
        exc = sys.exc_info()[1]
        words = error_words(exc, self.link.where) if exc else f"cannot connect to {self.link.where}"
        if client is self.client:
            self.loop.call_soon_threadsafe(self._link_down, words)

    def _on_message(self, client, userdata, message) -> None:
        if client is not self.client:
            return
        try:
            request = self._request_of(message)
        except Exception as exc:        # never let one message end paho's thread: acknowledge it and say so
            log.error("a message on a request topic could not be read (%s); it is acknowledged and dropped",
                      type(exc).__name__)
            if message.qos > 0:
                client.ack(message.mid, message.qos)
            return
        with self._inbox_lock:
            self._inbox.append(request)
            wake = len(self._inbox) == 1
        if wake:        # one wake-up of the loop for everything that arrives until it has run
            self.loop.call_soon_threadsafe(self._hand_over)

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

    def _hand_over(self) -> None:
        """Pass on, in arrival order, every request paho's thread has received since the last hand-over."""
        with self._inbox_lock:
            arrived, self._inbox = self._inbox, []
        for request in arrived:
            self.on_request(request)

    def _connected(self, session_present: bool) -> None:
        self._answered()
        self.protocol.worked()
        self.connected = True
        self.link.up()
        log.info("connected to the broker at %s:%s over MQTT %s (session %s)", self.config.mqtt.host,
                 self.config.mqtt.port, self.protocol.current, "resumed" if session_present else "new")
        self.publish("availability", "online", retain=True)
        held, self._held = self._held, []
        for topic, body, retain, correlation_data in held:
            self.publish("", body, retain=retain, topic=topic, correlation_data=correlation_data)
        self.on_connected()

    # -- which MQTT version: a CONNECT that is refused or never answered --------------------------

    def _attempt_opened(self, client) -> None:
        if client is not self.client or self.stopping:
            return
        self._attempt += 1
        self._awaiting_connack = True
        self._cancel_connack_timer()
        self._connack_timer = self.loop.call_later(self.protocol.answer_timeout_s, self._unanswered,
                                                   self._attempt, True)

    def _answered(self) -> None:
        self._awaiting_connack = False
        self._cancel_connack_timer()
        self.protocol.answered()

    def _cancel_connack_timer(self) -> None:
        if self._connack_timer is not None:
            self._connack_timer.cancel()
            self._connack_timer = None

    def _refused(self, reason_code) -> None:
        self._answered()
        value = getattr(reason_code, "value", reason_code)
        if self.protocol.refused(value):
            self._switch_client()
            return
        words = refusal_words(reason_code, self.link.where)
        if value == UNSUPPORTED_VERSION:
            words += f"; {self.protocol.refusal_hint()}"
        self._link_down(words)

    def _unanswered(self, attempt: int, still_open: bool) -> None:
        """The CONNECT of ``attempt`` got no CONNACK within mqtt.connack_timeout_s (``still_open``), or its
        connection closed before one came."""
        if attempt != self._attempt or not self._awaiting_connack or self.stopping:
            return
        self._awaiting_connack = False
        self._cancel_connack_timer()
        words = self.protocol.unanswered_words()
        if self.protocol.unanswered():
            self._switch_client()
            return
        self._link_down(words)
        if still_open:      # end it now, so that paho tries again after its back-off, not after its keepalive
            sock = self.client.socket()
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _switch_client(self) -> None:
        """Replace the client by one that speaks the version just chosen. Its paho thread is ended on a thread
        of its own: ``loop_stop()`` may wait up to a second for it, too long for the event loop."""
        old, self.client = self.client, self._make_client()
        fresh = self.client

        def switch() -> None:
            old.disconnect()
            old.loop_stop()
            if not self.stopping:
                self._start_client(fresh)

        self._switcher = threading.Thread(target=switch, name="kartud-mqtt-switch", daemon=True)
        self._switcher.start()

    def _disconnected(self, reason: str) -> None:
        if self._awaiting_connack:          # closed before any CONNACK came
            self._unanswered(self._attempt, False)
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
        if not self.protocol.settled:       # the client may yet be replaced: hold it (the newest retained only)
            if retain:
                self._held = [held for held in self._held if not (held[2] and held[0] == topic)]
            self._held.append((topic, body, retain, correlation_data))
            return True
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
