"""The raw floor of a submit round trip: paho and mosquitto with TCP_NODELAY and one durable commit, nothing else.

Run as a process of its own (as kartud is): it answers every ``{ROOT}/request/#`` message on its
response topic after one single-row ``synchronous=FULL`` commit in WAL mode, then acknowledges it,
so the office's round trip through it is the least any daemon that commits before answering can do.
Without the commit (``commit=False``), and with an ``event/job`` publish a request as kartud makes
(``event=True``), it measures what paho alone costs (:mod:`paho_ceiling`).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from station import ROOT


class RawFloor:
    """The responder running in a child process, from :meth:`start` to :meth:`stop`."""

    def __init__(self, port: int, directory: str, one_core: bool = False, commit: bool = True, event: bool = False):
        self.port, self.directory, self.one_core = port, directory, one_core
        self.commit, self.event = commit, event
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "RawFloor":
        os.makedirs(self.directory, exist_ok=True)
        prefix = ["taskset", "-c", "0"] if self.one_core else []
        self.process = subprocess.Popen([*prefix, sys.executable, os.path.abspath(__file__), str(self.port), self.directory,
                                         "commit" if self.commit else "-", "event" if self.event else "-"],
                                        stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the raw-floor responder did not start")
        return self

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)


def _serve(port: int, directory: str, commit: bool = True, event: bool = False) -> None:
    path = os.path.join(directory, "raw-floor.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    subscribed = threading.Event()

    def on_message(client, userdata, message) -> None:
        if commit:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (body) VALUES (?)", (message.payload,))
            conn.execute("COMMIT")
        properties = Properties(PacketTypes.PUBLISH)
        properties.CorrelationData = message.properties.CorrelationData
        client.publish(message.properties.ResponseTopic, b'{"status":"ok"}', qos=1, properties=properties)
        if event:
            client.publish(f"{ROOT}/event/job", b'{"event":"job"}', qos=1)
        client.ack(message.mid, message.qos)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="raw-floor", protocol=mqtt.MQTTv5,
                         manual_ack=True)
    client.on_socket_open = lambda c, u, s: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, *a: c.subscribe(f"{ROOT}/request/#", qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    subscribed.wait(10)
    # The office client waits for "online" before it sends; the daemon started later says it again.
    client.publish(f"{ROOT}/availability", "online", qos=1, retain=True).wait_for_publish(5)
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()
    client.publish(f"{ROOT}/availability", "", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    _serve(int(sys.argv[1]), sys.argv[2], sys.argv[3:4] != ["-"], sys.argv[4:5] == ["event"])
