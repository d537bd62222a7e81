"""Present the simulated card parked at the contactless station to a real pcscd through vpcd's TCP port."""

from __future__ import annotations

import logging
import socket
import struct
import threading

from .card import CardLeftField, SimChipCard

log = logging.getLogger("kartud.sim.vpcd")

# vpcd's one-byte controls (vsmartcard's vpcd.h); anything longer is a command APDU.
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4
RETRY_S = 0.05          # while pcscd is not there, try to reach vpcd this often


class VpcdLink:
    """A vpcd client ("virtual ICC") for a simulated printer's contactless station.

    Registered as one of :class:`~kartud.hw.sim.evolis_sim.EvolisSim`'s ``station_listeners``, it is
    called with the :class:`SimChipCard` arriving at the station (the card is put on the reader: connect
    to vpcd) and with None when the card moves on (taken off: close the connection). vpcd's wire
    protocol: every message either way is a 2-byte big-endian length and a payload; a 1-byte payload
    from vpcd is a control (0 power off, 1 power on, 2 reset, 4 send the ATR), anything longer is a
    C-APDU answered with the card's R-APDU.

    While a card is parked the link keeps it presented: if pcscd is not running yet, or restarts and
    drops the connection, the link connects again when vpcd listens. A card that leaves the field
    mid-command (:class:`CardLeftField`) is taken off the reader and stays off.

    >>> link = VpcdLink("127.0.0.1", 35963)
    >>> sim.station_listeners.append(link)      # doctest: +SKIP
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._presence: _Presence | None = None

    def __call__(self, card: SimChipCard | None) -> None:
        """The station listener: ``card`` arrived at the station, or (None) the card there left."""
        if card is None:
            self.withdraw()
        else:
            self.present(card)

    def present(self, card: SimChipCard) -> None:
        """Put ``card`` on the reader (taking off any card there first). Returns at once: the printer
        calls this with its state locked, and pcscd finds the card by itself."""
        with self._lock:
            if self._presence is not None:
                self._presence.end()
            self._presence = _Presence(card, self.host, self.port)

    def withdraw(self) -> None:
        """Take the card off the reader: vpcd sees the connection close, pcscd a removal."""
        with self._lock:
            if self._presence is not None:
                self._presence.end()
                self._presence = None

    @property
    def connected(self) -> bool:
        """Whether a card is on the reader with vpcd connected to it right now."""
        with self._lock:
            return self._presence is not None and self._presence.connected

    close = withdraw


class _Presence:
    """One card on the reader: a thread that reaches vpcd and answers it until :meth:`end`."""

    def __init__(self, card: SimChipCard, host: str, port: int):
        self.card, self.address = card, (host, port)
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="kartud-sim-vpcd", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def end(self) -> None:
        with self._lock:
            self._ended.set()
            if self._sock is not None:
                # shutdown, not close: it wakes the thread's recv at once and vpcd sees the card go now;
                # the thread closes the socket it owns.
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _run(self) -> None:
        while not self._ended.is_set():
            sock = self._connect()
            if sock is None:
                self._ended.wait(RETRY_S)
                continue
            try:
                left = self._serve(sock)
            finally:
                with self._lock:
                    self._sock = None
                sock.close()
            if left:
                return
            if not self._ended.is_set():
                log.info("vpcd dropped the card's connection (pcscd restarting?); presenting it again")

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(self.address, timeout=1.0)
        except OSError:
            return None
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._ended.is_set():
                sock.close()
                return None
            self._sock = sock
        return sock

    def _serve(self, sock: socket.socket) -> bool:
        """Answer vpcd until the connection ends; True when the card left the field (do not come back)."""
        while True:
            header = _read_exactly(sock, 2)
            if header is None:
                return False
            (length,) = struct.unpack(">H", header)
            message = _read_exactly(sock, length)
            if message is None:
                return False
            if length == 1:
                answer = self._control(message[0])
            else:
                try:
                    answer = self.card.transmit(message)
                except CardLeftField:
                    log.info("the simulated card left the field mid-command")
                    return True
            if answer is not None:
                try:
                    sock.sendall(struct.pack(">H", len(answer)) + answer)
                except OSError:
                    return False

    def _control(self, code: int) -> bytes | None:
        if code == CTRL_ATR:
            return self.card.atr            # an ISO 14443-4 card's ATR, as a PC/SC reader builds it
        if code in (CTRL_OFF, CTRL_ON, CTRL_RESET):
            self.card.power_off()           # a new power-up starts with nothing selected
        return None


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = bytearray()
    while len(data) < count:
        try:
            # vpcd writes a message's length and its payload separately, and Nagle holds the payload back
            # until the length is acknowledged: a delayed ACK would cost every APDU 40 ms. Linux clears
            # QUICKACK after a while, so set it before every read.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(count - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (as ``kartud-sim printer --vpcd`` takes it) as a (host, port) pair.

    >>> parse_address("127.0.0.1:35963")
    ('127.0.0.1', 35963)
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
