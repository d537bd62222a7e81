"""No task of the loop dies silently: a dead part stops the daemon through the clean shutdown (status 1), the log
names it, and the health watchdog stops feeding systemd and says which part is dead."""

from __future__ import annotations

import asyncio
import logging

import pytest

from store_fixtures import key_file

from kartud.room.sim_room import free_port
from kartud.rules.config import from_dict
from kartud.service.daemon import Daemon
from kartud.service.watchdog import HealthWatchdog
from virtual_loop import run_virtual


class Boom(RuntimeError):
    pass


@pytest.fixture
def daemon(tmp_path, manual_clock):
    config = from_dict({
        "station": {"id": "s-1"}, "store": {"path": str(tmp_path / "kartud.db"), "key_file": key_file(tmp_path)},
        "control": {"socket": str(tmp_path / "control.sock")},
        "mqtt": {"port": free_port(), "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},   # nobody listens there
        "printer": {"transport": "sim", "sim": {"output_dir": str(tmp_path / "cards")}},
        "encoder": {"backend": "sim"}, "indicator": {"backend": "none"}})
    return Daemon(config, manual_clock)


def run(daemon: Daemon, timeout: float = 30.0) -> int:
    return asyncio.run(asyncio.wait_for(daemon.run(), timeout))


async def dies() -> None:
    await asyncio.sleep(0)
    raise Boom("a defect")


async def returns() -> None:
    await asyncio.sleep(0)


@pytest.mark.parametrize("part, attribute", [("the press", "_press_loop"), ("the state publisher", "_publish_state"),
                                             ("the device poll", "_poll_devices_forever")])
@pytest.mark.parametrize("end", [dies, returns], ids=["raises", "returns"])
def test_a_dead_task_stops_the_daemon_cleanly_with_status_1_naming_it(daemon, caplog, part, attribute, end):
    caplog.set_level(logging.INFO, logger="kartud")
    setattr(daemon, attribute, end)
    assert run(daemon) == 1
    messages = [r.getMessage() for r in caplog.records]
    dead = [m for m in messages if m.startswith(f"{part} ")]
    assert dead and "kartud stops to be restarted" in dead[0], messages
    assert messages[-1] == "stopped after an internal error"
    assert daemon.store.conn is None                        # the store was closed: the clean shutdown ran


def test_a_dead_intake_stops_the_daemon_too(daemon, caplog):
    caplog.set_level(logging.INFO, logger="kartud")

    class DeadIntake:
        async def recover(self):
            pass

        async def serve(self, requests):
            raise Boom("a defect")

        async def put_down(self):
            pass

    daemon.intake = DeadIntake()
    assert run(daemon) == 1
    assert any(r.getMessage().startswith("the intake ") for r in caplog.records)


def test_a_stop_while_the_daemon_is_healthy_is_status_0(daemon, caplog):
    caplog.set_level(logging.INFO, logger="kartud")

    async def stop_soon():
        await asyncio.sleep(0.2)
        daemon.request_stop()
        await asyncio.Event().wait()

    daemon._poll_devices_forever = stop_soon             # a part that is still running when the stop comes
    assert run(daemon) == 0
    assert caplog.records[-1].getMessage() == "stopped cleanly"


def test_the_watchdog_says_which_part_is_dead_while_the_daemon_finishes_its_card(daemon, caplog, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")         # a ping every 0.05 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    caplog.set_level(logging.INFO, logger="kartud")

    async def press_finishing_a_card():
        # The press is mid-card when the device poll dies: the stop waits for it. Meanwhile the watchdog ticks.
        while not any("not feeding systemd's watchdog" in r.getMessage() for r in caplog.records):
            await asyncio.sleep(0.01)

    daemon._poll_devices_forever = dies
    daemon._press_loop = press_finishing_a_card
    assert run(daemon, timeout=20) == 1
    unhealthy = next(r.getMessage() for r in caplog.records if "not feeding systemd's watchdog" in r.getMessage())
    assert "the device poll is not running" in unhealthy


def test_a_watchdog_with_a_dead_part_does_not_ping():
    pings: list[str] = []
    running = {"the press": True}

    async def scenario():
        watchdog = HealthWatchdog(5.0, notify=pings.append, clock=asyncio.get_running_loop().time,
                                  alive={"the press": lambda: running["the press"]})
        assert await watchdog.tick() == []
        running["the press"] = False
        assert await watchdog.tick() == ["the press is not running"]
        return watchdog

    watchdog = run_virtual(scenario())
    assert pings == ["WATCHDOG=1"] and watchdog.problems == ["the press is not running"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_mqtt_links_thread_dying_stops_the_daemon_too(daemon, broker, caplog, monkeypatch):
    # paho ends its network thread when one of its callbacks raises: the box would hear nothing again.
    caplog.set_level(logging.INFO, logger="kartud")
    daemon.config.mqtt.port = broker.port

    def raises(*args):
        raise Boom("a defect in a paho callback")

    monkeypatch.setattr("kartud.service.mqtt_link.MqttLink._on_connect", raises)
    assert run(daemon, timeout=20) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("the MQTT link ended by itself; kartud stops") for m in messages), messages
    assert messages[-1] == "stopped after an internal error"
