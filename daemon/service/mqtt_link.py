"""The MQTT adapter: a paho v5 client with a persistent session, manual PUBACK, Last Will, and endless reconnects."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger("kartud.mqtt")


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


class MqttLink:
    """Connects the daemon to the office's broker. Every paho callback runs on paho's thread and only
    posts to the event loop; the loop owns everything else.

    Requests are acknowledged by :meth:`ack` after the daemon has committed their effect
    (``manual_ack``), so a crash before the commit makes the broker redeliver them.
    """

    def __init__(self, config, loop: asyncio.AbstractEventLoop, on_request: Callable[[IncomingRequest], None],
                 on_connected: Callable[[], None]):
        self.config = config
        self.loop = loop
        self.root = config.root
        self.on_request = on_request
        self.on_connected = on_connected
        self.connected = False
        self.stopping = False
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
        client.on_message = self._on_message
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
        if reason_code.is_failure:
            log.warning("the broker at %s:%s refused the connection: %s", self.config.mqtt.host,
                        self.config.mqtt.port, reason_code)
            return
        # Retain As Published: a live subscriber would otherwise see retain=0 and miss a retained request.
        client.subscribe(f"{self.root}/request/#", options=SubscribeOptions(qos=1, retainAsPublished=True))
        self.loop.call_soon_threadsafe(self._connected, bool(flags.session_present))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.loop.call_soon_threadsafe(self._disconnected, str(reason_code))

    def _on_message(self, client, userdata, message) -> None:
        prefix = f"{self.root}/request/"
        props = getattr(message, "properties", None)
        expiry = getattr(props, "MessageExpiryInterval", None) if props else None
        request = IncomingRequest(
            command=message.topic[len(prefix):] if message.topic.startswith(prefix) else "",
            payload=message.payload, retain=bool(message.retain),
            response_topic=getattr(props, "ResponseTopic", None) if props else None,
            correlation_data=getattr(props, "CorrelationData", None) if props else None,
            mid=message.mid, qos=message.qos,
            expires_at=time.monotonic() + expiry if expiry is not None else None)
        self.loop.call_soon_threadsafe(self.on_request, request)

    # -- the loop -----------------------------------------------------------------------------

    def _connected(self, session_present: bool) -> None:
        self.connected = True
        log.info("connected to the broker at %s:%s (session %s)", self.config.mqtt.host, self.config.mqtt.port,
                 "resumed" if session_present else "new")
        self.publish("availability", "online", retain=True)
        self.on_connected()

    def _disconnected(self, reason: str) -> None:
        if self.connected and not self.stopping:
            log.warning("lost the broker (%s); printing goes on, reconnecting", reason)
        self.connected = False

    def publish(self, suffix: str, payload: Any, retain: bool = False, topic: str | None = None,
                correlation_data: bytes | None = None) -> None:
        """Publish at QoS 1 to ``{root}/<suffix>`` (or ``topic``); dicts become JSON. Queued by paho while offline."""
        body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload, separators=(",", ":"),
                                                                            ensure_ascii=False)
        properties = None
        if correlation_data is not None:
            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = correlation_data
        self.client.publish(topic or f"{self.root}/{suffix}", body, qos=1, retain=retain, properties=properties)

    def ack(self, request: IncomingRequest) -> None:
        """Send the PUBACK of a request whose effect is committed."""
        if request.qos > 0:
            self.client.ack(request.mid, request.qos)
