"""An in-process kartud for the fuzz tests: the real Daemon's handlers on a real SQLite file, put back to one seeded state before every request.

The daemon is not run (no broker, no press): requests go straight to its intake, as the MQTT
link and the control socket hand them over, on one event loop of the test's own.

    station = Station(tmp_path / "off", signing="off")
    answers = station.ask([("status/get", b"{}")])
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sqlite3
from datetime import datetime, timezone

from card_faces import SMALL_FRONT
from fuzz_jobs import SEEDED_JOBS
from fuzz_requests import KEY
from store_fixtures import key_file

from kartud.room.fake_people import fake_job
from kartud.rules import jobs as J
from kartud.rules.clock import ManualClock
from kartud.ledger.personal import personal_path
from kartud.rules.config import from_dict
from kartud.rules.signing import public_key_base64
from kartud.service.daemon import Daemon
from kartud.service.mqtt_link import IncomingRequest

START = datetime(2026, 11, 27, 1, 0, tzinfo=timezone.utc)     # 08:00 in Jakarta, a Friday
STATION_ID = "fuzz-01"
ROOT = f"kartud/{STATION_ID}"
MAX_PAYLOAD = 65536
SEEDED_STOCK = 40                                               # blanks of each type after the seeded jobs took theirs
# What a request may change; a refused one changes none of it. (Not the audit trail, the remembered
# answers or the quarantine: those may record a refusal.)
STATE_QUERIES = {
    "jobs": "SELECT job_id, record_id, state, step, reason, attempts, priority, not_after, resolution FROM jobs"
            " ORDER BY seq",
    "printed_records": "SELECT * FROM printed_records ORDER BY record_id",
    "blank_stock": "SELECT * FROM blank_stock ORDER BY card_type",
    "blank_batches": "SELECT batch_id, card_type, count, remaining FROM blank_batches ORDER BY batch_id",
    "blank_movements": "SELECT COUNT(*), MAX(id) FROM blank_movements",
    "blank_adjustments": "SELECT COUNT(*) FROM blank_adjustments",
    "cleanings": "SELECT COUNT(*) FROM cleanings",
    "settings": "SELECT key, value FROM settings WHERE key = 'paused_reason'",
}


def snapshot(conn: sqlite3.Connection) -> dict:
    """Everything a request may change, read through ``conn``."""
    return {name: conn.execute(sql).fetchall() for name, sql in STATE_QUERIES.items()}


def seed(store) -> None:
    """Blanks of both types and one job in each state a command can meet, all of fake people."""
    store.receive_blanks("B-KTP_EL", "KTP_EL", SEEDED_STOCK + 3, None)
    store.receive_blanks("B-KIA", "KIA", SEEDED_STOCK + 3, None)
    rng = random.Random(99)
    for serial, (job_id, state) in enumerate(SEEDED_JOBS.items(), start=1):
        card_type = "KIA" if serial % 2 == 0 else "KTP_EL"
        payload = fake_job(rng, serial, card_type, job_id=job_id, record_id=f"PRR-9999-{serial:06d}",
                           front_png=SMALL_FRONT)
        job = J.validate_submission(payload, ["KTP_EL", "KIA"])
        store.submit_job(job)
        if state in ("in_doubt", "printed"):
            store.claim(job_id)
            if state == "printed":
                store.mark_printed(job_id, None)
            else:
                store.mark_in_doubt(job_id, "interrupted")
        elif state == "cancelled":
            store.cancel_job(job_id)


class Station:
    """A Daemon (signing ``off``, ``optional`` or ``required``, trusting :data:`fuzz_requests.KEY`) whose
    database is a fresh copy of one seeded file before each :meth:`ask`."""

    def __init__(self, directory, signing: str):
        self.dir = str(directory)
        self.signing = signing
        os.makedirs(self.dir, exist_ok=True)
        self.db_path = os.path.join(self.dir, "kartud.db")
        security = {"signing": signing, "trusted_keys": [public_key_base64(KEY)] if signing != "off" else []}
        self.config = from_dict({
            "station": {"id": STATION_ID, "card_types": ["KTP_EL", "KIA"]},
            "store": {"path": self.db_path, "key_file": key_file(self.dir)},
            "mqtt": {"max_payload_bytes": MAX_PAYLOAD}, "security": security,
            "printer": {"transport": "sim", "sim": {"output_dir": os.path.join(self.dir, "cards")}},
            "encoder": {"backend": "sim"}, "indicator": {"backend": "none"}})
        self.clock = ManualClock(START)
        self.daemon = Daemon(self.config, self.clock)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._open())
        self._store(seed)
        self._store(lambda store: store.close())
        for path in (self.db_path, personal_path(self.db_path)):      # the ledger and the personal-data file
            shutil.copyfile(path, path + ".seeded")
        self._store(lambda store: store.open())
        self.serial = 0

    async def _open(self) -> None:
        # What Daemon.run() makes before it takes requests: the events its handlers set, then the store.
        for name in ("_wake", "_stopping", "_state_dirty"):
            setattr(self.daemon, name, asyncio.Event())
        self.daemon._requests = asyncio.Queue()
        await self.daemon.db(self.daemon.store.open)

    def _store(self, fn):
        return self.loop.run_until_complete(self.daemon.db(fn, self.daemon.store))

    def reset(self) -> None:
        """Back to the seeded state: the same file content as before the first request."""
        self._store(lambda store: store.close())
        for path in (self.db_path, personal_path(self.db_path)):
            for suffix in ("-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
            shutil.copyfile(path + ".seeded", path)
        self._store(lambda store: store.open())
        self.daemon.paused_reason = None

    def state(self) -> dict:
        return self._store(lambda store: snapshot(store.conn))

    def ask(self, requests: list[tuple[str, bytes]], via: str = "mqtt") -> list:
        """The answers to ``(command, payload)`` requests, as the MQTT intake gives them (one batch,
        submissions committed together) or, ``via="control"``, one by one as the control socket does."""
        if via == "control":
            return [self.loop.run_until_complete(self.daemon.intake.answer(command, payload))
                    for command, payload in requests]
        batch = []
        for command, payload in requests:
            self.serial += 1
            batch.append(IncomingRequest(command=command, payload=payload, retain=False, response_topic=None,
                                         correlation_data=b"c-%d" % self.serial, mid=self.serial, qos=1,
                                         topic=f"{ROOT}/request/{command}"))
        return self.loop.run_until_complete(self.daemon.intake.answer_batch(batch))

    def close(self) -> None:
        self._store(lambda store: store.close())
        for pool in (self.daemon._store_thread, self.daemon._cpu_thread, self.daemon._device_thread):
            pool.shutdown()
        self.daemon.printer.close()
        self.loop.close()


def wire_bytes(answer) -> bytes:
    """The bytes MQTT would carry for ``answer`` (the daemon's own encoder), read back to the same answer."""
    from kartud.rules.wire import json_bytes

    body = json_bytes(answer)
    assert json.loads(body) == answer, "the answer does not read back as itself"
    return body
