"""Where a submit round trip's time goes, segment by segment, and what makes its slowest 1% slow.

    .venv/bin/python scripts/bench_kit/rt_segments.py [--round-trips 2000] [--dir /dev/shm/kartud-rt]

Runs the daemon as the unit does, with ``trace_site/`` on its PYTHONPATH (bench only: it notes time
stamps at each hand-over, see its docstring), the queue paused, and sends 1-bit submissions one at a
time. Each round trip is cut at the notes that fall inside it: office → paho's thread, paho → loop,
the loop before the store call, the hop to the store's thread, the store call, the hop back, the loop
after it, the answer → office. Prints each segment's p50 / p90 / p99, and how the slowest 1% differ
from the median, segment by segment (which part of the tail is whose), with the garbage collections and
other store calls (the press, the state) that fell inside them.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from load import Jobs, Office, percentiles  # noqa: E402
from station import Daemon, unit_environment  # noqa: E402

from kartud.room.sim_room import PrivateBroker  # noqa: E402

SEGMENTS = ["office to paho", "paho to loop", "loop, before the store", "to the store thread", "store call",
            "back to the loop", "loop, after the store", "answer to office"]
SUBMIT_CALL = "handled_in_hand"                             # the one store call of a batch of plain submissions


def trace(directory: str, round_trips: int) -> tuple[list, list]:
    """``(spans, notes)``: each round trip's (sent, answered) and the daemon's notes."""
    site = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trace_site")
    notes_file = os.path.join(directory, "trace.json")
    broker = PrivateBroker(os.path.join(directory, "broker")).start()
    env = {**unit_environment(), "KARTUD_TRACE": notes_file,
           "PYTHONPATH": os.pathsep.join(filter(None, [site, os.environ.get("PYTHONPATH")]))}
    try:
        daemon = Daemon(os.path.join(directory, "queue"), broker, env=env)
        office = Office(broker.port)
        try:
            office.request("queue/pause", {"reason": "benchmark"})
            jobs = Jobs()
            office.round_trips(jobs.make(50))               # warm the path first
            spans = office.round_trip_spans(jobs.make(round_trips))
        finally:
            office.close()
            daemon.stop()
    finally:
        broker.stop()
    with open(notes_file) as handle:
        return spans, sorted(json.load(handle), key=lambda n: n[0])


def cut(span: tuple[float, float], inside: list) -> dict | None:
    """One round trip's segments (seconds), or None when a note is missing (a batch of several)."""
    def first(label: str):
        return next((n[0] for n in inside if n[1] == label), None)
    marks = [span[0], first("received"), first("on_loop"), first("asked:" + SUBMIT_CALL),
             first("store_began:" + SUBMIT_CALL), first("store_ended:" + SUBMIT_CALL), first("back:" + SUBMIT_CALL),
             first("answered"), span[1]]
    if None in marks or marks != sorted(marks):
        return None
    row = {name: b - a for name, a, b in zip(SEGMENTS, marks, marks[1:])}
    row["total"] = span[1] - span[0]
    row["gc"] = sum(1 for n in inside if n[1] == "gc_start")
    row["other_store_calls"] = sorted({n[1].split(":", 1)[1] for n in inside
                                       if n[1].startswith("asked:") and not n[1].endswith(SUBMIT_CALL)})
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--dir", default="/dev/shm/kartud-rt", help="working folder (default: %(default)s)")
    args = parser.parse_args()
    spans, notes = trace(args.dir, args.round_trips)
    stamps = [n[0] for n in notes]
    rows = [row for span in spans
            if (row := cut(span, notes[bisect.bisect_left(stamps, span[0]):bisect.bisect_right(stamps, span[1])]))]
    whole = percentiles([span[1] - span[0] for span in spans])
    print(f"{len(spans)} round trips: p50 {whole['p50_ms']:.2f} ms, p99 {whole['p99_ms']:.2f} ms; "
          f"{len(rows)} cut into segments")
    pick = lambda values, q: sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1e3
    median = {name: pick([r[name] for r in rows], 0.5) for name in SEGMENTS + ["total"]}
    rows.sort(key=lambda r: r["total"])
    slowest = rows[-max(1, len(rows) // 100):]
    excess = {name: sum(r[name] * 1e3 - median[name] for r in slowest) / len(slowest) for name in SEGMENTS}
    print(f"{'segment':>24}  {'p50':>6} {'p90':>6} {'p99':>6}   slowest 1%: mean over the p50")
    for name in SEGMENTS:
        values = [r[name] for r in rows]
        print(f"{name:>24}  {pick(values, .5):6.3f} {pick(values, .9):6.3f} {pick(values, .99):6.3f}   "
              f"{excess[name]:+.3f} ms")
    print(f"{'total':>24}  {median['total']:6.3f}   slowest 1%: mean {sum(r['total'] for r in slowest) / len(slowest) * 1e3:.3f}"
          f" ms; with a garbage collection inside: {sum(1 for r in slowest if r['gc'])} of {len(slowest)} "
          f"(all round trips: {sum(1 for r in rows if r['gc'])} of {len(rows)}); with another store call inside: "
          f"{sum(1 for r in slowest if r['other_store_calls'])} of {len(slowest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
