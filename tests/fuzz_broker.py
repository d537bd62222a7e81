"""The office's side of the fuzz through a real broker: raw requests out, every answer kept, the daemon watched and revived.

:class:`Wire` publishes exact bytes with a Response Topic and Correlation Data and keeps every
message that comes back under ``{root}/response/``, raw, by its correlation, so that a second
answer or one that is not JSON is seen, not dropped. :class:`FuzzRoom` is a print room whose
daemon cannot print (an empty feeder), so only requests change its database, and which, when a
request has killed the daemon, clears the daemon's broker session (else the broker hands the same
message to the next daemon) and starts a new one, so that hypothesis can shrink the request.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
from fuzz_requests import KEY
from fuzz_station import STATE_QUERIES
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from print_room import ROOT, STATION

from kartud.rules.signing import public_key_base64

CLOCK_START = datetime(2026, 11, 27, 1, 0, tzinfo=timezone.utc)
MAX_PAYLOAD = 65536


class DaemonDied(AssertionError):
    """The daemon process exited while a request was in hand."""


class Wire:
    def __init__(self, port: int):
        self.answers: dict[bytes, list[bytes]] = {}
        self.stray: list[tuple[str, bytes]] = []          # answers without a correlation we sent
        self.changed = threading.Condition()
        self.reply_topic = f"{ROOT}/response/_reply/fuzz-{uuid.uuid4().hex[:8]}"
        subscribed = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fuzz-{uuid.uuid4().hex[:8]}",
                             protocol=mqtt.MQTTv5)
        client.on_connect = lambda c, *a: c.subscribe(f"{ROOT}/response/#", qos=1)
        client.on_subscribe = lambda *a: subscribed.set()
        client.on_message = self._on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        self.client = client
        if not subscribed.wait(10):
            raise TimeoutError("the fuzz client never subscribed")

    def _on_message(self, client, userdata, message) -> None:
        correlation = getattr(message.properties, "CorrelationData", None)
        with self.changed:
            if correlation in self.answers:
                self.answers[correlation].append(message.payload)
            else:
                self.stray.append((message.topic, message.payload))
            self.changed.notify_all()

    def send(self, command: str, payload: bytes) -> bytes:
        correlation = uuid.uuid4().bytes
        with self.changed:
            self.answers[correlation] = []
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = self.reply_topic
        properties.CorrelationData = correlation
        self.client.publish(f"{ROOT}/request/{command}", payload, qos=1, properties=properties).wait_for_publish(10)
        return correlation

    def wait(self, correlation: bytes, process, timeout: float = 20.0) -> bytes:
        """The first answer to ``correlation``; raises :class:`DaemonDied` as soon as the daemon exits."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not self.answers[correlation]:
                if process.poll() is not None:
                    raise DaemonDied(f"the daemon exited ({process.returncode}) with this request in hand")
                if time.monotonic() > deadline:
                    raise AssertionError(f"no answer within {timeout} s")
                self.changed.wait(0.2)                  # woken by the answer; the timeout only looks at the process
            return self.answers[correlation][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def read_answer(body: bytes):
    """An answer as the office reads it: UTF-8 JSON, strictly (no NaN or Infinity)."""
    def no_constants(name):
        raise AssertionError(f"the answer holds {name}, which is not JSON")

    return json.loads(body.decode("utf-8"), parse_constant=no_constants)


class FuzzRoom:
    """A print room for the fuzz: signing ``mode`` trusting the office's key, no blank can feed, its clock
    starting at :data:`CLOCK_START` and running at real speed (so a signed ts can be written)."""

    def __init__(self, room, mode: str):
        self.room = room
        room.overrides.update({
            "mqtt.max_payload_bytes": str(MAX_PAYLOAD), "security.signing": f'"{mode}"',
            "security.trusted_keys": json.dumps([public_key_base64(KEY)]), "printer.sim.feeder_cards": "0",
            "sim.clock_speed": "1.0", "sim.clock_start": f'"{CLOCK_START.isoformat()}"'})
        self.deaths: list[str] = []
        self._start()
        self.wire = Wire(room.broker.port)
        self.db = sqlite3.connect(f"file:{room.db_path}?mode=ro", uri=True)

    def _start(self) -> None:
        self.started = time.monotonic()
        self.room.start()

    def now(self) -> float:
        """The daemon's clock, as UTC seconds (within the time its start took)."""
        return CLOCK_START.timestamp() + time.monotonic() - self.started

    def snapshot(self) -> dict:
        return {name: self.db.execute(sql).fetchall() for name, sql in STATE_QUERIES.items()}

    def revive(self, last_request) -> None:
        """If the daemon is gone, note which request came last, clear its broker session and start a new one."""
        if self.room.process.poll() is None:
            return
        self.deaths.append(f"the daemon exited ({self.room.process.returncode}) after {last_request!r}")
        purge = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"kartud-{STATION}", protocol=mqtt.MQTTv5)
        connected = threading.Event()
        purge.on_connect = lambda *a: connected.set()
        purge.connect("127.0.0.1", self.room.broker.port, clean_start=True)
        purge.loop_start()
        connected.wait(10)
        purge.disconnect()
        purge.loop_stop()
        self._start()

    def close(self) -> None:
        self.db.close()
        self.wire.close()
