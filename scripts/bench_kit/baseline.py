"""Issue 18's baseline without the whole benchmark: idle RSS and CPU per card of ``kartud run``, simulated printer."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from floors import import_floors  # noqa: E402
from load import Jobs, Office  # noqa: E402
from machine import cpu_seconds, machine_facts, rss_mib  # noqa: E402
from phases import card_cost, idle, wait_done  # noqa: E402
from station import BASE, FAST_PRINTER, NotifySocket, STATION  # noqa: E402

from kartud.hw.printer.panels import PanelSettings  # noqa: E402
from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings  # noqa: E402
from kartud.hw.sim.head import HeadSettings  # noqa: E402
from kartud.hw.sim.output import CardOutput  # noqa: E402
from kartud.hw.sim.pty_server import PtyServer  # noqa: E402
from kartud.room.sim_room import PrivateBroker, sim_config  # noqa: E402
from kartud.rules.clock import Clock  # noqa: E402


def _serial_config(directory: str, port: int, pty_path: str) -> str:
    """The bench's config for a daemon whose printer is on ``pty_path``: no [sim], no printer.sim, no encoder."""
    path = sim_config(directory, port, station=STATION, **BASE, **FAST_PRINTER)
    with open(path, "rb") as handle:
        values = tomllib.load(handle)
    values.pop("sim")
    values["printer"].pop("sim")
    values["printer"].update(transport="serial", serial_port=pty_path, serial_baud=115200)
    values["encoder"]["backend"] = "none"
    with open(path, "w") as handle:
        for section, keys in values.items():
            handle.write(f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()) + "\n")
    return path


