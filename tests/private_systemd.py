"""A real systemd as PID 1 of private namespaces, seeing only the units a test gives it (rig.md's recipe, fenced)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path

SYSTEMD = "/lib/systemd/systemd"

# Runs as PID 1 of the new namespaces, then becomes systemd. Everything systemd or a service could
# write goes to private mounts: tmpfs over /dev, /tmp, /var/tmp, /run and /var/{lib,log,cache}, an
# overlay over /etc. Only the units in the test's folder exist for it (SYSTEMD_UNIT_PATH), and no
# generator runs: a system manager that booted the host's own units would run systemd-tmpfiles on
# the host's /tmp (seen: it empties it).
INNER = r"""
set -eu
test_dir=$1 python=$2 site=$3
shift 3
mount -t tmpfs -o mode=0755 kartud-test /run      # first: even mount(8)'s lock files stay in here
mount -t tmpfs -o mode=0755 kartud-test /opt
mkdir -p /opt/test /opt/kartud/bin /opt/host-dev
mount --bind "$test_dir" /opt/test
# The venv and a plain copy of the packages, kept reachable under /opt before /tmp is hidden: CI may
# clone the project under /tmp, where an editable install's paths would vanish with it.
mkdir -p /opt/kartud/site /opt/kartud/lib
mount --bind "$site" /opt/kartud/site
cp -r /opt/test/src/kartud /opt/kartud/lib/kartud
chmod -R a+rX /opt/kartud/lib
mount --bind /dev /opt/host-dev
mount -t tmpfs -o mode=0755 kartud-test /dev
for node in null zero full random urandom tty; do
    touch "/dev/$node"
    mount --bind "/opt/host-dev/$node" "/dev/$node"
done
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
ln -s /proc/self/fd /dev/fd
mount -t tmpfs -o mode=1777 kartud-test /dev/shm
for dir in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 kartud-test "$dir"; done
for dir in /var/lib /var/log /var/cache; do mount -t tmpfs -o mode=0755 kartud-test "$dir"; done
mkdir -p /opt/test/etc-upper /opt/test/etc-work
mount -t overlay overlay -o lowerdir=/etc,upperdir=/opt/test/etc-upper,workdir=/opt/test/etc-work /etc
mount -t cgroup2 cgroup2 /sys/fs/cgroup

# What scripts/install does on a box, for this namespace only.
groupadd --system kartud
useradd --system --gid kartud --home-dir /var/lib/kartud --no-create-home --shell /usr/sbin/nologin kartud
install -d -m 0750 -g kartud /etc/kartud
install -m 0640 -g kartud /opt/test/kartud.toml /etc/kartud/kartud.toml
# The venv's console script, on a Python outside /root and /home (the unit's ProtectHome= hides those).
printf '#!%s\nimport site, sys\nsys.path.insert(0, "/opt/kartud/lib")\nsite.addsitedir("/opt/kartud/site")\nfrom kartud.service.cli import main\nsys.exit(main())\n' \
    "$python" > /opt/kartud/bin/kartud
chmod 0755 /opt/kartud/bin/kartud
/opt/kartud/bin/kartud make-key --config /etc/kartud/kartud.toml >/dev/null    # the station's NIK key
# On a box the key is root's alone and the unit's LoadCredential= hands kartud a copy. systemd 252 in
# these namespaces hands every unit an empty credentials directory (seen even for a root unit), so
# here the file itself is kartud's, and kartud reads store.key_file when no credential came.
chown kartud /etc/kartud/nik.key

export container=kartud-test SYSTEMD_UNIT_PATH=/opt/test/units
export SYSTEMD_GENERATOR_PATH=/opt/test/none SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/opt/test/none
exec "$@" >>/opt/test/systemd.log 2>&1
"""

# The least a unit with default dependencies needs to be startable.
STUB_UNITS = {
    "kartud-test.target": "[Unit]\nDescription=the private test system\n",
    "sysinit.target": "[Unit]\nDescription=System Initialization (stub)\n",
    "basic.target": "[Unit]\nDescription=Basic System (stub)\n",
    "shutdown.target": "[Unit]\nDescription=Shutdown (stub)\nDefaultDependencies=no\n",
    "system.slice": "[Unit]\nDescription=System Slice\nDefaultDependencies=no\n",
}


def sandbox_python() -> str | None:
    """A Python of our version outside /root and /home, for the unit's ProtectHome= to leave visible."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (os.path.realpath(sys.executable), f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if os.access(candidate, os.X_OK) and not candidate.startswith(("/root/", "/home/")):
            return candidate
    return None


def cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[fields.index("-") + 1] == "cgroup2":
                return fields[4]
    return None


