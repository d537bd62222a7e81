"""The two poison messages of issue 13 against the real unit under a real systemd (its restart policy as shipped),
with a mosquitto beside it: the box stays up, never restarts, and answers the next request."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from kartud.rules.signing import public_key_base64
from private_systemd import SIMULATED_BOX, PrivateSystemd, why_not

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(why_not() is not None, reason=f"a private systemd cannot run here: {why_not()}")
STATION = "poison-01"

# The shipped unit's policy stays (Restart=on-failure, StartLimitBurst=5 in 300 s); only the pause between
# restarts is short, so that a crash loop would reach the burst within the test's time.
KARTUD_DROP_IN = """[Unit]
After=mosquitto-test.service
[Service]
WatchdogSec=3
RestartSec=0.3
StandardOutput=append:/opt/test/daemon.log
StandardError=inherit
"""
MOSQUITTO_UNIT = """[Unit]
Description=the office's broker, for the test
[Service]
ExecStart=/usr/sbin/mosquitto -c /opt/test/mosquitto.conf
"""
MOSQUITTO_CONF = "listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n"
CONFIG = """[station]
id = "{station}"
[mqtt]
host = "127.0.0.1"
reconnect_min_s = 0.1
reconnect_max_s = 0.5
[security]
signing = "required"
trusted_keys = ["{key}"]
[store]
path = "/var/lib/kartud/kartud.db"
""" + SIMULATED_BOX          # no braces in it: safe under .format()

# The office, run inside the namespaces (their network holds the broker): each poison, then a signed request.
OFFICE = textwrap.dedent(r'''
    import base64, json, queue, site, sys, uuid
    site.addsitedir("/opt/kartud/site")
    sys.path.insert(0, "/opt/kartud/lib")
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from kartud.rules.signing import sign_request

    root, key, ts = sys.argv[1], load_pem_private_key(sys.argv[2].encode(), None), sys.argv[3]
    answers = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="office-poison", protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: answers.put(json.loads(m.payload))
    client.connect("127.0.0.1", 1883)
    client.subscribe(f"{root}/response/_reply/office", qos=1)
    client.loop_start()
    sig = base64.b64encode(bytes(64)).decode().encode()
    requests = [("status/get", b'{"request_id": "\\ud800"}'),
                ("queue/pause", b'{"request_id": "r-2", "reason": "\\udfff", "sig": "' + sig + b'"}'),
                ("status/get", json.dumps(sign_request(f"{root}/request/status/get",
                                                       {"request_id": "r-next", "ts": ts}, key)).encode())]
    for command, body in requests:
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = f"{root}/response/_reply/office"
        properties.CorrelationData = uuid.uuid4().bytes
        client.publish(f"{root}/request/{command}", body, qos=1, properties=properties).wait_for_publish(10)
        answer = answers.get(timeout=30)
        print(json.dumps(answer, ensure_ascii=True), flush=True)
    client.disconnect()
    client.loop_stop()
''')


def test_the_poison_messages_leave_the_unit_running_and_the_next_request_answered(tmp_path):
    from datetime import datetime, timezone

    key = Ed25519PrivateKey.generate()
    units = {name: (ROOT / "etc" / "systemd" / name).read_text() for name in ("kartud.service", "kartud-fault.service")}
    units["kartud.service.d/test.conf"] = KARTUD_DROP_IN
    units["kartud-fault.service.d/test.conf"] = "[Service]\nStandardOutput=append:/opt/test/fault.log\n"
    units["mosquitto-test.service"] = MOSQUITTO_UNIT
    box = PrivateSystemd(tmp_path / "system", units, CONFIG.format(station=STATION, key=public_key_base64(key)))
    (box.dir / "mosquitto.conf").write_text(MOSQUITTO_CONF)
    try:
        box.start()
        box.inside("ip", "link", "set", "lo", "up")
        box.systemctl("start", "mosquitto-test.service", check=True)
        started = box.systemctl("start", "kartud.service")
        log = lambda: (box.dir / "daemon.log").read_text(errors="replace")   # noqa: E731
        assert started.returncode == 0, started.stderr + log()
        before = box.show("kartud.service", "MainPID", "NRestarts")
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        office = subprocess.run(["nsenter", "-t", str(box.pid1), "-m", "-p", "-n", "/usr/bin/python3.11", "-c",
                                 OFFICE, f"kartud/{STATION}", pem,
                                 datetime.now(timezone.utc).isoformat(timespec="seconds")],
                                capture_output=True, text=True, timeout=120)
        assert office.returncode == 0, office.stderr + log()[-3000:]
        first, second, third = (json.loads(line) for line in office.stdout.splitlines())
        assert first["request_id"] == "\ud800" and first["error"]["code"] == "bad_signature"
        assert second["request_id"] == "r-2" and second["error"]["code"] == "bad_signature"
        assert third["request_id"] == "r-next" and third["status"] == "ok"
        after = box.show("kartud.service", "MainPID", "NRestarts", "ActiveState")
        assert (after["ActiveState"], after["NRestarts"], after["MainPID"]) == \
            ("active", "0", before["MainPID"]), log()[-3000:]
        assert box.systemctl("stop", "kartud.service").returncode == 0
        assert box.show("kartud.service", "ExecMainStatus")["ExecMainStatus"] == "0"
    finally:
        box.close()
