"""Answers reach someone (contract 1.1): the Response Topic rule, never onto a request topic, refusals echo the
request_id, cleared retained requests get no answer, and a publish the broker refuses is logged."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from print_room import ROOT, Room

from kartud.room.sim_room import PrivateBroker


class Listener:
    """A client that records every message under ``{root}/#`` as (topic, body, retain)."""

    def __init__(self, port: int):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.changed = threading.Condition()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{ROOT}/#", qos=1)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, client, userdata, message) -> None:
        with self.changed:
            self.messages.append((message.topic, message.payload, bool(message.retain)))
            self.changed.notify_all()

    def publish(self, command: str, body: bytes, retain: bool = False, response_topic: str | None = None) -> None:
        properties = Properties(PacketTypes.PUBLISH)
        if response_topic is not None:
            properties.ResponseTopic = response_topic
            properties.CorrelationData = b"c-1"
        self.client.publish(f"{ROOT}/request/{command}", body, qos=1, retain=retain,
                            properties=properties).wait_for_publish(10)

    def answer_on(self, topic: str, request_id: str, timeout: float = 10.0) -> dict:
        """The first answer on ``topic`` that echoes ``request_id``."""
        def found():
            for where, body, _ in self.messages:
                if where == topic:
                    answer = json.loads(body)
                    if answer.get("request_id") == request_id:
                        return answer
            return None

        with self.changed:
            if not self.changed.wait_for(found, timeout):
                raise TimeoutError(f"no answer to {request_id} on {topic}; saw {[m[0] for m in self.messages]}")
            return found()

    def on(self, prefix: str) -> list[tuple[str, bytes, bool]]:
        with self.changed:
            return [m for m in self.messages if m[0].startswith(prefix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def listener(room):
    room.start()
    listener = Listener(room.broker.port)
    yield listener
    listener.close()


def paused(room) -> bool:
    return room.query("SELECT value FROM settings WHERE key = 'paused_reason'") != []


def test_an_answer_onto_its_own_request_topic_is_refused_and_nothing_is_done(room, listener):
    # The reproduction: on an open broker the box answered onto request/queue/pause and paused itself.
    listener.publish("queue/pause", b'{"request_id": "r-loop"}', response_topic=f"{ROOT}/request/queue/pause")
    answer = listener.answer_on(f"{ROOT}/response/queue/pause", "r-loop")
    assert answer["status"] == "error" and answer["error"]["code"] == "invalid_response_topic"
    assert f"{ROOT}/response/" in answer["error"]["message"]
    listener.publish("status/get", b'{"request_id": "r-after"}')
    assert listener.answer_on(f"{ROOT}/response/status/get", "r-after")["data"]["mode"] != "paused"
    assert not paused(room)
    assert [m[0] for m in listener.on(f"{ROOT}/request/")] == [f"{ROOT}/request/queue/pause",
                                                              f"{ROOT}/request/status/get"]


@pytest.mark.parametrize("response_topic", ["office/replies", f"{ROOT}/state", f"{ROOT}/response",
                                            "kartud/another-station/response/x", f"{ROOT}/response/"])
def test_a_response_topic_outside_the_boxs_response_tree_is_refused(room, listener, response_topic):
    listener.publish("queue/pause", b'{"request_id": "r-1"}', response_topic=response_topic)
    answer = listener.answer_on(f"{ROOT}/response/queue/pause", "r-1")
    assert answer["error"]["code"] == "invalid_response_topic"
    assert not paused(room)
    assert room.process.poll() is None


def test_a_response_topic_under_the_boxs_response_tree_is_used(room, listener):
    listener.publish("status/get", b'{"request_id": "r-2"}', response_topic=f"{ROOT}/response/_reply/office-1")
    assert listener.answer_on(f"{ROOT}/response/_reply/office-1", "r-2")["status"] == "ok"


def test_clearing_a_retained_request_is_not_answered_and_a_retained_one_echoes_its_id(room, listener):
    listener.publish("queue/pause", b'{"request_id": "r-ret"}', retain=True)
    answer = listener.answer_on(f"{ROOT}/response/queue/pause", "r-ret")
    assert answer["error"]["code"] == "retained_request"
    listener.publish("queue/pause", b"", retain=True)             # how a retained message is cleared
    listener.publish("queue/pause", b"", retain=False)            # not retained: an empty request, refused
    listener.publish("status/get", b'{"request_id": "r-mark"}')   # answered after any answer to the above
    listener.answer_on(f"{ROOT}/response/status/get", "r-mark")
    answers = [json.loads(body) for _, body, _ in listener.on(f"{ROOT}/response/queue/pause")]
    assert [a["error"]["code"] for a in answers] == ["retained_request", "invalid_payload"]
    assert not paused(room)


def test_a_payload_too_large_echoes_its_request_id_when_readable(room):
    room.overrides["mqtt.max_payload_bytes"] = "2000"
    room.start()
    answer = room.office.request("job/submit", json.dumps({"request_id": "r-big", "front_png": "A" * 3000}).encode())
    assert answer["error"]["code"] == "payload_too_large" and answer["request_id"] == "r-big"
    assert room.office.request("status/get", {"request_id": "r-next"})["request_id"] == "r-next"


def test_an_expired_request_echoes_its_request_id(room):
    room.start()
    blocker = sqlite3.connect(room.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")                       # holds the daemon on the first request
    first = room.office.send("status/get", {"request_id": "r-first"})
    late = room.office.send("status/get", {"request_id": "r-late"}, expiry_s=1)
    time.sleep(1.5)                                          # the passing of time is what is under test
    blocker.execute("ROLLBACK")
    blocker.close()
    assert room.office.wait_answer(first)["request_id"] == "r-first"
    answer = room.office.wait_answer(late)
    assert answer["error"]["code"] == "expired" and answer["request_id"] == "r-late"


ACL_WITHOUT_RESPONSES = f"""topic readwrite {ROOT}/request/#
topic read kartud/#
topic write {ROOT}/availability
topic write {ROOT}/state
topic write {ROOT}/event/#
"""


def test_a_publish_the_broker_refuses_is_logged_with_its_topic_and_reason_code(tmp_path):
    broker = PrivateBroker(str(tmp_path / "broker"))
    (tmp_path / "broker" / "kartud.acl").write_text(ACL_WITHOUT_RESPONSES)
    with open(broker.conf, "a") as conf:
        conf.write(f"acl_file {tmp_path / 'broker' / 'kartud.acl'}\n")
    broker.start()
    room = Room(tmp_path / "room", broker)
    os.makedirs(room.dir)
    try:
        room.start()
        room.office.send("status/get", {"request_id": "r-1"})
        room.wait_log(f"the broker refused our publish to {room.office.reply_topic}")
        line = next(line for line in room.log().splitlines() if "refused our publish" in line)
        assert "0x87" in line and "Not authorized" in line
        assert room.process.poll() is None
    finally:
        room.close()
        broker.stop()
