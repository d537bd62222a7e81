"""Run every kartud benchmark once against the real daemon, mosquitto and disk; write docs/performance.md."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from floors import commit_floor, import_floors  # noqa: E402
from latency_intake import raw_floor  # noqa: E402
from machine import machine_facts  # noqa: E402
from memory import ready_after_stops, rss_through_burst  # noqa: E402
from phases import card_cost, idle, queue_and_intake, ready_times  # noqa: E402
from write_md import write_markdown  # noqa: E402

from kartud.room.sim_room import PrivateBroker  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts (about 4 minutes; queue to 10,000 only)")
    parser.add_argument("--dir", default="/var/tmp/kartud-bench",
                        help="working folder, on the disk to measure (default: %(default)s); emptied first")
    parser.add_argument("--profile", choices=("intake", "colour", "rt"),
                        help="also profile the daemon with py-spy during the 1-bit intake, the colour intake or the "
                             "100k round trips")
    parser.add_argument("--output", default=os.path.join(REPO, "docs", "performance.md"),
                        help="where to write the results (default: docs/performance.md)")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    began = time.monotonic()
    step = lambda text: print(f"[{time.monotonic() - began:6.1f} s] {text}", flush=True)
    results: dict = {"quick": args.quick, "machine": machine_facts(args.dir)}
    step("floors: durable commits and imports")
    results["commit_floor"] = commit_floor(args.dir)
    results["import_floors"] = import_floors()
    broker = PrivateBroker(os.path.join(args.dir, "broker")).start()
    try:
        step("the raw floor of a round trip: paho + mosquitto with TCP_NODELAY + one durable commit")
        results["raw_floor"] = raw_floor(broker, os.path.join(args.dir, "raw"), 300 if args.quick else 2000)
        step("intake and round trips as the queue grows")
        results["queue"] = queue_and_intake(broker, os.path.join(args.dir, "queue"), args.quick, args.profile)
        step("intake and round trips to 10,000 queued, kartud and the raw floor on one core (taskset -c 0)")
        results["raw_floor_1c"] = raw_floor(broker, os.path.join(args.dir, "raw"), 300 if args.quick else 1000,
                                            one_core=True)
        results["queue_1c"] = queue_and_intake(broker, os.path.join(args.dir, "queue-1c"), True, None, one_core=True)
        step("start to READY=1")
        results["ready"] = ready_times(broker, os.path.join(args.dir, "ready"), 3 if args.quick else 5,
                                       None if args.quick else os.path.join(args.dir, "queue"))
        if not args.quick:
            for cores, one_core in (("2", False), ("1", True)):
                step(f"start to READY=1 with 100,000 jobs, after a clean stop and after a kill ({cores} core(s))")
                results[f"ready_stops_{cores}c"] = ready_after_stops(broker, os.path.join(args.dir, "queue"),
                                                                     one_core=one_core)
        for cores, one_core in (("2", False), ("1", True)):
            step(f"RSS through a burst and the minute after it ({cores} core(s))")
            results[f"memory_{cores}c"] = rss_through_burst(broker, os.path.join(args.dir, "memory"),
                                                            2_000 if args.quick else 10_000, 200 if args.quick else 1_000,
                                                            20.0 if args.quick else 60.0, one_core=one_core)
        step("CPU per card")
        results["card"] = card_cost(broker, os.path.join(args.dir, "card"), args.quick)
        step("idle memory and CPU")
        results["idle"] = idle(broker, os.path.join(args.dir, "idle"), args.quick)
    finally:
        broker.stop()
    results["duration_s"] = time.monotonic() - began
    with open(os.path.join(args.dir, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2, default=str)
    write_markdown(results, args.output)
    step(f"done: {args.output} (raw figures in {args.dir}/results.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
