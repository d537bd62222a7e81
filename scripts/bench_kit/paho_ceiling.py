"""What paho alone lets a daemon answer: bursts of 1-bit submissions against the raw responder, in four modes.

    .venv/bin/python scripts/bench_kit/paho_ceiling.py [--jobs 10000] [--one-core] [--dir /var/tmp/kartud-paho]

The responder (:mod:`raw_floor`) answers each request and acknowledges it; ``answer`` does nothing else,
``answer+event`` also publishes an ``event/job`` as kartud does for every queued job, ``commit`` makes one
durable commit first, ``commit+event`` both. Beside the durable commits a second on the same disk, this
says how much of the intake target (0.5x that floor) paho's own work leaves for anything else. The office
client (paho too) and mosquitto run on the same cores; their CPU a request is printed beside the responder's.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from floors import commit_floor  # noqa: E402
from load import Jobs, Office  # noqa: E402
from machine import cpu_seconds  # noqa: E402
from raw_floor import RawFloor  # noqa: E402

from kartud.room.sim_room import PrivateBroker  # noqa: E402

MODES = {"answer": (False, False), "answer+event": (False, True), "commit": (True, False), "commit+event": (True, True)}


def burst(broker, directory: str, commit: bool, event: bool, jobs: int, one_core: bool) -> dict:
    """Requests a second and CPU a request (responder, office client, broker) through one burst."""
    with RawFloor(broker.port, directory, one_core, commit=commit, event=event) as floor:
        office = Office(broker.port)
        try:
            load = Jobs(seed=5)
            office.burst(load.make(500))                   # warm the path first
            payloads = load.make(jobs)
            before = cpu_seconds(floor.process.pid), os.times(), cpu_seconds(broker.process.pid)
            result = office.burst(payloads)
            after = cpu_seconds(floor.process.pid), os.times(), cpu_seconds(broker.process.pid)
        finally:
            office.close()
    own = lambda times: times.user + times.system
    per = lambda a, b: (b - a) / jobs * 1e3
    return {"requests_per_s": result["jobs_per_s"], "responder_ms": per(before[0], after[0]),
            "office_ms": per(own(before[1]), own(after[1])), "broker_ms": per(before[2], after[2])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000, help="requests a burst (default: %(default)s)")
    parser.add_argument("--one-core", action="store_true", help="the responder under taskset -c 0")
    parser.add_argument("--dir", default="/var/tmp/kartud-paho", help="working folder, on the disk to measure")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    floor = commit_floor(args.dir)["commits_per_s"]
    print(f"durable single-row commits on this disk: {floor:,.0f}/s; 0.5x that is {floor / 2:,.0f}/s")
    broker = PrivateBroker(os.path.join(args.dir, "broker")).start()
    try:
        for name, (commit, event) in MODES.items():
            out = burst(broker, os.path.join(args.dir, name), commit, event, args.jobs, args.one_core)
            print(f"{name:>13}: {out['requests_per_s']:6,.0f} requests/s ({out['requests_per_s'] / floor:.2f}x the "
                  f"floor); CPU a request: responder {out['responder_ms']:.3f} ms, office client "
                  f"{out['office_ms']:.3f}, broker {out['broker_ms']:.3f}", flush=True)
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
