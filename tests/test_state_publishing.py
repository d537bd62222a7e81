"""The retained state document: at most two a second however busy, and again at least every 60 s of clock time."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from print_room import ROOT


class StateWatcher:
    """Counts every state document the broker delivers, with when it arrived."""

    def __init__(self, port: int):
        self.arrivals: list[float] = []
        self.changed = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="state-watcher", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{ROOT}/state", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        if not message.retain:                         # the retained copy on subscribe is not a publish
            with self.changed:
                self.arrivals.append(time.monotonic())
                self.changed.notify_all()

    def wait_count(self, count: int, timeout: float) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.arrivals) >= count, timeout), self.arrivals

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_state_is_coalesced_to_two_a_second_and_resent_every_minute_of_clock_time(room):
    room.overrides["sim.clock_speed"] = "100"           # a clock minute is 0.6 real seconds
    room.start()
    watcher = StateWatcher(room.broker.port)
    try:
        started = time.monotonic()
        for _ in range(60):                             # sixty changes in a burst
            room.office.send("job/submit", room.job(), wait=False)
        watcher.wait_count(4, timeout=10)
        burst_window = [t for t in watcher.arrivals if t - started < 2.0]
        assert len(burst_window) <= 5                   # 2 a second (and one at the edge), not 60
        gaps = [b - a for a, b in zip(watcher.arrivals, watcher.arrivals[1:])]
        assert min(gaps) >= 0.45

        quiet_from = len(watcher.arrivals)
        watcher.wait_count(quiet_from + 3, timeout=10)  # nothing changes, and still it comes again
    finally:
        watcher.close()
