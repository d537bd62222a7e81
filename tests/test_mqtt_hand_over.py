"""Paho's thread hands requests to the loop in batches: one wake-up for all that arrived while the loop was busy."""

from __future__ import annotations

import asyncio
import threading

import paho.mqtt.client as mqtt

from kartud.rules.config import from_dict
from kartud.service.mqtt_link import MqttLink

COUNT = 200


def _config(port: int):
    return from_dict({"station": {"id": "handover-01", "card_types": ["KIA"]},
                      "mqtt": {"host": "127.0.0.1", "port": port}})


def test_requests_that_arrive_while_the_loop_is_busy_wake_it_once_and_keep_their_order(broker):
    loop = asyncio.new_event_loop()
    arrived: list[bytes] = []
    connected, all_received = threading.Event(), threading.Event()
    link = MqttLink(_config(broker.port), loop, lambda request: arrived.append(request.payload),
                    lambda: connected.set())
    wake_ups = []
    schedule = loop.call_soon_threadsafe

    def counting(callback, *args):
        wake_ups.append(getattr(callback, "__name__", ""))
        return schedule(callback, *args)

    loop.call_soon_threadsafe = counting
    on_message = link._on_message

    def received(client, userdata, message):            # still on paho's thread: counts what paho has read
        on_message(client, userdata, message)
        if len(link._inbox) == COUNT:
            all_received.set()

    link.client.on_message = received
    office = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="office-handover", protocol=mqtt.MQTTv5)
    try:
        link.start()
        loop.run_until_complete(asyncio.wait_for(loop.run_in_executor(None, connected.wait, 20), 25))
        assert link.connected
        office.connect("127.0.0.1", broker.port)
        office.loop_start()
        payloads = [f'{{"n": {n}}}'.encode() for n in range(COUNT)]

        async def busy_while_they_arrive():
            for payload in payloads:
                office.publish(f"{link.root}/request/job/submit", payload, qos=1)
            # The loop is held (as by a long commit) until paho's thread has read every one of them.
            assert all_received.wait(30), f"paho read {len(link._inbox)} of {COUNT}"
            before = wake_ups.count("_hand_over")
            while len(arrived) < COUNT:
                await asyncio.sleep(0)
            return before

        before = loop.run_until_complete(asyncio.wait_for(busy_while_they_arrive(), 60))
        assert before == 1 and wake_ups.count("_hand_over") == 1   # one wake-up for all of them
        assert arrived == payloads                                   # every one, in the order sent
    finally:
        office.loop_stop()
        office.disconnect()
        link.stop()
        loop.close()
