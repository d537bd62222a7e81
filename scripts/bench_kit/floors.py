"""The floors each figure is held against, measured in the same run on the same disk: durable commits, imports."""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import time

# What the idle daemon is compared with: the interpreter, then the libraries it is built on.
IMPORT_SETS = {
    "bare interpreter": "pass",
    "+ paho, sqlite3, json, asyncio": "import paho.mqtt.client, sqlite3, json, asyncio",
    "+ pyserial, pyusb, pyscard, gpiozero, Pillow":
        "import paho.mqtt.client, sqlite3, json, asyncio, serial, usb, smartcard, gpiozero, PIL.Image",
}
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would report the benchmark's own size.
REPORT_RSS = ("import sys\nfor line in open('/proc/self/status'):\n"
              "    if line.startswith('VmHWM:'): sys.stdout.write(line.split()[1])")


def commit_floor(directory: str, seconds: float = 3.0) -> dict[str, float]:
    """Single-row commits with ``synchronous=FULL`` in WAL mode, as fast as the disk allows: the floor that
    intake (one durable commit before each answer, or one per group) is measured against."""
    path = os.path.join(directory, "floor.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    body = os.urandom(1024)
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (body) VALUES (?)", (body,))
        conn.execute("COMMIT")
        count += 1
    elapsed = time.perf_counter() - began
    conn.close()
    return {"commits_per_s": count / elapsed, "us_per_commit": elapsed / count * 1e6}


def import_floors(runs: int = 3) -> dict[str, dict[str, float]]:
    """Peak RSS and wall time of a Python that imports each library set and exits (median of ``runs``)."""
    out = {}
    for name, statement in IMPORT_SETS.items():
        rss, walls = [], []
        for _ in range(runs):
            began = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", f"{statement}\n{REPORT_RSS}"], capture_output=True,
                                  text=True, check=True)
            walls.append(time.perf_counter() - began)
            rss.append(int(done.stdout) / 1024)
        out[name] = {"rss_mib": statistics.median(rss), "start_s": statistics.median(walls)}
    return out
