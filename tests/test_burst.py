"""Intake that keeps up: a 10,000-job burst through the shipped broker config, and a producer that retries
until answered losing nothing across a broker SIGKILL."""

from __future__ import annotations

import os
import time

import pytest
from card_faces import BW_FRONT_B64
from print_room import ROOT, STATION, Room

from kartud.room.office import OfficeClient

BURST = int(os.environ.get("KARTUD_BURST_JOBS", "10000"))


@pytest.fixture
def tls_room(tmp_path, ca, tls_broker):
    room = Room(tmp_path / "room", tls_broker)
    os.makedirs(room.dir)
    cert, key = ca.issue(STATION)
    room.overrides.update({"mqtt.tls_ca": f'"{ca.ca_file}"', "mqtt.tls_cert": f'"{cert}"', "mqtt.tls_key": f'"{key}"'})
    room.office = OfficeClient("127.0.0.1", tls_broker.port, ROOT, tls=(str(ca.ca_file), *ca.issue("office")))
    yield room
    room.close()


def test_a_burst_of_jobs_is_answered_and_stored_in_full(tls_room):
    room = tls_room
    room.start()
    room.office.request("queue/pause", {"reason": "burst test"})    # keep the printer out of it
    jobs = [room.job(front_png=BW_FRONT_B64) for _ in range(BURST)]
    started = time.monotonic()
    correlations = [room.office.send("job/submit", job, wait=False) for job in jobs]
    answers = [room.office.wait_answer(c, timeout=60) for c in correlations]
    elapsed = time.monotonic() - started
    assert [a["status"] for a in answers] == ["ok"] * BURST
    assert room.query("SELECT COUNT(*) FROM jobs") == [(BURST,)]
    print(f"\n{BURST} jobs answered in {elapsed:.1f} s ({BURST / elapsed:.0f} jobs/s, TLS, shipped broker config)")


def test_a_producer_that_retries_loses_nothing_across_a_broker_sigkill(tls_room):
    room = tls_room
    room.start()
    room.office.request("queue/pause", {"reason": "retry test"})
    jobs = [room.job(front_png=BW_FRONT_B64) for _ in range(300)]
    answered: dict[str, dict] = {}
    killed = False
    for i, job in enumerate(jobs):
        if i == 150 and not killed:
            room.broker.kill()                                   # queued messages in the broker are gone
            room.broker.start()
            killed = True
        while job["job_id"] not in answered:                     # the office's duty: retry until answered
            try:
                answer = room.office.request("job/submit", job, timeout=2.0)
            except (TimeoutError, RuntimeError, ValueError):
                continue
            assert answer["status"] == "ok", answer
            answered[job["job_id"]] = answer
    assert killed
    assert room.query("SELECT COUNT(*) FROM jobs") == [(len(jobs),)]
    resubmitted = sum(1 for a in answered.values() if a["data"].get("resubmitted"))
    print(f"\n300 jobs, broker killed at 150: all stored; {resubmitted} answered as resubmissions")
