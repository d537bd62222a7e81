"""The demo: a simulated print room prints 30 fake people's cards while a progress bar runs, then a summary."""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time

from .fake_people import fake_job
from .office import OfficeClient
from .sim_room import PrivateBroker, sim_config, start_daemon

STATION = "demo-room-01"


def _bar(done: int, total: int, width: int = 40) -> str:
    filled = int(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def run_demo(output_dir: str, jobs: int = 30, clock_speed: float = 60.0, seed: int = 2017) -> int:
    """Run the demo in ``output_dir`` (emptied first); return 0 when every job was printed."""
    output_dir = os.path.abspath(output_dir)
    shutil.rmtree(output_dir, ignore_errors=True)
    os.makedirs(output_dir)
    started = time.monotonic()
    rng = random.Random(seed)
    broker = PrivateBroker(os.path.join(output_dir, "broker"))
    daemon = None
    try:
        broker.start()
        config = sim_config(output_dir, broker.port, station=STATION,
                            **{"sim.clock_speed": str(clock_speed), "printer.sim.seconds_per_card": "15.0"})
        print(f"kartud demo: mosquitto on 127.0.0.1:{broker.port}, daemon on the simulated printer, "
              f"clock x{clock_speed:g}")
        daemon = start_daemon(config, os.path.join(output_dir, "kartud.log"))
        with OfficeClient("127.0.0.1", broker.port, f"kartud/{STATION}") as office:
            office.wait_availability("online", timeout=20)
            for batch, card_type, count in (("DEMO-KTP-1", "KTP_EL", 100), ("DEMO-KIA-1", "KIA", 20)):
                office.request("blanks/receive", {"batch_id": batch, "card_type": card_type, "count": count})
            print(f"submitting {jobs} jobs for generated, obviously fake people (NIK region 99, name CONTOH)")
            accepted, refused = [], []
            payloads = [fake_job(rng, i, "KIA" if i % 5 == 0 else "KTP_EL") for i in range(1, jobs + 1)]
            # Two submissions the box must refuse: the same record again, and an impossible NIK.
            payloads.append(fake_job(rng, 9001, record_id=payloads[0]["record_id"], job_id="j-demo-dup"))
            payloads.append({**fake_job(rng, 9002), "nik": "9901011300000000"})
            for payload in payloads:
                answer = office.request("job/submit", payload)
                if answer["status"] == "ok":
                    accepted.append(payload["job_id"])
                else:
                    refused.append((payload["job_id"], answer["error"]["code"], answer["error"]["message"]))
            printed, failed, finals = set(), set(), {}
            while len(finals) < len(accepted):
                event = office.events.get(timeout=60)["job"]
                if event["state"] in ("printed", "failed", "in_doubt", "cancelled", "expired"):
                    finals[event["job_id"]] = event["state"]
                    (printed if event["state"] == "printed" else failed).add(event["job_id"])
                    sys.stdout.write(f"\rprinting {_bar(len(printed), len(accepted))}")
                    sys.stdout.flush()
            print()
            state = office.request("status/get", {})["data"]
        cards_dir = os.path.join(output_dir, "cards")
        with open(os.path.join(cards_dir, "cards.jsonl")) as handle:
            cards = [json.loads(line) for line in handle]
        elapsed = time.monotonic() - started
        print(f"\nprinted: {len(printed)}   refused: {len(refused)}   not printed: {len(failed)}   "
              f"time: {elapsed:.1f} s")
        for job_id, code, message in refused:
            print(f"  refused {job_id}: {code}: {message}")
        print(f"cards out of the printer: {sum(c['destination'] == 'output' for c in cards)} "
              f"(reject box: {sum(c['destination'] == 'reject' for c in cards)})")
        print("blanks left: " + ", ".join(f"{t} {b['in_stock']}" for t, b in state["blanks"].items()))
        print(f"card images: {cards_dir}/<seq>-front.png   log: {output_dir}/kartud.log")
        return 0 if len(printed) == len(accepted) == jobs else 1
    except (TimeoutError, RuntimeError, OSError) as error:
        print(f"\ndemo failed: {error}", file=sys.stderr)
        log_path = os.path.join(output_dir, "kartud.log")
        if os.path.exists(log_path):
            with open(log_path, errors="replace") as handle:
                print("last lines of the daemon's log:\n" + "".join(handle.readlines()[-10:]), file=sys.stderr)
        return 1
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(30)
            except Exception:
                daemon.kill()
        broker.stop()
