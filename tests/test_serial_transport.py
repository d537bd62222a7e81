"""The serial transport over a real pty: bounded reads and writes, a vanished device, no port reconfiguring a call."""

from __future__ import annotations

import os
import threading
import tty

import pytest

from kartud.hw.printer.transport import SerialTransport, TransportGone


@pytest.fixture
def line():
    """A SerialTransport on the slave side of a raw pty; the test plays the printer on the master side."""
    master, slave = os.openpty()
    tty.setraw(slave)
    transport = SerialTransport(os.ttyname(slave), 4_000_000)
    transport.open()
    try:
        yield transport, master
    finally:
        transport.close()
        for fd in (master, slave):
            try:
                os.close(fd)
            except OSError:
                pass


def test_a_read_returns_what_arrived_and_nothing_when_nothing_did(line):
    transport, master = line
    assert transport.read(0.0) == b""
    os.write(master, b"OK\r")
    assert transport.read(5.0) == b"OK\r"
    assert transport.read(0.05) == b""


def test_a_large_write_arrives_whole_and_in_order(line):
    transport, master = line
    data = bytes(range(256)) * 4096          # 1 MiB: far more than a pty takes at once
    received = bytearray()

    def printer():
        while len(received) < len(data):
            received.extend(os.read(master, 65536))

    reader = threading.Thread(target=printer)
    reader.start()
    transport.write(data, 5.0)
    reader.join(30)
    assert bytes(received) == data


def test_a_write_nobody_takes_times_out_as_a_lost_device(line):
    transport, _master = line
    with pytest.raises(TransportGone, match="timed out"):
        transport.write(bytes(200_000), 0.05)        # the pty fills up; the line's own time is 0.5 s at 4 Mbaud


def test_a_vanished_device_is_transport_gone(line):
    transport, master = line
    os.close(master)
    with pytest.raises(TransportGone):
        transport.read(1.0)


def test_reads_and_writes_leave_the_port_settings_alone(line, monkeypatch):
    """pyserial's timeout setters reconfigure the port (flock, tcgetattr, and tcsetattr when a setting differs);
    reads and writes wait by select instead, so none of that happens a call."""
    from serial import serialposix

    transport, master = line
    changes = []
    real_tcgetattr = serialposix.termios.tcgetattr
    monkeypatch.setattr(serialposix.termios, "tcgetattr", lambda fd: changes.append(fd) or real_tcgetattr(fd))
    for reply in (b"OK\r", b"CARD\r", b"12\r"):
        transport.write(b"\x1bRlr;p\r", 5.0)
        assert os.read(master, 64) == b"\x1bRlr;p\r"
        os.write(master, reply)
        assert transport.read(5.0) == reply
        assert transport.read(0.0) == b""
    assert changes == []


def test_a_url_without_a_device_file_still_reads_and_writes_through_pyserial():
    # loop:// (and socket://) have no fd; loop://'s fileno() raises: the select path must not be taken.
    transport = SerialTransport("loop://", 115200)
    transport.open()
    try:
        transport.write(b"\x1bRtp\r", 1.0)
        assert transport.read(1.0) == b"\x1bRtp\r"
        assert transport.read(0.05) == b""
    finally:
        transport.close()
