"""The benchmark phases: intake and round trips as the queue grows, cost per card, start-up, idle memory and CPU."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter

from load import Jobs, Office, percentiles
from machine import cpu_seconds, rss_mib, threads
from station import FAST_PRINTER, Daemon

PY_SPY = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")


class Profiler:
    """py-spy sampling a process (without pausing it) until stopped; ``summary()`` reads its raw stacks."""

    def __init__(self, pid: int, output: str):
        self.output = output
        self.process = None
        if PY_SPY:
            self.process = subprocess.Popen([PY_SPY, "record", "--pid", str(pid), "--format", "raw", "--output",
                                             output, "--rate", "250", "--nonblocking", "--threads"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)                        # attached before the work starts

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(60)

    def summary(self, top: int = 12) -> dict:
        """Samples in all, each thread's share, the share whose stack is in the printer simulator, and the
        frames where the time is spent (self time: the innermost frame of each sample, with its thread)."""
        if self.process is None or not os.path.exists(self.output):
            return {}
        total, simulator, by_thread, leaves = 0, 0, Counter(), Counter()
        with open(self.output) as handle:
            for line in handle:
                stack, _, count = line.rstrip().rpartition(" ")
                if not count.isdigit():
                    continue
                count, frames = int(count), stack.split(";")
                thread = frames[0].split(": ", 1)[-1] if frames[0].startswith("thread ") else "?"
                total += count
                simulator += count * any("hw/sim/" in frame for frame in frames)
                by_thread[thread] += count
                leaves[thread, _short(frames[-1])] += count
        if not total:
            return {}
        return {"samples": total, "simulator_share": simulator / total,
                "threads": [(thread, n / total) for thread, n in by_thread.most_common()],
                "top": [(f"{frame} [{thread}]", n / total) for (thread, frame), n in leaves.most_common(top)]}


def _short(frame: str) -> str:
    """``run (kartud/daemon/service/press.py:45)`` → ``run (daemon/service/press.py)``: one line per function, not per line."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/lib/python3", "/work/main/", "/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def queue_and_intake(broker, directory: str, quick: bool, profile: str | None, one_core: bool = False) -> dict:
    """One daemon, paused: round trips with 0 queued, a colour burst, 1-bit bursts to 10,000 (memory), round
    trips at 10,000, then (full run) to 100,000 and round trips there. ``one_core``: the daemon under
    ``taskset -c 0``, the nearest thing here to a Pi."""
    daemon = Daemon(directory, broker, prefix=["taskset", "-c", "0"] if one_core else None)
    office = Office(broker.port)
    jobs = Jobs()
    out: dict = {"rss_start_mib": rss_mib(daemon.pid)}
    try:
        office.request("queue/pause", {"reason": "benchmark"})
        samples = 300 if quick else 2000
        queued = 0

        def burst(payloads: list[bytes]) -> dict:
            # The daemon's own CPU per job: unlike jobs/s, it does not move with the other engineers' load.
            cpu = cpu_seconds(daemon.pid)
            result = office.burst(payloads)
            return {**result, "cpu_ms_per_job": (cpu_seconds(daemon.pid) - cpu) / len(payloads) * 1e3}

        def fill_to(target: int) -> dict:
            nonlocal queued
            result = burst(jobs.make(target - queued))
            queued = target
            return result

        def round_trips(label: str) -> None:
            nonlocal queued
            office.round_trips(jobs.make(50))              # warm the path first
            cpu = cpu_seconds(daemon.pid)
            out[f"rt_{label}"] = percentiles(office.round_trips(jobs.make(samples)))
            out[f"rt_{label}"]["cpu_ms_per_job"] = (cpu_seconds(daemon.pid) - cpu) / samples * 1e3
            queued += samples + 50

        # The floor of a round trip through this broker and the daemon's dispatch: a submission refused at
        # once (no image to decode, nothing to commit), measured the same way.
        invalid = [b'{"job_id": "x"}'] * samples
        out["rt_floor"] = percentiles(office.round_trips(invalid))
        round_trips("0")
        profiler = Profiler(daemon.pid, os.path.join(directory, "profile-colour.txt")) if profile == "colour" else None
        out["intake_colour"] = burst(jobs.make(200 if quick else 1000, colour=True, card_type="KTP_EL"))
        if profiler:
            profiler.stop()
            out["profile"] = ("colour intake", profiler.summary())
        queued += out["intake_colour"]["jobs"]
        profiler = Profiler(daemon.pid, os.path.join(directory, "profile-intake.txt")) if profile == "intake" else None
        out["intake_bw"] = fill_to(10_000)
        if profiler:
            profiler.stop()
            out["profile"] = ("intake", profiler.summary())
        time.sleep(5)                                      # let the burst's buffers go
        out["rss_10k_mib"] = rss_mib(daemon.pid)
        round_trips("10k")
        if not quick:
            out["intake_bw_to_100k"] = fill_to(100_000)
            time.sleep(5)
            out["rss_100k_mib"] = rss_mib(daemon.pid)
            profiler = Profiler(daemon.pid, os.path.join(directory, "profile-rt.txt")) if profile == "rt" else None
            round_trips("100k")
            if profiler:
                profiler.stop()
                out["profile"] = ("round trips at 100,000 queued", profiler.summary())
        out["queued"] = queued
    finally:
        office.close()
        daemon.stop()
    return out


