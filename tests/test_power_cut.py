"""The crash harness under power cuts: the daemon's disk forgets what was not fsynced, at every transition point and
at random instants, and every promise is checked against the simulator's record of what physically left the printer.

A cut kills the daemon and the printer process together and drops the unsynced bytes of the ledger,
the personal-data file and the key file (tests/power_cut_room.py). ``KARTUD_POWER_CUTS`` sets the
number of random cuts (200 by default, as in CI); the documented long run is 2,000:
``KARTUD_POWER_CUTS=2000 ./scripts/test tests/test_power_cut.py``.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest
from print_room import chip_sha
from power_cut_room import Producer
from test_crash import check_promises, settle

from kartud.service.crashpoints import POINTS

RANDOM_CUTS = int(os.environ.get("KARTUD_POWER_CUTS", "200"))
CUTS_PER_TEST = 40           # each test stays under a minute; the seeds together make RANDOM_CUTS
SEEDS = list(range(max(1, -(-RANDOM_CUTS // CUTS_PER_TEST))))
CARD_INSIDE = ("after_claim", "after_feed", "after_encode", "after_print", "after_eject")


# after_spoiled needs a failing card (tests/test_crash.py does it for a kill); a cut there is one of the random ones.
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
    settle(room, correlations)                               # every request is answered in the end
    counts = check_promises(room, {j["job_id"]: j for j in jobs})
    if point in CARD_INSIDE:
        assert counts["in_doubt"] == 1 and counts["printed"] == 2
        doubtful = room.query("SELECT job_id FROM jobs WHERE state = 'in_doubt'")[0][0]
        job = next(j for j in jobs if j["job_id"] == doubtful)
        # The card of the job in doubt left the printer only if the cut came after its eject.
        assert Counter(c["chip_files_sha256"] for c in room.cards())[chip_sha(job)] == (point == "after_eject")
    else:
        assert counts["printed"] == 3


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
            time.sleep(rng.uniform(0.05, 0.6))                # a random instant is the point of this test
            room.cut()
            room.start(wait_online=False)
    room.kill()
    cutting = time.monotonic() - started
    settle(room)
    # A request in hand at two deaths in a row is answered internal_error and set aside (contract 1.1).
    died_twice = [a for a in producer.refused if a["error"]["code"] == "internal_error"]
    assert [a for a in producer.refused if a not in died_twice] == []
    assert len(died_twice) <= room.query("SELECT COUNT(*) FROM quarantine WHERE why LIKE 'died twice%'")[0][0]
    counts = check_promises(room, producer.acknowledged)
    assert counts["printed"] > 0 and len(producer.acknowledged) > 0
    print(f"\nseed {seed}, {cuts} power cuts in {cutting:.0f} s: {len(producer.acknowledged)} jobs acknowledged, "
          f"{dict(counts)}, {len(room.cards())} cards left the printer, {len(died_twice)} set aside")
