"""The real unit files under a real systemd (PID 1 of private namespaces) with the simulated printer."""

from __future__ import annotations

from pathlib import Path

import pytest

from private_systemd import SIMULATED_BOX, PrivateSystemd, why_not

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(why_not() is not None, reason=f"a private systemd cannot run here: {why_not()}")

# The only changes to the shipped units, as drop-ins: output to files (no journald runs in there)
# and a watchdog short enough for a test.
KARTUD_DROP_IN = """[Service]
WatchdogSec=3
StandardOutput=append:/opt/test/daemon.log
StandardError=inherit
"""
FAULT_DROP_IN = """[Service]
StandardOutput=append:/opt/test/fault.log
StandardError=inherit
"""
CONFIG = """[station]
id = "test-01"
[store]
path = "{store}"
""" + SIMULATED_BOX          # no braces in it: safe under .format()
GOOD_CONFIG = CONFIG.format(store="/var/lib/kartud/kartud.db")
STATE = ("ActiveState", "SubState", "MainPID", "NRestarts", "Result", "ExecMainStatus")


@pytest.fixture
def system(tmp_path):
    systems = []

    def start(config: str = GOOD_CONFIG, extra_drop_in: str = "") -> PrivateSystemd:
        units = {name: (ROOT / "etc" / "systemd" / name).read_text()
                 for name in ("kartud.service", "kartud-fault.service")}
        units["kartud.service.d/test.conf"] = KARTUD_DROP_IN + extra_drop_in
        units["kartud-fault.service.d/test.conf"] = FAULT_DROP_IN
        system = PrivateSystemd(tmp_path / "system", units, config)
        systems.append(system)
        return system.start()

    yield start
    for system in systems:
        system.close()


def read(system: PrivateSystemd, name: str) -> str:
    path = system.dir / name
    return path.read_text(errors="replace") if path.exists() else ""


def test_the_unit_is_active_after_ready_restarted_by_the_watchdog_and_stops_cleanly(system):
    box = system()
    started = box.systemctl("start", "kartud.service")          # Type=notify: returns once READY=1 came
    assert started.returncode == 0, started.stderr + read(box, "daemon.log")
    first = box.show("kartud.service", *STATE)
    assert (first["ActiveState"], first["SubState"], first["NRestarts"]) == ("active", "running", "0")
    assert " ready: " in read(box, "daemon.log")

    # The sandbox let it make its state and runtime directories, as its own user.
    assert box.inside("stat", "-c", "%U:%G %a", "/var/lib/kartud", "/var/lib/kartud/kartud.db", "/run/kartud",
                      check=True).stdout.split("\n")[:3] == ["kartud:kartud 750", "kartud:kartud 640",
                                                              "kartud:kartud 750"]

    # A hung daemon: no pings, so systemd aborts it (Python dumps its stacks) and starts it again.
    box.systemctl("kill", "--kill-who=main", "--signal=SIGSTOP", "kartud.service", check=True)
    again = box.wait_until("kartud.service", lambda s: s["NRestarts"] == "1" and s["ActiveState"] == "active",
                           30, *STATE)
    assert again["MainPID"] != first["MainPID"]
    log = read(box, "daemon.log")
    assert "Fatal Python error: Aborted" in log and "most recent call first" in log
    assert log.count(" ready: ") == 2

    stopped = box.systemctl("stop", "kartud.service")
    assert stopped.returncode == 0, stopped.stderr
    final = box.show("kartud.service", *STATE)
    assert (final["ActiveState"], final["Result"], final["ExecMainStatus"]) == ("inactive", "success", "0")
    assert "kartud: stopped cleanly" in read(box, "daemon.log").splitlines()[-1]
    assert box.show("kartud-fault.service", "ActiveState")["ActiveState"] == "inactive"


def test_a_config_error_fails_at_once_and_the_lamp_unit_runs_until_kartud_starts_again(system):
    box = system(GOOD_CONFIG.replace("[station]\n", "[station]\nbogus = 1\n"))
    assert box.systemctl("start", "kartud.service").returncode != 0
    failed = box.show("kartud.service", *STATE)
    # Exit status 2 (RestartPreventExitStatus=2): no restarts, failed at once.
    assert (failed["ActiveState"], failed["ExecMainStatus"], failed["NRestarts"]) == ("failed", "2", "0")
    box.wait_until("kartud-fault.service", lambda s: s["ActiveState"] == "active", 20, "ActiveState")
    assert "station.bogus: unknown key" in read(box, "daemon.log")
    box.wait_until("kartud-fault.service", lambda s: "systemd gave up" in read(box, "fault.log"), 20, "ActiveState")

    box.inside("sh", "-c", "cat > /etc/kartud/kartud.toml", input=GOOD_CONFIG, check=True)
    box.systemctl("reset-failed", "kartud.service", check=True)
    assert box.systemctl("start", "kartud.service").returncode == 0
    assert box.show("kartud.service", "ActiveState")["ActiveState"] == "active"
    # Conflicts=: the lamp's pins are the daemon's again.
    assert box.show("kartud-fault.service", "ActiveState")["ActiveState"] == "inactive"
    assert box.systemctl("stop", "kartud.service").returncode == 0


def test_a_crash_loop_gives_up_after_five_starts_and_the_lamp_unit_takes_over(system):
    # A database on the read-only system: every start fails with status 1 and is restarted; a short
    # RestartSec= only makes the five starts quick.
    box = system(CONFIG.format(store="/usr/local/kartud-test.db"), "RestartSec=0.2\n")
    box.systemctl("start", "--no-block", "kartud.service", check=True)
    gave_up = box.wait_until("kartud.service", lambda s: s["ActiveState"] == "failed", 40, *STATE)
    # StartLimitBurst=5: five runs, then the next restart is refused and the unit stays failed.
    assert read(box, "daemon.log").count("cannot start: cannot open the database") == 5
    assert (gave_up["Result"], gave_up["ExecMainStatus"]) == ("exit-code", "1")
    box.wait_until("kartud-fault.service", lambda s: s["ActiveState"] == "active", 20, "ActiveState")
