"""Personal data stays in: nothing the daemon logs or publishes carries a full NIK, an image or chip data."""

from __future__ import annotations

import base64
import json
import threading

import paho.mqtt.client as mqtt


def test_no_personal_data_in_anything_logged_or_published(room):
    published: list[bytes] = []
    lock = threading.Lock()
    spy = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="privacy-spy", protocol=mqtt.MQTTv5)
    spy.on_message = lambda c, u, m: (lock.acquire(), published.append(m.topic.encode() + b" " + m.payload),
                                      lock.release())
    spy.connect("127.0.0.1", room.broker.port)
    spy.subscribe("kartud/#", qos=1)
    spy.loop_start()
    try:
        room.start()
        room.receive_blanks(4)
        jobs = [room.job() for _ in range(3)] + [room.job("KIA")]
        for job in jobs:
            room.submit(job)
        refused = [room.job(record_id=jobs[0]["record_id"]), room.job(nik=jobs[1]["nik"]),
                   {**room.job(), "nik": jobs[2]["nik"][:15] + "x"}]
        for job in refused:
            assert room.submit(job)["status"] == "error"
        for job in jobs[:3]:
            room.wait_state(job["job_id"], "printed")
            room.office.request("job/get", {"job_id": job["job_id"]})
        room.office.request("job/list", {})
        room.office.request("report/daily", {"date": room.office.request("status/get", {})["data"]["today"]["date"]})
        room.kill()                                   # and a crash, for the recovery messages
        room.start()
        room.stop()
    finally:
        spy.disconnect()
        spy.loop_stop()

    secrets: list[bytes] = []
    for job in jobs + refused:
        secrets.append(job["nik"].encode())
        image = base64.b64decode(job["front_png"])
        secrets += [job["front_png"][100:140].encode(), image[200:232]]
        for data in job.get("chip", {}).get("files", {}).values():
            raw = base64.b64decode(data)
            secrets += [data[:40].encode(), raw[:24], raw[:24].hex().encode(), raw[:24].hex().upper().encode()]
    with open(room.log_path, "rb") as handle:
        logged = handle.read()
    outgoing = [p for p in published if not p.startswith(b"kartud/test-room-01/request/")]
    assert len(outgoing) > 20 and logged
    for secret in secrets:
        assert secret not in logged, "personal data in the daemon's log"
        for message in outgoing:
            assert secret not in message, f"personal data published on {message[:60]!r}"
    masked = [json.loads(p.split(b" ", 1)[1])["job"]["nik_masked"] for p in outgoing if b"/event/job " in p]
    assert masked and all("******" in m for m in masked)
