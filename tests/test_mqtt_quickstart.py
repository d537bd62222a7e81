"""The copy-paste quickstart in docs/mqtt.md (mosquitto_sub and mosquitto_pub, MQTT 5 and 3.1.1) runs as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from print_room import ROOT, STATION

DOC = Path(__file__).resolve().parent.parent / "docs" / "mqtt.md"
DOC_BROKER, DOC_ROOT = "localhost -p 1883", "kartud/kota-probolinggo-01"


def block(name: str) -> str:
    """The shell block after ``<!-- quickstart: name -->`` in docs/mqtt.md."""
    found = re.findall(rf"<!-- quickstart: {name} -->\n```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(found) == 1, f"docs/mqtt.md should hold one quickstart block {name!r}"
    return found[0]


def run(room, text: str, cwd: Path) -> list[str]:
    """Run the doc's lines with bash, the broker and root put in place of the documented ones."""
    where = block("where")
    assert DOC_BROKER in where and DOC_ROOT in where          # so that the swap below is never a no-op
    where = where.replace(DOC_BROKER, f"127.0.0.1 -p {room.broker.port}").replace(DOC_ROOT, ROOT)
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", where + text], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=50)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_mqtt5_quickstart_submits_and_reads_the_answer_and_the_state(room, tmp_path):
    room.start()
    lines = run(room, block("mqtt5"), tmp_path)
    correlation, _, answer = lines[0].partition(" ")
    assert correlation == "quick-1"
    assert json.loads(answer) == {"status": "ok",
                                  "data": {"job_id": "j-demo-00001", "state": "queued", "queue_position": 1}}
    assert json.loads(lines[1])["station"] == STATION and len(lines) == 2
    assert room.query("SELECT job_id, card_type FROM jobs") == [("j-demo-00001", "KIA")]

    rr = re.search(r"`(mosquitto_rr [^`]+)`", DOC.read_text(encoding="utf-8")).group(1)
    status = json.loads(run(room, rr, tmp_path)[0])
    assert status["status"] == "ok" and status["data"]["queue"]["queued"] == 1


def test_the_mqtt311_quickstart_correlates_by_request_id(room, tmp_path):
    room.start()
    lines = run(room, block("mqtt311"), tmp_path)
    answer = json.loads(lines[0])
    assert answer == {"request_id": "quick-2", "status": "ok",
                      "data": {"job_id": "j-demo-00002", "state": "queued", "queue_position": 1}}
    retained = dict(line.split(" ", 1) for line in lines[1:])
    assert retained[f"{ROOT}/availability"] == "online" and json.loads(retained[f"{ROOT}/state"])["station"] == STATION
    assert room.query("SELECT job_id FROM jobs") == [("j-demo-00002",)]