def why_not() -> str | None:
    """Why a private systemd cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (namespaces, mounts)"
    for tool in ("unshare", "nsenter", "groupadd", "useradd"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.access(SYSTEMD, os.X_OK):
        return f"{SYSTEMD} is not installed (Debian package systemd)"
    if cgroup2_mount() is None:
        return "no cgroup2 hierarchy is mounted"
    if sandbox_python() is None:
        return "no Python of this version outside /root and /home (the unit's ProtectHome= would hide it)"
    site = sysconfig.get_paths()["purelib"]
    if site.startswith(("/root/", "/home/")):
        return f"the project's venv ({site}) is under /root or /home, which the unit's ProtectHome= hides"
    return None


# The simulated devices a kartud.toml inside the private systemd uses: the sections every such config shares.
SIMULATED_BOX = """[printer]
transport = "sim"
[printer.sim]
output_dir = "/var/lib/kartud/cards"
[encoder]
backend = "sim"
[indicator]
backend = "mock"
"""


class PrivateSystemd:
    """systemd as PID 1 of new pid/mount/net/uts/ipc/cgroup namespaces, with the given units only.

    Its cgroup is a fresh one under the host's cgroup2 hierarchy, removed by :meth:`close`.
    """

    def __init__(self, directory: Path, units: dict[str, str], config: str):
        self.dir = directory
        (directory / "units").mkdir(parents=True)
        (directory / "none").mkdir()
        for name, text in {**STUB_UNITS, **units}.items():
            path = directory / "units" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (directory / "kartud.toml").write_text(config)
        # The packages as an installed kartud lays them out (kartud/ from daemon/, kartud/hw from hw/).
        repo = Path(__file__).resolve().parent.parent
        package = directory / "src" / "kartud"
        shutil.copytree(repo / "daemon", package, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(repo / "hw", package / "hw", ignore=shutil.ignore_patterns("__pycache__"))
        self.cgroup = Path(cgroup2_mount()) / f"kartud-test-{uuid.uuid4().hex[:12]}"
        self.launcher: subprocess.Popen | None = None
        self.pid1: int | None = None

    def start(self, timeout: float = 20.0) -> "PrivateSystemd":
        self.cgroup.mkdir()
        unshare = ["unshare", "--pid", "--fork", "--mount", "--propagation", "private", "--uts", "--net", "--ipc",
                   "--cgroup", "--mount-proc", "sh", "-c", INNER, "inner", str(self.dir), sandbox_python(),
                   sysconfig.get_paths()["purelib"], SYSTEMD, "--unit=kartud-test.target", "--log-level=info",
                   "--log-target=console"]
        # Into the fresh cgroup first, so that the new cgroup namespace is rooted there.
        self.launcher = subprocess.Popen(["sh", "-c", f'echo $$ > {self.cgroup}/cgroup.procs && exec "$@"', "launch",
                                          *unshare], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         # mount(8)'s bookkeeping in our folder, not in the machine's /run/mount
                                         env={**os.environ, "LIBMOUNT_UTAB": str(self.dir / "utab")})
        deadline = time.monotonic() + timeout
        while self.pid1 is None:
            children = Path(f"/proc/{self.launcher.pid}/task/{self.launcher.pid}/children")
            pids = children.read_text().split() if children.exists() else []
            if pids and Path(f"/proc/{pids[0]}/comm").read_text().strip() == "systemd":
                self.pid1 = int(pids[0])
            elif self.launcher.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private systemd did not start; its log:\n{self.log()}")
            else:
                time.sleep(0.02)
        # Its private bus socket appears once it listens; /proc/PID/root shows the namespace's own /run.
        private_bus = Path(f"/proc/{self.pid1}/root/run/systemd/private")
        while not private_bus.exists():
            if self.launcher.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private systemd did not come up; its log:\n{self.log()}")
            time.sleep(0.02)
        state = self.systemctl("is-system-running", "--wait", timeout=timeout).stdout.strip()
        if state != "running":
            raise RuntimeError(f"the private systemd is {state!r}; its log:\n{self.log()}")
        return self

    def systemctl(self, *args: str, timeout: float = 30.0, check: bool = False) -> subprocess.CompletedProcess:
        """``systemctl`` inside the namespaces (its socket is under the private /run)."""
        return self.inside("systemctl", *args, timeout=timeout, check=check)

    def inside(self, *argv: str, timeout: float = 30.0, check: bool = False,
               input: str | None = None) -> subprocess.CompletedProcess:
        """A command in the namespaces' mounts and pids, as root."""
        return subprocess.run(["nsenter", "-t", str(self.pid1), "-m", "-p", *argv], capture_output=True, text=True,
                              timeout=timeout, check=check, input=input)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        out = self.systemctl("show", unit, *(f"--property={p}" for p in properties), check=True).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_until(self, unit: str, predicate, timeout: float, *properties: str) -> dict[str, str]:
        """Poll ``systemctl show`` until ``predicate(properties)`` holds (nothing else reports across the
        namespace boundary without D-Bus)."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.show(unit, *properties)
            if predicate(shown):
                return shown
            if time.monotonic() > deadline:
                raise TimeoutError(f"{unit}: {shown}; systemd's log:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        path = self.dir / "systemd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        if self.pid1 is not None:
            os.kill(self.pid1, signal.SIGKILL)       # PID 1 of a pid namespace takes everything in it along
        if self.launcher is not None:
            self.launcher.wait(10)
        deadline = time.monotonic() + 10
        while self.cgroup.exists():
            try:
                for directory in sorted(self.cgroup.rglob("*/"), key=lambda p: len(p.parts), reverse=True):
                    if directory.is_dir():
                        directory.rmdir()
                self.cgroup.rmdir()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)                      # the killed processes are still being reaped
