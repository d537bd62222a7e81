"""The office side under load: bursts of QoS 1 requests and one-at-a-time round trips, over a real broker."""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kartud.room.fake_people import fake_job, fake_person, render_front

from station import ROOT

WINDOW = 20_000      # unanswered requests at most during a burst (far above what the daemon batches: 500)


def one_bit_face() -> bytes:
    """A valid 1016x648 1-bit face (~0.5 KB, ~0.3 ms to decode): the job is about 1 KB in all."""
    from PIL import Image, ImageDraw

    image = Image.new("1", (1016, 648), 1)
    ImageDraw.Draw(image).text((40, 40), "KARTU CONTOH", fill=0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class Jobs:
    """Fresh job payloads (JSON bytes): unique job, record and NIK each. ``colour`` faces are drawn people
    (~31 KB, 5-7 ms to decode), reused from a small set since only their decoding matters here."""

    def __init__(self, seed: int = 17):
        self.rng = random.Random(seed)
        self.serial = 0
        self.bw = one_bit_face()
        self.colour: list[bytes] = []

    def make(self, count: int, colour: bool = False, card_type: str = "KIA") -> list[bytes]:
        if colour and not self.colour:
            self.colour = [render_front(fake_person(self.rng, n), self.rng) for n in range(16)]
        out = []
        for _ in range(count):
            self.serial += 1
            face = self.colour[self.serial % len(self.colour)] if colour else self.bw
            job = fake_job(self.rng, self.serial, card_type, job_id=f"b-{self.serial:07d}",
                           record_id=f"PRR-B-{self.serial:07d}", front_png=face)
            out.append(json.dumps(job).encode())
        return out


class Office:
    """An MQTT 5 client with TCP_NODELAY (Nagle would add 40-88 ms a round trip) and a wide in-flight
    window, so that the daemon, not this client, is what the figures measure."""

    def __init__(self, port: int):
        self.client_id = f"bench-{uuid.uuid4().hex[:8]}"
        self.reply_topic = f"{ROOT}/response/_reply/{self.client_id}"
        self.answers = 0
        self.refused = 0
        self.last_answer = 0.0
        self._target = 0
        self._done = threading.Event()
        self._lock = threading.Lock()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_socket_open = lambda c, u, s: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.on_message = self._on_message
        subscribed = threading.Event()
        client.on_subscribe = lambda *a: subscribed.set()
        client.on_connect = lambda c, *a: c.subscribe([(self.reply_topic, 1), (f"{ROOT}/availability", 1)])
        # READY=1 comes before the daemon's MQTT subscriptions: a request sent before its "online" is lost.
        self.online = threading.Event()
        client.connect("127.0.0.1", port, keepalive=60)
        client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("the bench client could not subscribe")
        if not self.online.wait(30):
            raise RuntimeError("the daemon never said it was online")
        self.client = client

    def _on_message(self, client, userdata, message) -> None:
        if message.topic.endswith("/availability"):
            (self.online.set if message.payload == b"online" else self.online.clear)()
            return
        refused = b'"status":"error"' in message.payload
        with self._lock:
            self.answers += 1
            self.refused += refused
            self.last_answer = time.perf_counter()
            if self.answers >= self._target:
                self._done.set()

    def _publish(self, command: str, payload: bytes) -> None:
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = self.reply_topic
        properties.CorrelationData = b"x"
        self.client.publish(f"{ROOT}/request/{command}", payload, qos=1, properties=properties)

    def _expect(self, count: int) -> None:
        with self._lock:
            self._target = self.answers + count
            self._done.clear()

    def request(self, command: str, payload: dict, timeout: float = 30.0) -> None:
        self._expect(1)
        self._publish(command, json.dumps(payload).encode())
        if not self._done.wait(timeout):
            raise TimeoutError(f"{command}: no answer within {timeout} s")

    def burst(self, payloads: list[bytes], timeout: float = 600.0) -> dict[str, float]:
        """Publish every job as fast as the window allows; jobs answered a second, from the first publish to
        the last answer. At most WINDOW requests are unanswered at once: paho numbers QoS 1 messages with a
        16-bit id, and more than 65,535 outstanding on one client silently overwrite each other."""
        refused_before = self.refused
        self._expect(len(payloads))
        first_answer = self.answers
        began = time.perf_counter()
        for n, payload in enumerate(payloads):
            while n - (self.answers - first_answer) >= WINDOW:
                time.sleep(0.001)
                if time.perf_counter() - began > timeout:
                    raise TimeoutError(f"{self.answers - first_answer} answers of {n} sent within {timeout} s")
            self._publish("job/submit", payload)
        if not self._done.wait(timeout):
            raise TimeoutError(f"only {self.answers} answers of {self._target} within {timeout} s")
        elapsed = self.last_answer - began
        return {"jobs": len(payloads), "seconds": elapsed, "jobs_per_s": len(payloads) / elapsed,
                "refused": self.refused - refused_before}

    def round_trips(self, payloads: list[bytes]) -> list[float]:
        """Publish-to-answer time of each job, one at a time (seconds)."""
        return [answered - sent for sent, answered in self.round_trip_spans(payloads)]

    def round_trip_spans(self, payloads: list[bytes]) -> list[tuple[float, float]]:
        """``(published, answered)`` of each job, one at a time, by ``time.perf_counter``."""
        spans = []
        for payload in payloads:
            self._expect(1)
            began = time.perf_counter()
            self._publish("job/submit", payload)
            if not self._done.wait(30):
                raise TimeoutError("no answer within 30 s")
            spans.append((began, self.last_answer))
        return spans

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"n": len(ordered), "p50_ms": pick(0.5) * 1e3, "p99_ms": pick(0.99) * 1e3, "max_ms": ordered[-1] * 1e3}