def wait_done(db: sqlite3.Connection, cards: int, began: float, limit_s: float = 600) -> None:
    """Wait until ``cards`` jobs in the daemon's database ``db`` are printed or failed (looked at every 0.2 s);
    a ``TimeoutError`` once ``limit_s`` have passed since ``began`` (a ``time.perf_counter()``)."""
    while db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('printed', 'failed')").fetchone()[0] < cards:
        time.sleep(0.2)
        if time.perf_counter() - began > limit_s:
            raise TimeoutError(f"the cards did not print within {limit_s} s")


def card_cost(broker, directory: str, quick: bool) -> dict:
    """Daemon CPU time per card, printer and encoder simulated with no delay, faces in colour. The simulator
    runs inside the daemon's process: a py-spy profile tells its share, to give the daemon's own cost."""
    cards = 40 if quick else 200
    daemon = Daemon(directory, broker, cool_head=True, **FAST_PRINTER)
    office = Office(broker.port)
    try:
        office.request("queue/pause", {"reason": "benchmark"})
        office.request("blanks/receive", {"batch_id": "B-BENCH", "card_type": "KTP_EL", "count": cards + 10})
        office.burst(Jobs(seed=3).make(cards, colour=True, card_type="KTP_EL"))
        profiler = Profiler(daemon.pid, os.path.join(directory, "profile-card.txt"))
        cpu_before, began = cpu_seconds(daemon.pid), time.perf_counter()
        office.request("queue/resume", {})
        db = sqlite3.connect(f"file:{directory}/kartud.db?mode=ro", uri=True)
        wait_done(db, cards, began)
        cpu = cpu_seconds(daemon.pid) - cpu_before
        wall = time.perf_counter() - began
        printed = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'printed'").fetchone()[0]
        db.close()
        profiler.stop()
        profile = profiler.summary()
    finally:
        office.close()
        daemon.stop()
    share = profile.get("simulator_share", 0.0)
    return {"cards": cards, "printed": printed, "cpu_s": cpu, "wall_s": wall, "ms_per_card": cpu / cards * 1e3,
            "simulator_share": share, "daemon_ms_per_card": cpu / cards * 1e3 * (1 - share), "profile": profile}


def ready_times(broker, directory: str, runs: int, big_db: str | None) -> dict:
    """Process start to READY=1, on a new database and (full run) on the one holding 100,000 jobs."""
    out = {}
    fresh = []
    for n in range(runs):
        daemon = Daemon(os.path.join(directory, f"ready-{n}"), broker)
        fresh.append(daemon.ready_s)
        daemon.stop()
    out["fresh"] = {"median_s": statistics.median(fresh), "max_s": max(fresh), "runs": runs}
    if big_db:
        big = []
        for _ in range(3):
            daemon = Daemon(big_db, broker, fresh=False)
            big.append(daemon.ready_s)
            daemon.stop()
        out["100k"] = {"median_s": statistics.median(big), "max_s": max(big), "runs": 3}
    return out


def idle(broker, directory: str, quick: bool) -> dict:
    """Resident memory after start-up, then CPU over a quiet minute with the default status poll (2 s)."""
    settle, window = (5.0, 15.0) if quick else (20.0, 60.0)
    daemon = Daemon(directory, broker)
    try:
        time.sleep(settle)
        rss, count = rss_mib(daemon.pid), threads(daemon.pid)
        cpu_before = cpu_seconds(daemon.pid)
        time.sleep(window)
        cpu = cpu_seconds(daemon.pid) - cpu_before
        rss_after = rss_mib(daemon.pid)
    finally:
        daemon.stop()
    return {"settle_s": settle, "rss_mib": rss, "rss_after_window_mib": rss_after, "threads": count,
            "window_s": window, "cpu_percent": cpu / window * 100}
