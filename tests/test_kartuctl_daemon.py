"""kartuctl and the control socket on the real daemon process: the same answers as MQTT, with the broker down too."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

from print_room import STATION


def kartuctl(room, *argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kartud.ctl.cli", "--config", room.config_path, *argv],
                          capture_output=True, text=True, timeout=30, env={**os.environ, "LANG": "C.UTF-8"})


def over_socket(path: str, command: str, payload: dict) -> dict:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(json.dumps({"command": command, "payload": payload}).encode() + b"\n")
        return json.loads(sock.makefile("rb").readline())


def test_the_control_socket_answers_as_mqtt_does_and_works_without_the_broker(room):
    room.start()
    path = os.path.join(room.dir, "control.sock")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    received = kartuctl(room, "blanks", "receive", "B-1", "KTP_EL", "40")
    assert received.returncode == 0 and "KTP_EL stock is now 40" in received.stdout
    job = room.job()
    room.submit(job)
    room.wait_state(job["job_id"], "printed")

    request = {"job_id": job["job_id"], "request_id": "r-9"}
    assert over_socket(path, "job/get", request) == room.office.request("job/get", request)
    unknown = over_socket(path, "job/frobnicate", {})
    assert unknown["status"] == "error" and unknown["error"]["code"] == "unknown_command"

    status = json.loads(kartuctl(room, "status", "--json").stdout)
    assert status["station"] == STATION and status["today"]["printed"] == 1
    assert status["blanks"]["KTP_EL"]["in_stock"] == 39

    room.broker.kill()                                        # the office is gone; the room is still run
    paused = kartuctl(room, "pause", "--reason", "ganti pita")
    assert paused.returncode == 0 and "PAUSED" in paused.stdout
    assert json.loads(kartuctl(room, "status", "--json").stdout)["mode"] == "paused"
    assert kartuctl(room, "resume").returncode == 0
    refused = kartuctl(room, "cancel", job["job_id"])
    assert refused.returncode == 1 and "not_cancellable" in refused.stderr

    assert room.stop() == 0
    assert not os.path.exists(path)                           # removed on a clean stop
    down = kartuctl(room, "status")
    assert down.returncode == 0 and "kartud is not running" in down.stderr and "1 printed" in down.stdout
    assert kartuctl(room, "pause").returncode == 3
    assert kartuctl(room, "verify").returncode == 0
