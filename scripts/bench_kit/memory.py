"""Resident memory over time through a burst of jobs and the minute after it, and start to READY after each kind of stop.

Run alone (not in CI): ``.venv/bin/python scripts/bench_kit/memory.py [--one-core] [--jobs N]``; ``scripts/bench``
runs it as one of its phases.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from load import Jobs, Office  # noqa: E402
from machine import cpu_seconds, rss_mib  # noqa: E402
from station import Daemon, unit_environment  # noqa: E402

ONE_CORE = ["taskset", "-c", "0"]    # the daemon on one core: the nearest thing here to a Pi


def pillow_loaded(pid: int) -> bool:
    """Whether Pillow's C core is mapped into the process (it is once ``PIL.Image`` was imported)."""
    with open(f"/proc/{pid}/maps") as handle:
        return any("/PIL/_imaging." in line for line in handle)


class RssSampler:
    """Samples a process's resident memory every ``every`` seconds, each sample with the phase it fell in."""

    def __init__(self, pid: int, every: float = 0.25):
        self.pid, self.every = pid, every
        self.phase = "idle"
        self.samples: list[tuple[float, float, str]] = []
        self._stop = threading.Event()
        self._began = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append((round(time.perf_counter() - self._began, 2), round(rss_mib(self.pid), 2), self.phase))

    def mark(self, phase: str) -> float:
        self.phase = phase
        return time.perf_counter() - self._began

    def stop(self) -> list[tuple[float, float, str]]:
        self._stop.set()
        self._thread.join()
        return self.samples


def rss_through_burst(broker, directory: str, jobs: int = 10_000, colour: int = 1_000, after_s: float = 60.0,
                      one_core: bool = False, env: dict | None = None, unit_env: bool = True) -> dict:
    """One daemon, queue paused: idle RSS (and whether Pillow is loaded), then ``colour`` jobs with drawn colour
    faces and ``jobs`` with 1-bit faces as fast as the daemon takes them, then ``after_s`` seconds quiet. The
    daemon runs with the unit's ``Environment=`` (unless ``unit_env`` is False), then ``env`` on top."""
    env = {**(unit_environment() if unit_env else {}), **(env or {})}
    daemon = Daemon(directory, broker, prefix=ONE_CORE if one_core else None, env=env)
    office = Office(broker.port)
    sampler = None
    try:
        office.request("queue/pause", {"reason": "benchmark"})
        payloads = Jobs(seed=5)
        colour_jobs, bw_jobs = payloads.make(colour, colour=True, card_type="KTP_EL"), payloads.make(jobs)
        time.sleep(3)                                   # start-up's own buffers go first
        out: dict = {"one_core": one_core, "jobs": jobs, "colour_jobs": colour, "env": env,
                     "idle_rss_mib": rss_mib(daemon.pid), "idle_pillow_loaded": pillow_loaded(daemon.pid)}
        sampler = RssSampler(daemon.pid)
        time.sleep(2)
        began = sampler.mark("burst")
        out["burst_colour"] = office.burst(colour_jobs)
        out["burst_bw"] = office.burst(bw_jobs)
        ended = sampler.mark("after")
        out["burst_s"] = ended - began
        del colour_jobs, bw_jobs
        time.sleep(after_s)
        samples = sampler.stop()
        sampler = None
        burst = [rss for _, rss, phase in samples if phase == "burst"]
        after = [(t - ended, rss) for t, rss, phase in samples if phase == "after"]
        out.update(peak_rss_mib=max(burst), end_of_burst_rss_mib=after[0][1],
                   after_5s_rss_mib=next(rss for t, rss in after if t >= 5), after_rss_mib=after[-1][1],
                   after_s=after[-1][0], pillow_loaded_after=pillow_loaded(daemon.pid),
                   timeline=samples[::4])           # one a second, for a plot
        return out
    finally:
        if sampler is not None:
            sampler.stop()
        office.close()
        daemon.stop()


def intake_cpu(broker, directory: str, variants: dict[str, dict], rounds: int = 3, jobs: int = 10_000,
               colour: int = 1_000, one_core: bool = False) -> dict:
    """The daemon's CPU (``utime + stime``) per job taken, for each environment in ``variants``: ``rounds`` rounds,
    each starting one daemon per variant (the order turned round every other round, so that the shared
    cores' load falls on both alike) and sending it the burst of :func:`rss_through_burst`. CPU is read just
    before the burst and 2 s after its last answer (the heap's trim included)."""
    payloads = Jobs(seed=5)
    colour_jobs, bw_jobs = payloads.make(colour, colour=True, card_type="KTP_EL"), payloads.make(jobs)
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for n in range(rounds):
        for name in (list(variants) if n % 2 == 0 else list(variants)[::-1]):
            daemon = Daemon(os.path.join(directory, name), broker, prefix=ONE_CORE if one_core else None,
                            env=variants[name])
            office = Office(broker.port)
            try:
                office.request("queue/pause", {"reason": "benchmark"})
                time.sleep(2)
                load = os.getloadavg()[0]
                began = cpu_seconds(daemon.pid)
                office.burst(colour_jobs)
                after_colour = cpu_seconds(daemon.pid)
                office.burst(bw_jobs)
                time.sleep(2)
                ended = cpu_seconds(daemon.pid)
                runs[name].append({"round": n, "load": load, "colour_ms_per_job": (after_colour - began) / colour * 1e3,
                                   "bw_ms_per_job": (ended - after_colour) / jobs * 1e3,
                                   "ms_per_job": (ended - began) / (colour + jobs) * 1e3})
            finally:
                office.close()
                daemon.stop()
    return {name: {"env": variants[name], "runs": results,
                   "median_ms_per_job": statistics.median(r["ms_per_job"] for r in results),
                   "median_colour_ms_per_job": statistics.median(r["colour_ms_per_job"] for r in results),
                   "median_bw_ms_per_job": statistics.median(r["bw_ms_per_job"] for r in results)}
            for name, results in runs.items()}


