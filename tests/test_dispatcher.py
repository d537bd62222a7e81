"""The dispatcher's choice of a station, from retained availability, bridge and state documents on a real broker."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt
import pytest

from kartud.room.dispatcher import Dispatcher
from kartud.room.office import FleetClient


def state(mode: str = "idle", queued: int = 0, **stock: int) -> dict:
    """The parts of a contract state document the dispatcher reads."""
    return {"mode": mode, "queue": {"queued": queued, "in_doubt": 0},
            "blanks": {card_type: {"in_stock": n, "low": False} for card_type, n in stock.items()}}


def publish(port: int, retained: dict[str, str | dict]) -> None:
    """Publish retained messages as the stations (and their bridges) would, and wait for every PUBACK."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="stations", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, body in retained.items():
        payload = body if isinstance(body, str) else json.dumps(body)
        client.publish(f"kartud/{topic}", payload, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def fleet(broker):
    with FleetClient("127.0.0.1", broker.port) as fleet:
        yield fleet


FLEET = {
    "a/availability": "online", "a/state": state(queued=3, KTP_EL=50),
    "b/availability": "online", "b/state": state(queued=1, KTP_EL=10),
    "c/availability": "online", "c/state": state(queued=1, KTP_EL=40),
    "d/availability": "offline", "d/state": state(KTP_EL=90),                 # its Last Will
    "e/availability": "online", "e/bridge": "0", "e/state": state(KTP_EL=90),  # its bridge lost
    "f/availability": "online", "f/state": state(mode="paused", KTP_EL=90),
    "g/availability": "online", "g/state": state(mode="fault", KTP_EL=90),
    "h/availability": "online", "h/state": state(KIA=90),
    "i/availability": "online", "i/state": state(KTP_EL=0),
}


def test_the_shortest_queue_wins_then_the_most_blanks_and_only_where_the_job_can_print(fleet, broker):
    publish(broker.port, FLEET)
    fleet.wait_for(lambda f: len(f.states) == 9 and f.links.get("e") == "0")
    dispatcher = Dispatcher(fleet)
    assert dispatcher.choose("KTP_EL") == "c"          # queue 1 like b, and more blanks
    assert dispatcher.choose("KTP_EL", exclude=("c",)) == "b"
    assert dispatcher.choose("KIA") == "h"
    assert dispatcher.choose("KTP_EL", exclude=("a", "b", "c")) is None
    assert [fleet.reachable(s) for s in "abcde"] == [True, True, True, False, False]


def test_the_dispatchers_own_placements_count_before_the_state_documents_catch_up(fleet, broker):
    publish(broker.port, {"x/availability": "online", "x/state": state(KIA=2),
                          "y/availability": "online", "y/state": state(KIA=1)})
    fleet.wait_for(lambda f: {"x", "y"} <= set(f.states))
    dispatcher = Dispatcher(fleet, deliver_within_s=30)
    jobs = [{"job_id": f"j-{n}", "card_type": "KIA"} for n in range(4)]
    # x has the most blanks; then both have one job; then y's single blank is spoken for; x's two are then too.
    assert [dispatcher.submit(job) for job in jobs] == ["x", "y", "x", None]
    assert dispatcher.placements["j-3"].state == "waiting"
