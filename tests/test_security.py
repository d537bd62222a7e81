"""Security: TLS with client certificates and the shipped ACL on a real mosquitto; Ed25519 request signatures."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from print_room import ROOT, STATION, Room

from kartud.room.office import OfficeClient
from kartud.rules.signing import public_key_base64, sign_request, signed_bytes


def test_a_box_prints_over_tls_with_its_certificate_and_the_shipped_acl(tmp_path, ca, tls_broker):
    room = Room(tmp_path / "room", tls_broker)
    os.makedirs(room.dir)
    cert, key = ca.issue(STATION)                      # the box's CN is its station id
    room.overrides.update({"mqtt.tls_ca": f'"{ca.ca_file}"', "mqtt.tls_cert": f'"{cert}"', "mqtt.tls_key": f'"{key}"'})
    try:
        room.office = OfficeClient("127.0.0.1", tls_broker.port, ROOT, tls=(str(ca.ca_file), *ca.issue("office")))
        room.start()
        room.receive_blanks(5)
        job = room.job()
        assert room.submit(job)["status"] == "ok"
        assert room.wait_state(job["job_id"], "printed")["job"]["card_uid"]
        assert "libssl" in open(f"/proc/{room.process.pid}/maps").read()   # loaded because TLS is configured
    finally:
        room.close()


def test_a_box_cannot_read_another_stations_requests(ca, tls_broker):
    tls_a = (str(ca.ca_file), *ca.issue("station-a"))
    tls_office = (str(ca.ca_file), *ca.issue("office"))
    seen: list[str] = []
    import threading

    barrier = threading.Event()
    with OfficeClient("127.0.0.1", tls_broker.port, "kartud/station-a", tls=tls_a) as box_a, \
            OfficeClient("127.0.0.1", tls_broker.port, "kartud/station-b", tls=tls_office) as office:
        def on_message(client, userdata, message):
            seen.append(message.topic)
            if message.topic == "kartud/station-a/request/status/get":
                barrier.set()

        box_a.client.on_message = on_message
        box_a.client.subscribe([("kartud/station-b/request/#", 1), ("kartud/station-a/request/#", 1)])
        box_a.client.publish("kartud/station-b/state", "forged", qos=1).wait_for_publish(5)
        office.client.publish("kartud/station-b/request/job/submit", b"{}", qos=1).wait_for_publish(5)
        # A later message to station-a's own topic, from the same publisher, marks "everything before has come".
        office.client.publish("kartud/station-a/request/status/get", b"{}", qos=1).wait_for_publish(5)
        assert barrier.wait(10)
        assert seen == ["kartud/station-a/request/status/get"]
        assert office.state is None                    # box A could not write station B's state


def test_plain_connections_are_refused_by_the_shipped_config(tls_broker):
    with pytest.raises(TimeoutError):
        OfficeClient("127.0.0.1", tls_broker.port, "kartud/x", connect_timeout=1.0)


def test_the_signed_bytes_are_exactly_the_contracts():
    payload = {"b": 1, "a": "ü", "sig": "ignored"}
    assert signed_bytes("kartud/st/request/job/get", payload) == \
        "kartud/st/request/job/get\n{\"a\":\"ü\",\"b\":1}".encode("utf-8")


@pytest.fixture
def signing_room(room):
    key = Ed25519PrivateKey.generate()
    room.overrides.update({"security.signing": '"required"',
                           "security.trusted_keys": json.dumps([public_key_base64(key)])})
    room.key = key
    room.start()
    return room


def _topic(command: str) -> str:
    return f"{ROOT}/request/{command}"


def _fresh(payload: dict) -> dict:
    """``payload`` with what a signed request carries since contract 1.1: a new request_id and the sender's ts."""
    ts = datetime.now(timezone(timedelta(hours=7))).isoformat(timespec="seconds")
    return {"request_id": str(uuid.uuid4()), "ts": ts, **payload}


def test_required_signatures_refuse_unsigned_forged_altered_and_replayed_requests(signing_room):
    room = signing_room
    office = room.office
    job = _fresh(room.job())
    intruder = Ed25519PrivateKey.generate()
    signed = sign_request(_topic("job/submit"), job, room.key)
    refusals = {
        "unsigned": job,
        "forged": sign_request(_topic("job/submit"), job, intruder),
        "altered": {**signed, "priority": 9},
        "other topic": sign_request("kartud/another-station/request/job/submit", job, room.key),
        "not base64": {**job, "sig": "!!!"},
    }
    for name, payload in refusals.items():
        answer = office.request("job/submit", payload)
        assert answer["status"] == "error" and answer["error"]["code"] == "bad_signature", name
    assert room.query("SELECT COUNT(*) FROM jobs") == [(0,)]

    first = office.request("job/submit", signed)
    assert first["data"]["state"] == "queued"
    assert office.request("job/submit", signed) == first   # an exact replay: its first answer, nothing changed
    retry = sign_request(_topic("job/submit"), _fresh({k: v for k, v in job.items() if k not in ("request_id", "ts")}),
                         room.key)
    assert office.request("job/submit", retry)["data"]["resubmitted"] is True   # a new request for the same job
    status = office.request("status/get", sign_request(_topic("status/get"), _fresh({}), room.key))
    assert status["status"] == "ok"
    assert office.request("status/get", {})["error"]["code"] == "bad_signature"
    assert room.query("SELECT COUNT(*) FROM jobs") == [(1,)]


def test_optional_signatures_check_only_what_is_signed(room):
    key = Ed25519PrivateKey.generate()
    room.overrides.update({"security.signing": '"optional"',
                           "security.trusted_keys": json.dumps([public_key_base64(key)])})
    room.start()
    assert room.office.request("status/get", {})["status"] == "ok"
    forged = sign_request(_topic("status/get"), {}, Ed25519PrivateKey.generate())
    assert room.office.request("status/get", forged)["error"]["code"] == "bad_signature"
    assert room.office.request("status/get", sign_request(_topic("status/get"), _fresh({}), key))["status"] == "ok"
    unfresh = room.office.request("status/get", sign_request(_topic("status/get"), {}, key))
    assert unfresh["error"]["code"] == "invalid_payload"     # signed, so it must carry request_id and ts
