"""Who did what, on the real daemon: the audit names the signing key, the MQTT client, the kartuctl user and kartud itself."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import uuid
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from print_room import ROOT

from kartud.rules.signing import key_id, public_key_base64, sign_request


def kartuctl(room, *argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kartud.ctl.cli", "--config", room.config_path, *argv],
                          capture_output=True, text=True, timeout=30, env={**os.environ, "LANG": "C.UTF-8"})


def test_every_change_names_who_did_it_and_verify_checks_it(room):
    key = Ed25519PrivateKey.generate()
    room.overrides.update({"security.signing": '"optional"',
                           "security.trusted_keys": json.dumps([public_key_base64(key)]), "sim.clock_speed": "1.0",
                           "printer.sim.seconds_per_card": "0.3"})
    room.start()
    office = room.office.client_id                                   # OfficeClient says who it is
    assert room.receive_blanks(5)["status"] == "ok"                  # unsigned: the name it claims
    pause = {"request_id": str(uuid.uuid4()), "ts": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    assert room.office.request("queue/pause", sign_request(f"{ROOT}/request/queue/pause", pause, key))["status"] == "ok"
    assert kartuctl(room, "resume").returncode == 0                  # kartuctl: the Unix user
    job = room.job()
    assert room.submit(job)["status"] == "ok"
    room.wait_state(job["job_id"], "printed")

    rows = [(kind, json.loads(detail)["actor"]) for kind, detail in
            room.query("SELECT kind, detail FROM audit ORDER BY id")]
    me = f"unix:{pwd.getpwuid(os.getuid()).pw_name}"
    assert rows[:4] == [("blanks_received", f"mqtt:{office}"), ("queue_paused", key_id(public_key_base64(key))),
                        ("queue_resumed", me), ("job_submitted", f"mqtt:{office}")]
    assert {actor for kind, actor in rows[4:]} == {"kartud"}         # claimed, steps, printed: the daemon's own
    assert [kind for kind, _ in rows[4:]][-1] == "job_printed"

    checked = kartuctl(room, "verify", "--json", "--lang", "en")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = json.loads(checked.stdout)
    assert result["actors"] == {"named": len(rows), "legacy": 0, "unnamed": [], "unnamed_count": 0, "ok": True}
    words = kartuctl(room, "verify", "--lang", "en").stdout
    assert f"Every audit row names who did it ({len(rows)} rows)." in words
