"""``kartuctl quarantine``: what was set aside, for a person, online and with the daemon down; never a payload."""

from __future__ import annotations

import json

from print_room import ROOT
from test_kartuctl_daemon import kartuctl, over_socket

from kartud.service.boundary import fingerprint

PII = "Siti Rahayu binti Slamet 3574014107900001"


def set_one_aside(room) -> bytes:
    room.env["KARTUD_DEFECT_AT"] = "while_handling@queue/pause"
    room.start()
    raw = json.dumps({"request_id": "r-bad", "reason": PII}).encode()
    assert room.office.request("queue/pause", raw)["error"]["code"] == "internal_error"
    return raw


def test_kartuctl_quarantine_lists_what_was_set_aside_without_its_content(room):
    nothing = kartuctl(room.start(), "quarantine")
    assert nothing.returncode == 0 and "Nothing has been set aside" in nothing.stdout
    assert room.stop() == 0
    raw = set_one_aside(room)
    sha = fingerprint(f"{ROOT}/request/queue/pause", raw)

    listed = kartuctl(room, "quarantine")
    assert listed.returncode == 0, listed.stderr
    assert "queue/pause" in listed.stdout and sha in listed.stdout and "InjectedDefect" in listed.stdout
    assert f"{len(raw)}" in listed.stdout
    assert PII not in listed.stdout and "Siti" not in listed.stdout
    indonesian = kartuctl(room, "quarantine", "--lang", "id")
    assert "disisihkan" in indonesian.stdout and sha in indonesian.stdout

    data = json.loads(kartuctl(room, "quarantine", "--json").stdout)
    assert [(q["seq"], q["command"], q["size"], q["message_sha256"], q["why"]) for q in data["quarantined"]] == \
        [(1, "queue/pause", len(raw), sha, "InjectedDefect")]
    assert set(data["quarantined"][0]) == {"seq", "at", "command", "size", "message_sha256", "why",
                                           "payload_erased"}

    # The list is the control socket's own: the office cannot ask for it over MQTT.
    assert room.office.request("quarantine/list", {})["error"]["code"] == "unknown_command"
    assert over_socket(f"{room.dir}/control.sock", "quarantine/list", {})["status"] == "ok"

    assert room.stop() == 0
    offline = kartuctl(room, "quarantine", "--json")
    assert offline.returncode == 0 and "kartud is not running" in offline.stderr
    assert json.loads(offline.stdout) == data
