"""Submit round trips and intake beside their raw floor, in one run: issue 18's latency and intake figures alone.

    .venv/bin/python scripts/bench_kit/latency_intake.py [--quick]               # both cores
    .venv/bin/python scripts/bench_kit/latency_intake.py [--quick] --one-core    # kartud under taskset -c 0

The floors come first in the same run: single-row durable commits on the same disk, and the raw floor
(:mod:`raw_floor`: paho + mosquitto with TCP_NODELAY + one durable commit) through the same broker and
the same office client; with ``--one-core`` the responder and kartud both run under ``taskset -c 0``
(the broker and the office client do not: they stand for other machines). Then the intake phase of ``scripts/bench`` (round trips at 0, 10,000 and, full
run, 100,000 queued; a colour burst; 1-bit bursts). Prints a table and writes ``<--dir>/latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from floors import commit_floor  # noqa: E402
from load import Jobs, Office, percentiles  # noqa: E402
from machine import cpu_seconds  # noqa: E402
from phases import queue_and_intake  # noqa: E402
from raw_floor import RawFloor  # noqa: E402

from kartud.room.sim_room import PrivateBroker  # noqa: E402


def raw_floor(broker, directory: str, samples: int, one_core: bool = False) -> dict:
    """Round trips of 1-bit job payloads through the raw-floor responder."""
    with RawFloor(broker.port, directory, one_core) as floor:
        office = Office(broker.port)
        try:
            jobs = Jobs(seed=5)
            office.round_trips(jobs.make(50))
            cpu = cpu_seconds(floor.process.pid)
            out = percentiles(office.round_trips(jobs.make(samples)))
            return {**out, "cpu_ms_per_job": (cpu_seconds(floor.process.pid) - cpu) / samples * 1e3}
        finally:
            office.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="to 10,000 queued only (about a minute)")
    parser.add_argument("--one-core", action="store_true", help="kartud and the raw floor under taskset -c 0")
    parser.add_argument("--dir", default="/var/tmp/kartud-bench-latency", help="working folder (default: %(default)s)")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    out = {"cores": 1 if args.one_core else len(os.sched_getaffinity(0)), "commit_floor": commit_floor(args.dir)}
    broker = PrivateBroker(os.path.join(args.dir, "broker")).start()
    try:
        out["raw_floor"] = raw_floor(broker, os.path.join(args.dir, "raw"), 300 if args.quick else 2000, args.one_core)
        out["queue"] = queue_and_intake(broker, os.path.join(args.dir, "queue"), args.quick, None, args.one_core)
    finally:
        broker.stop()
    with open(os.path.join(args.dir, "latency.json"), "w") as handle:
        json.dump(out, handle, indent=2)
    floor, queue = out["raw_floor"], out["queue"]
    print(f"cores {out['cores']}; durable commits {out['commit_floor']['commits_per_s']:.0f}/s")
    for label in ("floor", "0", "10k", "100k"):
        row = floor if label == "floor" else queue.get(f"rt_{label}")
        if row:
            cpu = f", daemon CPU {row['cpu_ms_per_job']:.2f} ms a job" if "cpu_ms_per_job" in row else ""
            print(f"round trip {label:>5}: p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms "
                  f"({row['p50_ms'] / floor['p50_ms']:.2f}x / {row['p99_ms'] / floor['p99_ms']:.2f}x the raw floor){cpu}")
    for name in ("intake_colour", "intake_bw", "intake_bw_to_100k"):
        if name in queue:
            rate = queue[name]["jobs_per_s"]
            print(f"{name}: {rate:.0f} jobs/s ({rate / out['commit_floor']['commits_per_s']:.2f}x the commit floor), "
                  f"daemon CPU {queue[name]['cpu_ms_per_job']:.2f} ms a job, {queue[name]['refused']} refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
