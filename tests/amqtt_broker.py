"""A second, real broker for the tests: amqtt (PyPI), which speaks only MQTT 3.1.1, and a refusing front door for it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

from kartud.room.sim_room import BrokerProcess, free_port, wait_for_port

AMQTT_CONF = """\
listeners:
  default:
    type: tcp
    bind: 127.0.0.1:{port}
plugins:
  amqtt.plugins.authentication.AnonymousAuthPlugin:
    allow_anonymous: false
"""
# Not anonymous: amqtt drops the session of an anonymous client when it disconnects, so a client must give a
# user name (any: this plugin checks no password) to have its QoS 1 messages kept while it is away.


class AmqttBroker(BrokerProcess):
    """amqtt on a free loopback port, in its own folder: the same ``port``, ``start()``, ``kill()`` and ``stop()``
    as the mosquitto of ``PrivateBroker``. It keeps sessions and retained messages in memory only, and the
    sessions only of clients that give a user name."""

    def __init__(self, directory: str, port: int | None = None):
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        os.makedirs(directory, exist_ok=True)
        self.conf = os.path.join(directory, "amqtt.yaml")
        self.log_path = os.path.join(directory, "amqtt.log")
        with open(self.conf, "w") as handle:
            handle.write(AMQTT_CONF.format(port=self.port))

    def start(self) -> "AmqttBroker":
        binary = os.path.join(os.path.dirname(sys.executable), "amqtt")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([binary, "-c", self.conf], stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=20, process=self.process)
        return self

    def log(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()


# The CONNACK a 3.1.1 server sends a CONNECT of another protocol level (MQTT-3.1.2-2): return code 1,
# "unacceptable protocol version". amqtt sends exactly these bytes when it can parse the CONNECT; an
# MQTT 5 CONNECT that carries a Will it cannot parse, and then it says nothing at all.
REFUSE_VERSION = bytes([0x20, 0x02, 0x00, 0x01])


class VersionRefuser:
    """A TCP front door to a 3.1.1 broker that answers an MQTT 5 CONNECT as a 3.1.1 server must (CONNACK return
    code 1, then close), and passes every other connection through untouched. ``refused`` counts the refusals."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.refused = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                first = _read_packet(conn)
            except OSError:
                return
            if first is None:
                return
            if _connect_level(first) == 5:
                self.refused += 1
                conn.sendall(REFUSE_VERSION)
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                return
            with upstream:
                upstream.sendall(first)
                threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
                _pipe(conn, upstream)

    def close(self) -> None:
        self.server.close()


def _read_packet(conn: socket.socket) -> bytes | None:
    """One whole MQTT packet: the fixed header, its variable-length remaining length, and that many bytes."""
    header = _read_exact(conn, 1)
    length, multiplier, raw = 0, 1, b""
    while header is not None:
        byte = _read_exact(conn, 1)
        if byte is None:
            return None
        raw += byte
        length += (byte[0] & 0x7F) * multiplier
        multiplier *= 128
        if not byte[0] & 0x80:
            body = _read_exact(conn, length) if length else b""
            return None if body is None else header + raw + body
    return None


def _connect_level(packet: bytes) -> int | None:
    """The protocol level of a CONNECT packet (4 is 3.1.1, 5 is MQTT 5), or None for another packet."""
    if packet[0] >> 4 != 1:
        return None
    start = 1
    while packet[start] & 0x80:
        start += 1
    start += 1                                  # past the remaining length
    name_length = int.from_bytes(packet[start:start + 2], "big")
    return packet[start + 2 + name_length]


def _read_exact(conn: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
