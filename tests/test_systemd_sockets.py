"""sd_notify and journald's native protocol as the daemon speaks them, each against a real AF_UNIX datagram socket."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import uuid

import pytest

from journal_capture import JournalCapture, parse_native
from kartud.service import journal_socket, systemd_glue
from kartud.service.journal_socket import JournalSocket, encode_entry


@pytest.fixture
def listener(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(10)
    yield sock
    sock.close()


# -- sd_notify -------------------------------------------------------------------------------------


def test_a_notification_is_one_datagram_on_the_socket_named_by_notify_socket(listener, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", listener.getsockname())
    assert systemd_glue.notify("READY=1\nSTATUS=ready: 0 queued")
    assert listener.recv(4096) == b"READY=1\nSTATUS=ready: 0 queued"
    assert systemd_glue.notify("WATCHDOG=1")
    assert listener.recv(4096) == b"WATCHDOG=1"


def test_an_abstract_socket_is_named_with_an_at_sign(monkeypatch):
    name = f"kartud-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd_glue.notify("STOPPING=1")
        assert sock.recv(4096) == b"STOPPING=1"


def test_nothing_is_sent_without_a_service_manager(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd_glue.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))          # the manager went away
    assert systemd_glue.notify("WATCHDOG=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")                       # not a form a box hands us
    assert systemd_glue.notify("READY=1") is False


# -- journald's native protocol --------------------------------------------------------------------


@pytest.fixture
def journal(tmp_path):
    capture = JournalCapture(str(tmp_path / "run-systemd"))     # binds the socket only: no namespace needed
    yield capture
    capture.close()


def test_an_entry_is_framed_as_the_native_protocol_says():
    assert encode_entry([("MESSAGE", "ready"), ("PRIORITY", "6")]) == b"MESSAGE=ready\nPRIORITY=6\n"
    assert encode_entry([("MESSAGE", "a\nb=c")]) == b"MESSAGE\n" + (5).to_bytes(8, "little") + b"a\nb=c\n"
    assert parse_native(encode_entry([("A", "é"), ("B", "two\nlines"), ("C", "")])) == \
        {"A": "é", "B": "two\nlines", "C": ""}


def test_entries_reach_the_journal_socket_whole(journal):
    sender = JournalSocket(journal.path)
    sender.send([("MESSAGE", "job j-1 printed"), ("PRIORITY", "6"), ("KARTUD_JOB", "j-1")])
    sender.send([("MESSAGE", "internal error\nTraceback ...\nValueError: x"), ("PRIORITY", "3")])
    second = journal.wait_for(lambda e: e["PRIORITY"] == "3")
    sender.close()
    assert journal.entries[0] == {"MESSAGE": "job j-1 printed", "PRIORITY": "6", "KARTUD_JOB": "j-1"}
    assert second["MESSAGE"] == "internal error\nTraceback ...\nValueError: x"


def test_an_entry_too_big_for_a_datagram_goes_as_a_sealed_memfd(listener, monkeypatch):
    monkeypatch.setattr(journal_socket, "SEND_BUFFER", 4096)     # the kernel's floor: any large entry is too big
    sender = JournalSocket(listener.getsockname())
    sender.send([("MESSAGE", "x" * 200_000), ("PRIORITY", "6")])
    sender.close()
    data, ancillary, _, _ = listener.recvmsg(4096, socket.CMSG_SPACE(4))
    assert data == b"" and [(level, kind) for level, kind, _ in ancillary] == [(socket.SOL_SOCKET, socket.SCM_RIGHTS)]
    memfd = struct.unpack("i", ancillary[0][2][:4])[0]
    try:
        seals = fcntl.fcntl(memfd, fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SEAL     # journald refuses an unsealed one
        with os.fdopen(os.dup(memfd), "rb") as entry:
            assert parse_native(entry.read()) == {"MESSAGE": "x" * 200_000, "PRIORITY": "6"}
    finally:
        os.close(memfd)


def test_no_journald_is_an_error_the_caller_sees(tmp_path):
    sender = JournalSocket(str(tmp_path / "no-such-socket"))
    with pytest.raises(FileNotFoundError):
        sender.send([("MESSAGE", "lost?"), ("PRIORITY", "6")])
    sender.close()
    dead = tmp_path / "dead"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as bound:
        bound.bind(str(dead))
    sender = JournalSocket(str(dead))
    with pytest.raises(ConnectionRefusedError):
        sender.send([("MESSAGE", "lost?"), ("PRIORITY", "6")])
    sender.close()
    assert not os.path.exists(tmp_path / "no-such-socket")
