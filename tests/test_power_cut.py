"""The crash harness under power cuts: the daemon's disk forgets what was not fsynced, at every transition point and
at random instants, and every promise is checked against the simulator's record of what physically left the printer.

A cut kills the daemon and the printer process together and drops the unsynced bytes of the ledger,
the personal-data file and the key file (tests/power_cut_room.py). ``KARTUD_POWER_CUTS`` sets the
number of random cuts (200 by default, as in CI); the documented long run is 2,000:
``KARTUD_POWER_CUTS=2000 ./scripts/test tests/test_power_cut.py``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import time
from collections import Counter

import pytest
from PIL import Image
from print_room import chip_sha
from power_cut_room import Producer
from test_crash import check_promises, settle

from kartud.service.crashpoints import POINTS

RANDOM_CUTS = int(os.environ.get("KARTUD_POWER_CUTS", "200"))
CUTS_PER_TEST = 25           # each test takes about 25 s; the seeds together make RANDOM_CUTS
# Each cut restarts three processes: on a machine shared with other work a test can take three times as long.
pytestmark = pytest.mark.timeout(180)
SEEDS = list(range(max(1, -(-RANDOM_CUTS // CUTS_PER_TEST))))
IDLE_S = 5
CARD_INSIDE = ("after_claim", "after_feed", "after_encode", "after_print", "after_eject")


# after_spoiled needs a failing card: test_a_power_cut_right_after_a_spoiled_card_keeps_every_promise below.
@pytest.mark.parametrize("point", [p for p in POINTS if p != "after_spoiled"])
def test_a_power_cut_at_every_transition_point_keeps_every_promise(power_cut_room, point):
    room = power_cut_room
    room.env["KARTUD_CRASH_AT"] = point
    room.start()
    room.receive_blanks(10)
    jobs = [room.job() for _ in range(3)]
    correlations = [room.office.send("job/submit", job) for job in jobs]
    assert room.process.wait(30) == -9                       # it died where it was told to ...
    room.cut()                                               # ... and the power went with it
    room.start_printer()
    settle(room, correlations)                               # every request is answered in the end
    assert room.files_outside_sqlite() == []
    counts = check_promises(room, {j["job_id"]: j for j in jobs})
    if point in CARD_INSIDE:
        assert counts["in_doubt"] == 1 and counts["printed"] == 2
        doubtful = room.query("SELECT job_id FROM jobs WHERE state = 'in_doubt'")[0][0]
        job = next(j for j in jobs if j["job_id"] == doubtful)
        # The card of the job in doubt left the printer only if the cut came after its eject.
        assert Counter(c["chip_files_sha256"] for c in room.cards())[chip_sha(job)] == (point == "after_eject")
    else:
        assert counts["printed"] == 3



def test_a_power_cut_right_after_a_spoiled_card_keeps_every_promise(power_cut_room):
    room = power_cut_room
    room.sim.control("arm print ribbon_ended")                # the first card fails mid-print
    room.env["KARTUD_CRASH_AT"] = "after_spoiled"
    room.start()
    room.receive_blanks(5)
    job = room.job()
    correlation = room.office.send("job/submit", job)
    assert room.process.wait(30) == -9
    room.cut()                                               # the printer comes back without the armed fault
    room.start_printer()
    settle(room, [correlation])
    assert [c["destination"] for c in room.cards()] == ["reject", "output"]
    assert room.query("SELECT attempts FROM jobs") == [(2,)]
    assert room.query("SELECT printed, spoiled, reserved FROM blank_stock WHERE card_type = 'KTP_EL'") == [(1, 1, 0)]
    check_promises(room, {job["job_id"]: job})

@pytest.mark.parametrize("seed", SEEDS)
def test_random_power_cuts_while_a_producer_keeps_submitting(power_cut_room, seed):
    room = power_cut_room
    rng = random.Random(1600 + seed)
    cuts = min(CUTS_PER_TEST, RANDOM_CUTS - seed * CUTS_PER_TEST)
    room.start()
    room.receive_blanks(cuts * 4 + 100)
    started = time.monotonic()
    with Producer(room, rng) as producer:
        for _ in range(cuts):
            time.sleep(rng.uniform(0.02, 0.45))               # a random instant is the point of this test
            room.cut()
            # From power-on or from "online": on a slow machine, cuts timed from power-on alone would all land
            # in the start-up.
            room.power_on(wait_online=rng.random() < 0.35)
    room.cut()
    room.power_on(wait_online=True)
    last = room.job()                                        # after all those cuts the box still prints
    assert room.submit(last)["status"] == "ok"
    producer.acknowledged[last["job_id"]] = last
    room.wait_state(last["job_id"], "printed", timeout=120)
    assert room.stop() == 0
    cutting = time.monotonic() - started
    settle(room)
    # A request in hand at two deaths in a row is answered internal_error and set aside (contract 1.1).
    died_twice = [a for a in producer.refused if a["error"]["code"] == "internal_error"]
    assert [a for a in producer.refused if a not in died_twice] == []
    assert len(died_twice) <= room.query("SELECT COUNT(*) FROM quarantine WHERE why LIKE 'died twice%'")[0][0]
    counts = check_promises(room, producer.acknowledged)
    assert room.files_outside_sqlite() == []
    assert len(producer.acknowledged) > 1
    print(f"\nseed {seed}, {cuts} power cuts in {cutting:.0f} s: {len(producer.acknowledged)} jobs acknowledged, "
          f"{dict(counts)}, {len(room.cards())} cards left the printer, {len(died_twice)} set aside")


def test_the_clean_stop_note_is_gone_for_good_once_a_start_took_it(power_cut_room):
    """The note lets a start skip the full check; back after a cut, it would vouch for files written since."""
    room = power_cut_room
    note = os.path.join(room.disk.mountpoint, "kartud.db.clean-stop")
    room.start()
    room.receive_blanks(5)
    assert room.stop() == 0
    room.disk.power_cut()                                    # the orderly stop's note is durable ...
    assert os.path.exists(note)
    room.start()                                             # ... and this start takes it
    job = room.job()
    assert room.submit(job)["status"] == "ok"
    room.cut()
    assert not os.path.exists(note)
    room.start_printer()
    settle(room)
    check_promises(room, {job["job_id"]: job})

def photo_face(rng: random.Random) -> str:
    """A card face with a photo-sized patch of noise (PNG does not shrink it): about as heavy as a real face."""
    image = Image.new("RGB", (1016, 648), (180, 210, 230))
    image.paste(Image.frombytes("RGB", (220, 280), rng.randbytes(220 * 280 * 3)), (760, 60))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_what_the_disk_endures_per_accepted_job_and_per_printed_card(power_cut_room):
    """The figures in docs/performance.md "What the disk endures", measured on the power-cut filesystem, which
    sees every write and fsync of the ledger and the personal-data file (WAL, -shm and all). Run with -s to see
    them. The phases: intake with the queue paused, printing, an idle spell, and the stop (its checkpoint)."""
    room, disk = power_cut_room, power_cut_room.disk
    rng = random.Random(16)
    room.start()
    room.receive_blanks(100)
    assert room.office.request("queue/pause", {"reason": "measuring intake alone"})["status"] == "ok"
    figures = {}
    for face, front in (("plain face", None), ("photo face", photo_face(rng))):
        jobs = [room.job(**({"front_png": front} if front else {})) for _ in range(10)]
        disk.reset_stats()
        for job in jobs:
            assert room.submit(job)["status"] == "ok"
        figures[f"accepted job, {face} ({len(json.dumps(jobs[0])) // 1024} KiB)"] = per(disk.stats(), len(jobs))
    disk.reset_stats()
    assert room.office.request("queue/resume", {})["status"] == "ok"
    for job_id, in room.query("SELECT job_id FROM jobs"):
        room.wait_state(job_id, "printed", timeout=60)
    figures["printed card"] = per(disk.stats(), 20)
    assert len([c for c in room.cards() if c["destination"] == "output"]) == 20
    disk.reset_stats()
    time.sleep(IDLE_S)                                       # a spell of nothing is what is measured here
    figures[f"idle second ({IDLE_S} s)"] = per(disk.stats(), IDLE_S)
    disk.reset_stats()
    assert room.stop() == 0
    figures["the stop (checkpoint), per job of the 20"] = per(disk.stats(), 20)
    for what, figure in figures.items():
        print(f"\n{what}: " + ", ".join(f"{k} {v:.1f}" for k, v in figure.items()))
    for what in [w for w in figures if w.startswith(("accepted", "printed"))]:
        assert figures[what]["fsyncs"] + figures[what]["fdatasyncs"] >= 1    # each is made durable ...
        assert figures[what]["pages_synced"] >= 1
    assert figures["the stop (checkpoint), per job of the 20"]["pages_synced"] >= 1    # ... and checkpointed


def per(stats: dict, count: int) -> dict:
    return {key: value / count for key, value in stats.items()}