def ready_after_stops(broker, directory: str, runs: int = 3, one_core: bool = False) -> dict:
    """Start to READY=1 on the database in ``directory`` (filled before): after a clean stop (the check of the
    schema only) and after a SIGKILL (every page read by ``quick_check``), and, as the floor of the same run,
    on a new database. Best and median of ``runs``: on shared cores the best is the least disturbed."""
    prefix = ONE_CORE if one_core else None
    out = {}
    new = []
    for n in range(runs):
        started = Daemon(os.path.join(os.path.dirname(directory), f"ready-new-{n}"), broker, prefix=prefix)
        new.append(started.ready_s)
        started.stop()
    out["new_database"] = {"best_s": min(new), "median_s": statistics.median(new), "runs": runs}
    for stop in ("clean", "kill"):
        times = []
        for _ in range(runs):
            daemon = Daemon(directory, broker, fresh=False, prefix=prefix)
            if stop == "kill":
                daemon.process.send_signal(signal.SIGKILL)
                daemon.process.wait()
                daemon.notify.close()
            else:
                daemon.stop()
            started = Daemon(directory, broker, fresh=False, prefix=prefix)
            times.append(started.ready_s)
            started.stop()
        out[f"after_{stop}_stop"] = {"best_s": min(times), "median_s": statistics.median(times), "runs": runs}
    out["database_mib"] = os.path.getsize(os.path.join(directory, "kartud.db")) / 2**20
    return out


def fill(broker, directory: str, jobs: int) -> dict:
    """A database holding ``jobs`` queued jobs with 1-bit faces, made through the daemon as the office would."""
    daemon = Daemon(directory, broker)
    office = Office(broker.port)
    try:
        office.request("queue/pause", {"reason": "benchmark"})
        payloads = Jobs(seed=9)
        done = 0
        while done < jobs:
            office.burst(payloads.make(min(10_000, jobs - done)))
            done = min(jobs, done + 10_000)
        return {"jobs": jobs}
    finally:
        office.close()
        daemon.stop()


def main() -> int:
    from kartud.room.sim_room import PrivateBroker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/var/tmp/kartud-bench-memory")
    parser.add_argument("--one-core", action="store_true", help="the daemon under taskset -c 0")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--after", type=float, default=60.0, help="seconds of quiet after the burst")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="in the daemon's environment (e.g. MALLOC_ARENA_MAX=2), over the unit's")
    parser.add_argument("--no-unit-env", action="store_true",
                        help="without the Environment= lines of etc/systemd/kartud.service")
    parser.add_argument("--cpu-rounds", type=int, default=0,
                        help="instead of the burst: CPU per job taken with the unit's environment and without, "
                             "alternating, this many rounds")
    parser.add_argument("--ready-jobs", type=int, default=0, help="also fill a database this big and time READY")
    parser.add_argument("--runs", type=int, default=3, help="starts of each kind for READY")
    parser.add_argument("--ready-only", action="store_true", help="no burst: READY only (with --ready-jobs)")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    broker = PrivateBroker(os.path.join(args.dir, "broker")).start()
    try:
        env = dict(item.split("=", 1) for item in args.env)
        if args.cpu_rounds:
            out = {"intake_cpu": intake_cpu(broker, os.path.join(args.dir, "cpu"),
                                            {"unit_env": {**unit_environment(), **env}, "no_env": env},
                                            args.cpu_rounds, args.jobs, one_core=args.one_core)}
        else:
            out = {} if args.ready_only else {
                "memory": rss_through_burst(broker, os.path.join(args.dir, "burst"), args.jobs, after_s=args.after,
                                            one_core=args.one_core, env=env, unit_env=not args.no_unit_env)}
        if args.ready_jobs:
            ready_dir = os.path.join(args.dir, "ready")
            if not os.path.exists(os.path.join(ready_dir, "kartud.db")):
                fill(broker, ready_dir, args.ready_jobs)
            out["ready"] = ready_after_stops(broker, ready_dir, args.runs, one_core=args.one_core)
    finally:
        broker.stop()
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "timeline"} for k, v in out.items()}, indent=1))
    with open(os.path.join(args.dir, "memory.json"), "w") as handle:
        json.dump(out, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