def daemon_alone(broker, directory: str, cards: int, settle_s: float) -> dict:
    """The daemon on a serial line to a simulator in this process (the head kept cool, nothing filling up):
    its resident size after ``settle_s``, then its CPU time for ``cards`` KIA cards with colour faces. No
    simulator runs in the daemon's process, so its CPU time is its own (the chip is not encoded: KIA)."""
    shutil.rmtree(directory, ignore_errors=True)          # a fresh database: the blanks' batch id is new to it
    os.makedirs(directory)
    sim = EvolisSim(Clock(), CardOutput(os.path.join(directory, "cards")), SimSettings(
        seconds_per_card=0.01, feeder_cards=cards + 10, hopper_capacity=100_000, chip_cards=False,
        panels=PanelSettings(), head=HeadSettings(rise_per_card_c=0.0)))
    server = PtyServer(sim, os.path.join(directory, "ttyEVOLIS")).start()
    config = _serial_config(directory, broker.port, server.link_path)
    notify = NotifySocket(os.path.join(directory, "notify.sock"))
    with open(os.path.join(directory, "daemon.log"), "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "kartud.service.cli", "run", "--config", config],
                                   stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NOTIFY_SOCKET": notify.path})
    office = None
    try:
        if not notify.ready.wait(30):
            raise RuntimeError(f"kartud did not become ready; see {directory}/daemon.log")
        time.sleep(settle_s)
        rss = rss_mib(process.pid)
        office = Office(broker.port)
        office.request("queue/pause", {"reason": "benchmark"})
        office.request("blanks/receive", {"batch_id": "B-BASE", "card_type": "KIA", "count": cards + 10})
        office.burst(Jobs(seed=5).make(cards, colour=True, card_type="KIA"))
        cpu_before, threads_before, began = cpu_seconds(process.pid), thread_cpu(process.pid), time.perf_counter()
        office.request("queue/resume", {})
        db = sqlite3.connect(f"file:{directory}/kartud.db?mode=ro", uri=True)
        wait_done(db, cards, began)
        cpu, wall = cpu_seconds(process.pid) - cpu_before, time.perf_counter() - began
        threads_after = thread_cpu(process.pid)
        printed = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'printed'").fetchone()[0]
        db.close()
    finally:
        if office is not None:
            office.close()
        process.terminate()
        process.wait(60)
        notify.close()
        server.stop()
    return {"rss_mib": rss, "cards": cards, "printed": printed, "left_the_printer": sim.output.seq,
            "cpu_s": cpu, "wall_s": wall, "ms_per_card": cpu / cards * 1e3,
            "threads_ms_per_card": dict(sorted(((tid, round((spent - threads_before.get(tid, 0.0)) / cards * 1e3, 2))
                                                for tid, spent in threads_after.items()), key=lambda item: -item[1]))}


def thread_cpu(pid: int) -> dict[int, float]:
    """User plus system CPU seconds of each of a process's threads, by thread id (py-spy names the ids: Python
    does not name the threads for the OS)."""
    spent = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:       # a thread that ended meanwhile
            continue
        spent[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench_kit/baseline.py", description=__doc__)
    parser.add_argument("--dir", default="/var/tmp/kartud-baseline", help="working folder (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="40 cards and a 5 s settle instead of 200 and 20 s")
    parser.add_argument("--alone", action="store_true",
                        help="only the daemon-alone phase (CPU per card over a pty, and each thread's share)")
    args = parser.parse_args()
    if args.alone:
        return _alone_only(args)
    os.makedirs(args.dir, exist_ok=True)
    results: dict = {"machine": machine_facts(args.dir), "cpus": sorted(os.sched_getaffinity(0)),
                     "load_average": os.getloadavg()}
    results["import_floors"] = import_floors()
    broker = PrivateBroker(os.path.join(args.dir, "broker")).start()
    try:
        results["idle"] = idle(broker, os.path.join(args.dir, "idle"), args.quick)
        results["card_in_process"] = card_cost(broker, os.path.join(args.dir, "card"), args.quick)
        results["card_daemon_alone"] = daemon_alone(broker, os.path.join(args.dir, "alone"), 40 if args.quick else 200,
                                                    5.0 if args.quick else 20.0)
    finally:
        broker.stop()
    results["load_average_after"] = os.getloadavg()
    results["card_in_process"].pop("profile", None)
    with open(os.path.join(args.dir, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2, default=str)
    idle_, card, alone = results["idle"], results["card_in_process"], results["card_daemon_alone"]
    print(f"cores {results['cpus']}, load {results['load_average']} -> {results['load_average_after']}")
    print("import floors: " + ", ".join(f"{name} {floor['rss_mib']:.1f} MiB"
                                        for name, floor in results["import_floors"].items()))
    print(f"idle RSS {idle_['rss_mib']:.1f} MiB after {idle_['settle_s']:.0f} s ({idle_['threads']} threads), "
          f"{idle_['rss_after_window_mib']:.1f} MiB after {idle_['window_s']:.0f} s more; idle CPU "
          f"{idle_['cpu_percent']:.3f} %")
    print(f"CPU per card, simulator in the process: {card['ms_per_card']:.1f} ms ({card['printed']}/{card['cards']} "
          f"printed, {card['wall_s']:.1f} s wall)")
    print(f"CPU per card, daemon alone (serial): {alone['ms_per_card']:.1f} ms ({alone['printed']}/{alone['cards']} "
          f"printed, {alone['left_the_printer']} left the printer, {alone['wall_s']:.1f} s wall); its RSS idle "
          f"{alone['rss_mib']:.1f} MiB")
    return 0


def _alone_only(args) -> int:
    """The daemon-alone phase by itself: quicker to run in alternation with another tree."""
    os.makedirs(args.dir, exist_ok=True)
    load = os.getloadavg()
    broker = PrivateBroker(os.path.join(args.dir, "broker")).start()
    try:
        alone = daemon_alone(broker, os.path.join(args.dir, "alone"), 40 if args.quick else 200,
                             5.0 if args.quick else 20.0)
    finally:
        broker.stop()
    print(f"cores {sorted(os.sched_getaffinity(0))}, load {load[0]:.1f} -> {os.getloadavg()[0]:.1f}: CPU per card, "
          f"daemon alone (serial): {alone['ms_per_card']:.1f} ms ({alone['printed']}/{alone['cards']} printed, "
          f"{alone['wall_s']:.1f} s wall); threads (ms a card): {alone['threads_ms_per_card']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
