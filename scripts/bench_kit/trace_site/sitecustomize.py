"""Bench only (``rt_segments.py`` puts this folder on the daemon's PYTHONPATH): time stamps of a request's way.

With ``KARTUD_TRACE=<file>`` the daemon notes, by ``time.perf_counter`` (the office's clock too, on one
machine), when paho's thread receives a request, when the loop takes it over, when each store call is
asked for, starts and ends on the store's thread and is back on the loop, when the answer is handed to
paho, and every garbage collection; the notes are written to the file when the daemon exits.
"""

import atexit
import gc
import json
import os
import threading
import time

if os.environ.get("KARTUD_TRACE"):
    from kartud.service import daemon, intake, mqtt_link

    notes: list = []
    note = notes.append
    clock = time.perf_counter

    def _gc(phase, info):
        note((clock(), f"gc_{phase}", info["generation"], threading.get_ident()))

    gc.callbacks.append(_gc)

    def _wrap_sync(cls, name, label, key=None):
        original = getattr(cls, name)

        def traced(self, *args, **kwargs):
            note((clock(), label, key(*args) if key else 0, 0))
            return original(self, *args, **kwargs)
        setattr(cls, name, traced)

    _wrap_sync(mqtt_link.MqttLink, "_on_message", "received", key=lambda client, userdata, message: message.mid)
    _wrap_sync(mqtt_link.MqttLink, "_hand_over", "on_loop")
    _wrap_sync(intake.Intake, "_send", "answered", key=lambda request, response: request.mid)
    store_call = daemon.Daemon.db

    async def db(self, fn, *args):
        name = getattr(fn, "__name__", "?")

        def on_store_thread(*inner):
            note((clock(), "store_began:" + name, 0, 0))
            try:
                return fn(*inner)
            finally:
                note((clock(), "store_ended:" + name, 0, 0))
        note((clock(), "asked:" + name, 0, 0))
        try:
            return await store_call(self, on_store_thread, *args)
        finally:
            note((clock(), "back:" + name, 0, 0))

    daemon.Daemon.db = db

    @atexit.register
    def _write() -> None:
        with open(os.environ["KARTUD_TRACE"], "w") as handle:
            json.dump(notes, handle)
