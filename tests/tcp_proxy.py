"""A TCP proxy that a test controls: it carries a link (a box's broker to the office's) and cuts and restores it.

Two ways to cut, as a WAN fails::

    proxy = TcpProxy(office_port)
    proxy.cut()              # reset: every connection is closed at once, new ones are closed on arrival
    proxy.cut(silent=True)   # a black hole: nothing is closed, every byte either way is dropped, and new
                             # connections are accepted and never hear back; only keepalives find out
    proxy.restore()          # new connections are carried again (a black-holed one stays dead)
"""

from __future__ import annotations

import socket
import threading


class _Connection:
    """One client connection and its upstream twin, pumped by two threads."""

    def __init__(self, proxy: "TcpProxy", client: socket.socket, upstream: socket.socket | None):
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.dead = upstream is None          # a connection born in a black hole never reaches the target

    def start(self) -> None:
        threading.Thread(target=self._pump, args=(self.client, self.upstream), daemon=True).start()
        if self.upstream is not None:
            threading.Thread(target=self._pump, args=(self.upstream, self.client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if self.dead or sink is None:
                continue                      # the black hole: read and forget, so the sender's buffers never fill
            try:
                sink.sendall(data)
            except OSError:
                break
            with self.proxy.lock:
                self.proxy.bytes_carried += len(data)
        self.close()

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class TcpProxy:
    """Listens on a free loopback port (``port``) and forwards every connection to ``target_host:target_port``."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.lock = threading.Lock()
        self.state = "up"                     # "up", "reset" or "silent"
        self.connections: list[_Connection] = []
        self.accepted = 0                     # connections that reached the target: the link's reconnects
        self.bytes_carried = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return                         # closed
            with self.lock:
                state = self.state
            if state == "reset":
                client.close()
                continue
            upstream = None
            if state == "up":
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    client.close()
                    continue
            connection = _Connection(self, client, upstream)
            with self.lock:
                self.connections.append(connection)
                self.accepted += upstream is not None
            connection.start()

    def cut(self, silent: bool = False) -> None:
        """Cut the link: close every connection (``silent=False``), or drop every byte from now on (``silent``)."""
        with self.lock:
            self.state = "silent" if silent else "reset"
            connections = list(self.connections)
        for connection in connections:
            connection.dead = True
            if not silent:
                connection.close()

    def restore(self) -> None:
        """New connections are carried again; connections cut before stay cut."""
        with self.lock:
            self.state = "up"

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            connections, self.connections = list(self.connections), []
        for connection in connections:
            connection.dead = True
            connection.close()
