"""The office link in words: kartuctl status and the log say if the broker is connected, since when, and why not."""

from __future__ import annotations

import datetime
import errno
import ipaddress
import json
import os
import ssl
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from print_room import STATION, Room

from kartud.service.office_link import OfficeLink, error_words, lost_words, refusal_words

WHERE = "10.0.0.5:8883"
LOOPBACK = ipaddress.ip_address("127.0.0.1")
DOWN = "the office link is down: "


def kartuctl(room, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kartud.ctl.cli", "--config", room.config_path, "--lang", "en",
                           *argv], capture_output=True, text=True, timeout=30, env={**os.environ, "LANG": "C.UTF-8"})


def link_of(room) -> dict:
    done = kartuctl(room, "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["office_link"]


# -- the words ---------------------------------------------------------------------------------------

def _verify_error(message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, message)
    exc.verify_message = message
    return exc


@pytest.mark.parametrize("exc, words", [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), f"connection refused at {WHERE}"),
    (TimeoutError("timed out"), f"no answer from {WHERE}"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), f"no route to {WHERE}"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), f"the broker at {WHERE} closed the connection"),
    (_verify_error("certificate has expired"), f"TLS: certificate has expired (the broker at {WHERE})"),
    (OSError(errno.EACCES, "Permission denied"), f"permission denied ({WHERE})"),
])
def test_a_failed_attempt_in_words(exc, words):
    assert error_words(exc, WHERE) == words


def test_refusals_and_losses_in_words():
    assert refusal_words(0x87, WHERE) == f"not authorised (the broker at {WHERE})"
    assert refusal_words(0x86, WHERE) == f"bad user name or password (the broker at {WHERE})"
    assert lost_words("Keep alive timeout", WHERE) == f"no answer from {WHERE} (keepalive timeout)"


def test_the_log_hears_of_a_failure_once_per_change(caplog):
    moments = iter(datetime.datetime(2026, 12, 1, 9, m, tzinfo=datetime.timezone.utc) for m in range(10))
    link = OfficeLink(WHERE, lambda: next(moments))
    caplog.set_level("INFO", "kartud.mqtt")
    assert link.down("connection refused at x")
    assert [link.down("connection refused at x") for _ in range(100)] == [False] * 100   # endless reconnects
    assert link.down("no answer from x")                                                # new words: said again
    assert link.up() and not link.up()
    assert link.status(datetime.timezone.utc) == {"connected": True, "since": "2026-12-01T09:01:00+00:00",
                                                  "broker": WHERE, "last_error": "no answer from x"}
    assert link.down("no answer from x")                         # lost again, same words: a new failure
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        DOWN + "connection refused at x", DOWN + "no answer from x",
        "the office link is back: connected to 10.0.0.5:8883 (the last error was: no answer from x)",
        DOWN + "no answer from x"]


# -- a real daemon, a real mosquitto -----------------------------------------------------------------

def test_a_broker_down_at_start_then_up_then_killed_is_seen_in_words(room, broker, notify_socket):
    broker.kill()                                        # a closed port: nothing listens
    refused = f"connection refused at 127.0.0.1:{broker.port}"
    room.env["NOTIFY_SOCKET"] = notify_socket.path
    room.start(wait_online=False)
    room.wait_log(DOWN + refused)
    with notify_socket.changed:                          # systemctl status says it too
        assert notify_socket.changed.wait_for(lambda: any(m.startswith("STATUS=") and m.endswith(
            f"; office link down: {refused}") for m in notify_socket.messages), 20)
    link = link_of(room)
    assert link["connected"] is False and link["last_error"] == refused
    down_since = link["since"]
    screen = kartuctl(room, "status").stdout
    assert "Office (MQTT) : NOT CONNECTED since" in screen and refused in screen

    broker.start()
    room.connect()
    room.wait_log("the office link is back")
    assert room.log().count(DOWN) == 1                   # dozens of refused attempts, one line
    link = link_of(room)
    assert link["connected"] is True and link["last_error"] == refused
    assert datetime.datetime.fromisoformat(link["since"]) > datetime.datetime.fromisoformat(down_since)
    screen = kartuctl(room, "status").stdout
    assert f"connected to 127.0.0.1:{broker.port} since" in screen
    assert f", MQTT {link['protocol']}" in screen and link["protocol"] in ("5", "3.1.1")   # which version it speaks
    room.office.wait_state(lambda s: s.get("office_link", {}).get("connected") is True, timeout=20)

    broker.kill()
    room.wait_log(DOWN + refused, more_than=1)           # "lost the broker", then refused again: each said once
    assert DOWN + f"lost the broker at 127.0.0.1:{broker.port}" in room.log()
    link = link_of(room)
    assert link["connected"] is False and link["last_error"] == refused


def test_a_stopped_daemon_says_it_cannot_know_the_link(room):
    room.start()
    room.stop()
    screen = kartuctl(room, "status").stdout
    assert "Office (MQTT) : unknown: kartud is not running, and only kartud knows" in screen


def test_not_authorised_in_words(tmp_path, broker):
    broker.stop()
    with open(broker.conf) as handle:
        text = handle.read()
    with open(broker.conf, "w") as handle:
        handle.write(text.replace("allow_anonymous true", "allow_anonymous false"))
    broker.start()
    room = Room(tmp_path / "closed-room", broker)
    try:
        room.start(wait_online=False)
        room.wait_log(DOWN + f"not authorised (the broker at 127.0.0.1:{broker.port})")
        assert link_of(room)["last_error"] == f"not authorised (the broker at 127.0.0.1:{broker.port})"
    finally:
        room.close()


def _expired(ca, cn: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name)
            .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(LOOPBACK)]),
                           critical=False)
            .sign(ca.key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_a_broker_certificate_that_expired_in_words(tmp_path, ca, tls_broker):
    tls_broker.stop()
    cert, key = _expired(ca, "broker")
    (ca.dir / "broker.crt").write_bytes(cert)
    (ca.dir / "broker.key").write_bytes(key)
    tls_broker.start()
    room = Room(tmp_path / "room", tls_broker)
    os.makedirs(room.dir)
    box_cert, box_key = ca.issue(STATION)
    room.overrides.update({"mqtt.tls_ca": f'"{ca.ca_file}"', "mqtt.tls_cert": f'"{box_cert}"',
                           "mqtt.tls_key": f'"{box_key}"'})
    try:
        room.start(wait_online=False)
        words = f"TLS: certificate has expired (the broker at 127.0.0.1:{tls_broker.port})"
        room.wait_log(DOWN + words)
        assert link_of(room)["last_error"] == words
    finally:
        room.close()
