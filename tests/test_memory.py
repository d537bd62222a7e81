"""The daemon's memory: no Pillow or libsystemd when idle, groups bounded by bytes, the heap given back after a burst."""

from __future__ import annotations

import asyncio
import base64
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from kartud.room.fake_people import fake_person, render_front
from kartud.service import intake as intake_module
from kartud.service.heap import HeapReturn
from kartud.service.intake import Intake
from kartud.service.mqtt_link import IncomingRequest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts" / "bench_kit"))
from station import unit_environment  # noqa: E402  (the bench's reading of etc/systemd/kartud.service)


def _mapped(pid: int, fragment: str) -> bool:
    with open(f"/proc/{pid}/maps") as handle:
        return any(fragment in line for line in handle)


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 1024


def test_the_unit_runs_python_with_glibc_malloc_and_two_arenas():
    # Set before the interpreter starts, so only the unit can: the bench and the next test run the daemon so.
    assert unit_environment() == {"PYTHONMALLOC": "malloc", "MALLOC_ARENA_MAX": "2"}


def test_an_idle_daemon_has_not_loaded_pillow_and_its_first_card_does(room):
    room.start()
    room.receive_blanks(5)
    # Pillow's C core (with FreeType, libjpeg, libtiff...) is not mapped into the running process.
    assert not _mapped(room.process.pid, "/PIL/_imaging.")
    assert not _mapped(room.process.pid, "/libsystemd.so")             # sd_notify is spoken without it
    job = room.job()
    assert room.submit(job)["status"] == "ok"
    room.wait_state(job["job_id"], "printed")
    assert len(room.cards()) == 1
    assert _mapped(room.process.pid, "/PIL/_imaging.")                  # the face became panels


def test_the_heap_a_burst_grew_is_given_back_once_the_intake_is_quiet(room):
    room.env.update(unit_environment())                                 # the daemon as the unit runs it
    room.start()
    room.office.request("queue/pause", {"reason": "memory test"})
    assert room.submit(room.job())["status"] == "ok"                    # Pillow loaded: part of the baseline
    before = _rss_mib(room.process.pid)
    rng = random.Random(3)
    drawn = [base64.b64encode(render_front(fake_person(rng, n), rng)).decode() for n in range(8)]
    jobs = [room.job(front_png=drawn[n % 8]) for n in range(800)]       # drawn faces, ~31 KB, 2 MiB decoded
    correlations = [room.office.send("job/submit", job, wait=False) for job in jobs]
    answers = [room.office.wait_answer(c, timeout=60) for c in correlations]
    assert [a["status"] for a in answers] == ["ok"] * len(jobs)
    peak = _rss_mib(room.process.pid)
    deadline = time.monotonic() + 20
    while _rss_mib(room.process.pid) > before + 16 and time.monotonic() < deadline:
        time.sleep(0.1)                     # polling the kernel's count: the trim follows a second's quiet
    after = _rss_mib(room.process.pid)
    print(f"\nRSS before {before:.1f} MiB, at the last answer {peak:.1f}, then {after:.1f}")
    assert after <= before + 16, (before, peak, after)


def _request(size: int) -> IncomingRequest:
    return IncomingRequest(command="job/submit", payload=b"x" * size, retain=False, response_topic=None,
                           correlation_data=None, mid=0, qos=1)


def test_a_group_is_bounded_by_its_payload_bytes_as_well_as_by_its_count():
    groups: list[list[int]] = []
    total = 12 + 700

    async def run() -> None:
        intake = Intake(SimpleNamespace(config=None))
        done = asyncio.Event()

        async def serve_batch(batch):                   # what the grouping handed over, nothing else
            groups.append([len(r.payload) for r in batch])
            if sum(map(len, groups)) == total:
                done.set()

        intake.serve_batch = serve_batch
        requests: asyncio.Queue = asyncio.Queue()
        for _ in range(12):
            requests.put_nowait(_request(1024 * 1024))                  # a photo face's request is ~250 KiB
        for _ in range(700):
            requests.put_nowait(_request(100))
        task = asyncio.create_task(intake.serve(requests))
        await asyncio.wait_for(done.wait(), 10)
        task.cancel()

    asyncio.run(run())
    assert intake_module.MAX_GROUP_BYTES == 4 * 1024 * 1024 and intake_module.MAX_GROUP == 500
    assert [len(g) for g in groups] == [4, 4, 4, 500, 200]
    assert all(sum(g) <= intake_module.MAX_GROUP_BYTES for g in groups)


def test_the_trim_waits_for_the_quiet_and_a_group_in_between_puts_it_off():
    async def run() -> HeapReturn:
        heap = HeapReturn(quiet_s=0.05)
        heap.drained()                                  # nothing handled yet: nothing to give back
        assert heap._pending is None
        heap.handled(1000)
        heap.drained()
        heap.handled(1000)                              # a group came before the quiet was over
        assert heap._pending is None and heap.trims == 0
        heap.drained()
        assert heap._pending is not None
        while heap.trims == 0:
            await asyncio.sleep(0.01)                   # the loop's own timer, as in the daemon
        return heap

    heap = asyncio.run(run())
    assert heap.trims == 1 and heap.owed == 0
