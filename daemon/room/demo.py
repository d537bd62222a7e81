"""The demo: a simulated print room prints fake people's cards, quickly (30 cards) or for a whole working day."""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

from ..room.fake_people import fake_job
from ..room.office import OfficeClient
from ..room.sim_room import PrivateBroker, sim_config, start_daemon

STATION = "demo-room-01"
JAKARTA = ZoneInfo("Asia/Jakarta")
FINAL = ("printed", "failed", "in_doubt", "cancelled", "expired")


def _bar(done: int, total: int, width: int = 40) -> str:
    filled = int(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


@contextmanager
def demo_room(output_dir: str, **overrides):
    """A private mosquitto and kartud on the simulated printer in ``output_dir`` (emptied first); yields an
    office client. Everything it started is stopped on the way out, whatever happens."""
    shutil.rmtree(output_dir, ignore_errors=True)
    os.makedirs(output_dir)
    broker = PrivateBroker(os.path.join(output_dir, "broker"))
    daemon = None
    try:
        broker.start()
        config = sim_config(output_dir, broker.port, station=STATION, **overrides)
        daemon = start_daemon(config, os.path.join(output_dir, "kartud.log"))
        with OfficeClient("127.0.0.1", broker.port, f"kartud/{STATION}") as office:
            office.wait_availability("online", timeout=20)
            for batch, card_type, count in (("DEMO-KTP-1", "KTP_EL", 300), ("DEMO-KIA-1", "KIA", 100)):
                office.request("blanks/receive", {"batch_id": batch, "card_type": card_type, "count": count})
            yield office
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(30)
            except Exception:
                daemon.kill()
        broker.stop()


def _submit(office, payloads: list[dict]) -> tuple[list[str], list[tuple[str, str, str]]]:
    accepted, refused = [], []
    for payload in payloads:
        answer = office.request("job/submit", payload)
        if answer["status"] == "ok":
            accepted.append(payload["job_id"])
        else:
            refused.append((payload["job_id"], answer["error"]["code"], answer["error"]["message"]))
    return accepted, refused


def _fail(output_dir: str, error: Exception) -> int:
    print(f"\ndemo failed: {error}", file=sys.stderr)
    log_path = os.path.join(output_dir, "kartud.log")
    if os.path.exists(log_path):
        with open(log_path, errors="replace") as handle:
            print("last lines of the daemon's log:\n" + "".join(handle.readlines()[-10:]), file=sys.stderr)
    return 1


def run_demo(output_dir: str, jobs: int = 30, clock_speed: float = 60.0, seed: int = 2017) -> int:
    """30 cards as fast as the simulated printer goes; return 0 when every job was printed."""
    output_dir = os.path.abspath(output_dir)
    started = time.monotonic()
    rng = random.Random(seed)
    try:
        with demo_room(output_dir, **{"sim.clock_speed": str(clock_speed)}) as office:
            print(f"kartud demo: mosquitto and kartud on the simulated printer, clock x{clock_speed:g}")
            print(f"submitting {jobs} jobs for generated, obviously fake people (NIK region 99, name CONTOH)")
            # KTP-el cards only: the simulated feeder holds chip blanks, and a KIA job would meet one (wrong_blank:
            # a station holds one kind of blank at a time, and the demo has no person to load KIA blanks).
            payloads = [fake_job(rng, i, "KTP_EL") for i in range(1, jobs + 1)]
            # Two submissions the box must refuse: the same record again, and an impossible NIK.
            payloads.append(fake_job(rng, 9001, record_id=payloads[0]["record_id"], job_id="j-demo-dup"))
            payloads.append({**fake_job(rng, 9002), "nik": "9901011300000000"})
            accepted, refused = _submit(office, payloads)
            finals: dict[str, str] = {}
            while len(finals) < len(accepted):
                event = office.events.get(timeout=60)["job"]
                if event["state"] in FINAL:
                    finals[event["job_id"]] = event["state"]
                    printed = sum(1 for s in finals.values() if s == "printed")
                    sys.stdout.write(f"\rprinting {_bar(printed, len(accepted))}")
                    sys.stdout.flush()
            print()
            state = office.request("status/get", {})["data"]
    except (TimeoutError, RuntimeError, OSError) as error:
        return _fail(output_dir, error)
    printed = [j for j, s in finals.items() if s == "printed"]
    cards_dir = os.path.join(output_dir, "cards")
    with open(os.path.join(cards_dir, "cards.jsonl")) as handle:
        cards = [json.loads(line) for line in handle]
    print(f"\nprinted: {len(printed)}   refused: {len(refused)}   not printed: {len(finals) - len(printed)}   "
          f"time: {time.monotonic() - started:.1f} s")
    for job_id, code, message in refused:
        print(f"  refused {job_id}: {code}: {message}")
    print(f"cards out of the printer: {sum(c['destination'] == 'output' for c in cards)} "
          f"(reject box: {sum(c['destination'] == 'reject' for c in cards)})")
    print("blanks left: " + ", ".join(f"{t} {b['in_stock']}" for t, b in state["blanks"].items()))
    print(f"card images: {cards_dir}/<seq>-front.png   log: {output_dir}/kartud.log")
    return 0 if len(printed) == len(accepted) == jobs else 1


def run_full_day(output_dir: str, jobs: int = 250, clock_speed: float = 400.0, seed: int = 2017) -> int:
    """One working day (Monday 08:00-14:00) with ``jobs`` queued: the daily limit, even pacing, and what
    waits for tomorrow, with a per-hour histogram. Returns 0 when the day went as the rules say."""
    output_dir = os.path.abspath(output_dir)
    rng = random.Random(seed)
    day_end = datetime(2026, 11, 23, 14, 5, tzinfo=JAKARTA)
    overrides = {"sim.clock_speed": str(clock_speed), "sim.clock_start": '"2026-11-23T07:40:00+07:00"',
                 "limits.working_hours": '["mon-thu 08:00-14:00", "fri 08:00-11:00"]', "limits.pacing": '"even"',
                 "limits.daily": "200",
                 # In a real room someone empties the output hopper now and then; here it is simply larger.
                 "printer.sim.hopper_capacity": "500"}
    print(f"kartud demo, a full day: Monday 08:00-14:00, limit 200, even pacing, clock x{clock_speed:g}")
    print(f"drawing {jobs} generated, obviously fake people (NIK region 99, name CONTOH) ...")
    # Drawn before the simulated clock starts, so the morning is not spent drawing faces.
    payloads = [fake_job(rng, i, "KTP_EL") for i in range(1, jobs + 1)]     # chip blanks in the feeder, as above
    try:
        with demo_room(output_dir, **overrides) as office:
            accepted, _ = _submit(office, payloads)
            while True:
                state = office.request("status/get", {})["data"]
                at = datetime.fromisoformat(state["at"])
                sys.stdout.write(f"\r{at:%a %H:%M} {_bar(state['today']['printed'], 200, 30)} "
                                 f"{state['mode']:8} {state['reason'] or '':20}")
                sys.stdout.flush()
                if at >= day_end:
                    break
                time.sleep(0.25)
            print()
            printed_at = []
            while not office.events.empty():
                job = office.events.get_nowait()["job"]
                if job["state"] == "printed":
                    printed_at.append(datetime.fromisoformat(job["printed_at"]).astimezone(JAKARTA))
    except (TimeoutError, RuntimeError, OSError) as error:
        return _fail(output_dir, error)
    per_hour = Counter(moment.hour for moment in printed_at)
    print(f"\nprinted today: {state['today']['printed']} of {len(accepted)} queued; waiting for tomorrow: "
          f"{state['queue']['queued']}; the station says: {state['mode']} ({state['reason']}), "
          f"next card at {state['next_print_at']}")
    print("cards per hour:")
    for hour in range(8, 14):
        print(f"  {hour:02d}:00  {'#' * (per_hour[hour] // 2):20} {per_hour[hour]}")
    starts = sorted(printed_at)
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
    if gaps:
        print(f"time between cards: {min(gaps):.0f}-{max(gaps):.0f} s, on average {sum(gaps) / len(gaps):.0f} s "
              f"(6 hours / 200 cards = 108 s)")
    inside = all(8 <= moment.hour < 14 for moment in printed_at)
    return 0 if state["today"]["printed"] == 200 and state["queue"]["queued"] == len(accepted) - 200 and inside \
        else 1
