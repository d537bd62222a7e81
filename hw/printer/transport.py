"""Byte pipes to the printer: the Transport interface, a serial line (pyserial) and an in-memory pipe."""

from __future__ import annotations

import os
import select
import threading
import time


class TransportGone(Exception):
    """The device went away (unplugged, powered off, closed); reopen to go on."""


class Transport:
    """A byte pipe to one printer. Every call is bounded by a timeout; none blocks for ever.

    ``read`` returns the bytes available within ``timeout_s`` (possibly none); ``write`` sends all
    of ``data`` or raises. A vanished device raises :class:`TransportGone` from any call.
    """

    description = "printer"

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def is_open(self) -> bool:
        raise NotImplementedError

    def write(self, data: bytes, timeout_s: float) -> None:
        raise NotImplementedError

    def read(self, timeout_s: float) -> bytes:
        raise NotImplementedError

    def discard_input(self) -> None:
        """Drop whatever the printer sent that nobody read (a late reply to a timed-out command)."""
        while self.read(0.0):
            pass


class SerialTransport(Transport):
    """A serial line through pyserial: a device path (``/dev/ttyUSB0``, a pty) or a pyserial URL
    such as ``socket://host:port``.

    >>> SerialTransport("/dev/ttyUSB0", 9600).description
    'serial /dev/ttyUSB0 at 9600 baud'
    """

    def __init__(self, port: str, baud: int = 9600):
        self.port_name = port
        self.baud = baud
        self.description = f"serial {port} at {baud} baud"
        self._port = None

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        import serial

        try:
            # 8N1 without flow control: what Evolis serial ports default to (``Pcom``) and all a pty offers.
            self._port = serial.serial_for_url(self.port_name, baudrate=self.baud, timeout=0, write_timeout=1,
                                               exclusive=True if "://" not in self.port_name else None)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._port = None
            raise TransportGone(f"cannot open {self.port_name}: {_reason(exc)}") from None

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # closing a vanished device may fail in many ways; it is gone either way
                pass

    def _require(self):
        if self._port is None:
            raise TransportGone(f"{self.port_name} is not open")
        return self._port

    def write(self, data: bytes, timeout_s: float) -> None:
        import serial

        port = self._require()
        # A panel takes minutes at 9600 baud: the time the line needs is added to the caller's bound.
        # No flush(): tcdrain has no timeout, and write() already returns only once the kernel has it all.
        limit = timeout_s + len(data) * 10 / self.baud
        try:
            if getattr(port, "fd", None) is not None:
                self._write_fd(port.fd, data, limit)
                return
            if port.write_timeout != limit:         # pyserial's setter reconfigures the port
                port.write_timeout = limit
            port.write(data)
        except serial.SerialTimeoutException:
            raise TransportGone(f"writing to {self.port_name} timed out after {limit:g} s") from None
        except _serial_errors() as exc:
            raise TransportGone(f"{self.port_name}: {_reason(exc)}") from None

    def _write_fd(self, fd: int, data: bytes, limit: float) -> None:
        """Write all of ``data`` to a device pyserial opened non-blocking, within ``limit`` seconds.

        pyserial's write takes its timeout from the port's settings (setting it reconfigures the port: flock and
        tcgetattr, each command) and copies what is left after every partial write (a pty takes 4-5 KiB at a
        time: a panel's rest is copied over a hundred times); a memoryview moves on without copying."""
        view = memoryview(data)
        deadline = time.monotonic() + limit
        while True:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                pass
            if not view:
                return
            # A partial write means the kernel's buffer is full: wait for room rather than try again at once.
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                raise TransportGone(f"writing to {self.port_name} timed out after {limit:g} s")

    def read(self, timeout_s: float) -> bytes:
        port = self._require()
        try:
            # The wait is a select on the port, so its timeout stays 0 from open() on: pyserial's timeout
            # setter reconfigures the port (flock, tcgetattr, tcsetattr if a setting differs), twice a read.
            # URLs (socket://, loop://) have no device file (pyserial's ``fd``; their ``fileno`` may raise)
            # and still wait through pyserial's timeout, as the write above decides too.
            fd = getattr(port, "fd", None)
            if fd is None:
                port.timeout = max(0.0, timeout_s)
                first = port.read(1)
                port.timeout = 0
                return first + port.read(port.in_waiting or 0) if first else b""
            if not select.select([fd], [], [], max(0.0, timeout_s))[0]:
                return b""
            # Ready with nothing waiting is how a vanished device looks: pyserial's read then raises.
            return port.read(port.in_waiting or 1)
        except _serial_errors() as exc:
            raise TransportGone(f"{self.port_name}: {_reason(exc)}") from None

    def discard_input(self) -> None:
        port = self._require()
        try:
            port.reset_input_buffer()
        except _serial_errors() as exc:
            raise TransportGone(f"{self.port_name}: {_reason(exc)}") from None


class MemoryTransport(Transport):
    """A pipe to a printer object in the same process (the in-process simulator).

    ``device.feed(data)`` takes the bytes the host writes and returns the printer's answer bytes;
    it may block for as long as the printer works on the command, as a real printer would.
    ``device.connected`` (if present) False makes the pipe behave like an unplugged cable.
    """

    description = "in-process simulated printer"

    def __init__(self, device):
        self.device = device
        self._open = False
        self._incoming = bytearray()
        self._arrived = threading.Condition()

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        if not getattr(self.device, "connected", True):
            raise TransportGone("the simulated printer is unplugged")
        with self._arrived:
            self._incoming.clear()
        self._open = True

    def close(self) -> None:
        self._open = False

    def _require(self) -> None:
        if not self._open or not getattr(self.device, "connected", True):
            self._open = False
            raise TransportGone("the simulated printer is unplugged")

    def write(self, data: bytes, timeout_s: float) -> None:
        self._require()
        answer = self.device.feed(bytes(data))
        with self._arrived:
            self._incoming += answer
            self._arrived.notify_all()

    def read(self, timeout_s: float) -> bytes:
        self._require()
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._arrived:
            while not self._incoming:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._arrived.wait(remaining):
                    return b""
            data, self._incoming = bytes(self._incoming), bytearray()
            return data


def _serial_errors() -> tuple:
    """What a serial port raises when its device vanishes: termios.error is no OSError."""
    import termios

    import serial

    return serial.SerialException, OSError, termios.error


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
