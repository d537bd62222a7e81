"""What the benchmarks ran on, and how to read a process's memory and CPU time from /proc."""

from __future__ import annotations

import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_facts(bench_dir: str) -> dict[str, str]:
    """nproc, uname -m, CPU, memory, kernel, the file system under the bench folder, and the versions."""
    cpu = "?"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        memory_kib = int(handle.readline().split()[1])
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    version = subprocess.run([mosquitto, "-h"], capture_output=True, text=True).stdout.splitlines()
    fs = subprocess.run(["df", "-T", bench_dir], capture_output=True, text=True).stdout.splitlines()[-1].split()
    import paho.mqtt

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "uname -m": platform.machine(),
        "cpu": cpu,
        "memory": f"{memory_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "disk": f"{fs[1]} on {fs[0]} ({bench_dir})",
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "mosquitto": re.sub(r"^mosquitto version ", "", version[0]) if version else "?",
        "paho-mqtt": paho.mqtt.__version__,
    }


def rss_mib(pid: int) -> float:
    """Resident memory of a process now."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
