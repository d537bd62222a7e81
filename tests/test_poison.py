"""Poison messages against the daemon process on a real broker: text no encoder takes, signed or not, never stops it."""

from __future__ import annotations

import base64
import json
import os
import socket
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from print_room import ROOT

from kartud.rules.signing import public_key_base64, sign_request

LONE_SURROGATE = b'{"request_id": "\\ud800"}'              # valid JSON; no UTF-8 encoding of the text exists
ANY_SIG = base64.b64encode(bytes(64)).decode()


def still_answers(room, payload=None) -> None:
    """The daemon runs and answers the next request."""
    answer = room.office.request("status/get", payload if payload is not None else {"request_id": "next"})
    assert answer["status"] == "ok", answer
    assert room.process.poll() is None, room.log()[-2000:]


@pytest.mark.parametrize("command", ["status/get", "job/submit", "queue/pause", "no/such/command"])
def test_a_lone_surrogate_is_answered_with_an_escape_and_the_box_goes_on(room, command):
    room.start()
    answer = room.office.request(command, LONE_SURROGATE)
    assert answer["request_id"] == "\ud800"                  # echoed as the JSON escape it came as
    still_answers(room)
    assert "\\ud800" not in room.log() and "\ud800" not in room.log()


def test_answers_round_trip_as_json_whatever_text_they_echo(room):
    room.start()
    for request_id in ("\ud800x", "x\udfff", "\udc00\ud800", "nul\u0000", "é\U0001F600"):
        raw = json.dumps({"request_id": request_id}).encode()
        assert room.office.request("status/get", raw)["request_id"] == request_id
    still_answers(room)


def test_a_lone_surrogate_under_required_signatures_is_a_bad_signature_and_the_box_goes_on(room):
    key = Ed25519PrivateKey.generate()
    room.overrides.update({"security.signing": '"required"',
                           "security.trusted_keys": json.dumps([public_key_base64(key)])})
    room.start()
    for raw in (b'{"request_id": "\\ud800", "sig": "%s"}' % ANY_SIG.encode(),
                b'{"request_id": "r-1", "note": ["\\udfff"], "sig": "%s"}' % ANY_SIG.encode()):
        answer = room.office.request("queue/pause", raw)
        assert answer["status"] == "error" and answer["error"]["code"] == "bad_signature", answer
        assert "sig" in answer["error"]["message"] or "signature" in answer["error"]["message"]
    signed = {"request_id": "next", "ts": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    still_answers(room, sign_request(f"{ROOT}/request/status/get", signed, key))
    assert room.office.request("status/get", {})["error"]["code"] == "bad_signature"
    assert room.query("SELECT value FROM settings WHERE key = 'paused_reason'") == []


def test_a_lone_surrogate_over_the_control_socket_is_answered_too(room):
    room.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(os.path.join(room.dir, "control.sock"))
        sock.sendall(b'{"command": "status/get", "payload": {"request_id": "\\ud800"}}\n')
        line = sock.makefile("rb").readline()
    assert json.loads(line)["request_id"] == "\ud800"
    still_answers(room)
