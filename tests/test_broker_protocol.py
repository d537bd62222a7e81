"""Any broker: mqtt.protocol = auto | 5 | 3.1.1 against a real 3.1.1-only broker (amqtt) and a real mosquitto."""

from __future__ import annotations

import pytest
from amqtt_broker import AmqttBroker, VersionRefuser
from office_v311 import Office311
from print_room import ROOT, Room

pytestmark = pytest.mark.timeout(90)

SILENT = "does not speak MQTT 5: the broker left 2 MQTT 5 connections in a row unanswered"


@pytest.fixture
def amqtt(tmp_path):
    broker = AmqttBroker(str(tmp_path / "amqtt")).start()
    yield broker
    broker.stop()


def room_on(tmp_path, broker, protocol: str, name: str = "room") -> Room:
    room = Room(tmp_path / name, broker)
    room.overrides.update({"mqtt.protocol": f'"{protocol}"', "mqtt.connack_timeout_s": "1.0"})
    return room


def start_311(room: Room) -> Room:
    """Start the daemon with an MQTT 3.1.1 office watching, and wait for its ``online``."""
    room.office = room.office or Office311("127.0.0.1", room.broker.port, ROOT)
    with room.office.state_changed:
        room.office.availability = None
    room.start(wait_online=False)
    room.office.wait_availability("online", timeout=30)
    return room


def test_auto_falls_back_when_a_311_broker_stays_silent_and_prints(tmp_path, amqtt):
    room = room_on(tmp_path, amqtt, "auto")
    try:
        start_311(room)
        log = room.log()
        assert SILENT + ", 1 s each; trying MQTT 3.1.1" in log
        assert (f"speaking MQTT 3.1.1 to the broker at 127.0.0.1:{amqtt.port} (mqtt.protocol = auto: the broker left "
                "2 MQTT 5 connections in a row unanswered, 1 s each); kept until kartud restarts" in log)
        assert room.receive_blanks(10)["status"] == "ok"
        job = room.job()
        answer = room.submit(job)
        assert answer["status"] == "ok" and answer["data"]["state"] == "queued"
        room.wait_state(job["job_id"], "printed", timeout=30)
        assert [c["destination"] for c in room.cards()] == ["output"]
        state = room.office.wait_state(lambda s: s["today"]["printed"] == 1)
        link = state["office_link"]
        assert link["connected"] is True and link["protocol"] == "3.1.1"
        assert link["protocol_reason"].startswith("mqtt.protocol = auto: the broker left 2 MQTT 5 connections")
    finally:
        room.close()
