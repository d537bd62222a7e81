"""The storm's office side: clients whose requests are resent until answered, and a record of what they were told."""

from __future__ import annotations

import base64
import json
import queue
import random
import threading
import time
from dataclasses import dataclass, field

from ..hw.sim.card import files_sha256
from .fake_people import fake_job, fake_person, render_front
from .office import OfficeClient
from .storm_plan import CLIENTS
from .storm_rig import ROOT

RESEND_AFTER_S = 3.0


class StormClient(OfficeClient):
    """An office client that hands out the answer queue of a request instead of waiting on it."""

    def answers(self, correlation: bytes) -> "queue.Queue[dict]":
        return self._waiting.setdefault(correlation, queue.Queue())


@dataclass
class Request:
    """One request as the office sent it, what it may be answered, and what it was answered."""

    op: int
    client: int
    command: str
    payload: dict | bytes
    expect: frozenset
    correlation: bytes = b""
    kills_at_send: int = 0
    sent_at: float = 0.0
    answer: dict | None = None
    answered: threading.Event = field(default_factory=threading.Event)

    @property
    def code(self) -> str | None:
        if self.answer is None:
            return None
        return "ok" if self.answer.get("status") == "ok" else self.answer.get("error", {}).get("code", "?")


@dataclass
class Told:
    """What the office was told, by answers and by job events."""

    acknowledged: dict[str, dict] = field(default_factory=dict)     # job_id -> the payload that got "ok"
    cancelled: set[str] = field(default_factory=set)
    printed: set[str] = field(default_factory=set)
    resolved: dict[str, str] = field(default_factory=dict)          # job_id -> outcome answered ok


class Office:
    """``CLIENTS`` office clients on the storm's broker. Requests go out without waiting; a courier thread
    collects answers and resends (same request_id, same Correlation Data) what is unanswered, as an office
    server must (the broker is a transport, not a store)."""

    def __init__(self, port: int, seed: int, kills):
        self.seed = seed
        self.kills = kills                      # callable: how many daemon deaths so far
        self.clients = [StormClient("127.0.0.1", port, ROOT, client_id=f"storm-office-{i}") for i in range(CLIENTS)]
        self.requests: list[Request] = []
        self.told = Told()
        self.sent_jobs: dict[str, dict] = {}    # every job payload sent, by chip sha: what a card in the output is
        self.problems: list[str] = []
        self._jobs: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        person_rng = random.Random(seed)
        self.front = render_front(fake_person(person_rng, 0), person_rng)
        self._courier = threading.Thread(target=self._run_courier, name="storm-courier", daemon=True)
        self._courier.start()

    # -- what is sent ------------------------------------------------------------------------------------

    def job(self, serial: int, record_of: int | None = None, priority: int = 0) -> dict:
        """Job ``serial``'s payload: made from the seed and serial the first time, the same one after that
        (a resubmission must carry the same content to be one)."""
        if serial not in self._jobs:
            rng = random.Random(f"{self.seed}/{serial}")
            payload = fake_job(rng, serial, "KTP_EL", job_id=f"storm-{self.seed}-{serial:05d}",
                               record_id=f"PRR-9999-{record_of or serial:06d}", front_png=self.front)
            self._jobs[serial] = {**payload, "priority": priority}
        return dict(self._jobs[serial])

    def send(self, op: int, client: int, command: str, payload: dict | bytes, expect) -> Request:
        if isinstance(payload, dict):
            payload = {**payload, "request_id": f"storm-{self.seed}-{op}-{len(self.requests)}"}
            if command == "job/submit" and "chip" in payload:
                self.sent_jobs[chip_sha(payload)] = payload
        request = Request(op, client, command, payload, frozenset(expect), kills_at_send=self.kills())
        with self._lock:
            self.requests.append(request)
            self._publish(request)
        return request

    def _publish(self, request: Request) -> None:
        client = self.clients[request.client]
        request.correlation = client.send(request.command, request.payload, correlation=request.correlation or None,
                                          wait=False)
        request.sent_at = time.monotonic()

    def wait(self, request: Request, timeout: float) -> dict | None:
        """The answer of ``request`` once the courier has it, or None after ``timeout`` seconds."""
        request.answered.wait(timeout)
        return request.answer

    def unanswered(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.answer is None]

    # -- what comes back ---------------------------------------------------------------------------------

    def _run_courier(self) -> None:
        while not self._stop.wait(0.05):
            with self._lock:
                for request in self.requests:
                    if request.answer is not None:
                        continue
                    try:
                        answer = self.clients[request.client].answers(request.correlation).get_nowait()
                    except queue.Empty:
                        if time.monotonic() - request.sent_at > RESEND_AFTER_S:
                            self._publish(request)
                        continue
                    request.answer = answer
                    self._judge(request)
                    request.answered.set()
                for client in self.clients:
                    self._read_events(client)

    def _judge(self, request: Request) -> None:
        code = request.code
        died_meanwhile = self.kills() > request.kills_at_send
        if code not in request.expect and not (code == "internal_error" and died_meanwhile) \
                and not self._shares_with_another_job(request, code):
            self.problems.append(f"op {request.op}: {request.command} was answered {code!r}, expected one of "
                                 f"{sorted(request.expect)}: {json.dumps(request.answer)[:300]}")
        if code != "ok" or not isinstance(request.payload, dict):
            return
        job_id = request.payload.get("job_id")
        if request.command == "job/submit":
            self.told.acknowledged[job_id] = request.payload
        elif request.command == "job/cancel":
            self.told.cancelled.add(job_id)
        elif request.command == "job/resolve":
            self.told.resolved[job_id] = request.payload["outcome"]
        state = (request.answer.get("data") or {}).get("state")
        if state == "printed" and job_id:
            self.told.printed.add(job_id)

    def _shares_with_another_job(self, request: Request, code: str | None) -> bool:
        """A refusal that another job sent by then explains: requests from different clients may be handled in
        either order, so a later job with the same record (or NIK) can be first."""
        field = {"duplicate_record": "record_id", "duplicate_nik": "nik"}.get(code or "")
        if request.command != "job/submit" or field is None or not isinstance(request.payload, dict):
            return False
        mine = request.payload
        return any(p[field] == mine.get(field) and p["job_id"] != mine.get("job_id") for p in self.sent_jobs.values())

    def _read_events(self, client: StormClient) -> None:
        while True:
            try:
                event = client.events.get_nowait()
            except queue.Empty:
                return
            view = event.get("job") or {}
            if view.get("state") == "printed":
                self.told.printed.add(view.get("job_id"))
            elif view.get("state") == "cancelled":
                self.told.cancelled.add(view.get("job_id"))

    def close(self) -> None:
        self._stop.set()
        self._courier.join(5)
        for client in self.clients:
            client.close()


def chip_sha(job: dict) -> str:
    """The simulator's ``chip_files_sha256`` of the card a job's chip files make."""
    return files_sha256({int(fid, 16): base64.b64decode(data) for fid, data in job["chip"]["files"].items()})
