"""The office's dispatcher: sends each job to one station of a fleet, and re-routes only what an offline station never acknowledged.

Which station (``Dispatcher.choose``): one that is reachable (availability ``online``, its bridge not
lost), whose state document lists the job's card type, is not in ``fault`` or ``paused`` mode, and has
more blanks of that type in stock than jobs of that type waiting there; of those, the one with the
shortest queue (its state's ``queue.queued`` or the jobs this dispatcher has placed there and not yet
seen finish, whichever is more), then the most blanks, then the name.

When a station's Last Will arrives (or its bridge's), its jobs split in two:

- **acknowledged** (it answered ``ok``, or sent a job event for the job): the job is in that station's
  database and prints there when it can; it stays, and is never sent anywhere else;
- **never acknowledged**: every ``job/submit`` carries an MQTT 5 Message Expiry of
  ``deliver_within_s``, after which the broker drops the request, queued or in flight, so the old
  station can no longer receive it. Once that time, and the broker's own second of slack
  (``BROKER_EXPIRY_SLACK_S``), has passed the job goes to another station.

What this cannot see: a station that committed a job and lost its link (or died) in the milliseconds
before its answer left. docs/fleet.md says how the dispatcher finds that case (``late``) and what an
operator does about it.

Used as::

    with FleetClient("office-broker", 8883, tls=...) as fleet:
        dispatcher = Dispatcher(fleet)
        dispatcher.submit(job)                  # returns the chosen station, or None while none fits
        dispatcher.tick()                       # call every second or so: re-routes and retries

or from a shell, with one job (a ``job/submit`` payload) per line of a file::

    python -m kartud.room.dispatcher --host office-broker --port 8883 --tls ca.crt office.crt office.key jobs.jsonl
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time
from dataclasses import dataclass, field

from .office import FleetClient

# A station in one of these modes takes no job from the dispatcher (the contract's state document).
UNAVAILABLE_MODES = ("fault", "paused")
FINISHED = ("printed", "failed", "cancelled", "expired")
# A job in one of these states is still waiting at its station (sent, or known to be queued there).
WAITING_THERE = ("sent", "acknowledged", "queued")
# mosquitto (2.0.11 here) keeps a Message Expiry in whole seconds of its wall clock (expires at
# floor(now) + interval, dropped only once its clock is past that) and in the last second still sends
# the message, then with no expiry at all (a remaining 0 is no property): a request can reach a station
# up to one second after its interval. Re-routing waits that second and half of one for the broker's
# own delays (tests/test_dispatcher.py shows the late delivery on the real broker).
BROKER_EXPIRY_SLACK_S = 1.5


@dataclass
class Placement:
    """Where one job is, as the dispatcher knows it."""

    job: dict
    station: str | None = None
    state: str = "waiting"           # waiting (no station fits yet), sent, acknowledged, refused, or a job state
    sent_at: float = 0.0
    correlation: bytes = b""
    attempt: int = 0
    stations: list[str] = field(default_factory=list)    # every station it was sent to, in order
    error: dict | None = None

    @property
    def card_type(self) -> str:
        return self.job["card_type"]


class Dispatcher:
    """Places jobs on a fleet's stations through a :class:`FleetClient`; thread-safe (answers and events
    arrive on paho's thread)."""

    def __init__(self, fleet: FleetClient, deliver_within_s: float = 60.0, clock=time.monotonic):
        self.fleet = fleet
        self.deliver_within_s = deliver_within_s
        self.expiry_s = max(1, round(deliver_within_s))    # what the broker is told, in whole seconds
        # After this long unanswered, no broker can still hand the request to its station.
        self.undeliverable_after_s = self.expiry_s + BROKER_EXPIRY_SLACK_S
        self.clock = clock
        self.placements: dict[str, Placement] = {}
        self.rerouted: list[tuple[str, str, str]] = []   # (job_id, from station, to station)
        self.late: list[tuple[str, str]] = []            # (job_id, station): heard of a job where it no longer is
        self._sent: dict[bytes, str] = {}                # correlation -> job_id, for every request not yet answered
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        fleet.on_answer = self._on_answer
        fleet.on_job_event = self._on_job_event

    # -- choosing ------------------------------------------------------------------------------------
    def _outstanding(self) -> tuple[collections.Counter, collections.Counter]:
        """Per station, the dispatcher's jobs there not yet started; and per (station, card type), likewise."""
        jobs, by_type = collections.Counter(), collections.Counter()
        for p in self.placements.values():
            if p.state in WAITING_THERE:
                jobs[p.station] += 1
                by_type[p.station, p.card_type] += 1
        return jobs, by_type

    def load(self, station: str) -> int:
        """Jobs waiting at ``station``: its own count, or the dispatcher's placements there not yet started."""
        queued = ((self.fleet.states.get(station) or {}).get("queue") or {}).get("queued", 0)
        return max(queued, self._outstanding()[0][station])

    def choose(self, card_type: str, exclude: tuple[str, ...] = ()) -> str | None:
        """The station a job of ``card_type`` goes to now, or None when none fits."""
        with self.lock:
            ours, ours_of_type = self._outstanding()
            ranked = []
            for station, state in self.fleet.states.items():
                if station in exclude or not self.fleet.reachable(station):
                    continue
                if state.get("mode") in UNAVAILABLE_MODES or state.get("daemon") == "not_running":
                    continue
                stock = ((state.get("blanks") or {}).get(card_type) or {}).get("in_stock")
                if stock is None or stock <= ours_of_type[station, card_type]:
                    continue
                queued = (state.get("queue") or {}).get("queued", 0)
                ranked.append((max(queued, ours[station]), -stock, station))
            return min(ranked)[2] if ranked else None

    # -- sending -------------------------------------------------------------------------------------
    def submit(self, job: dict, station: str | None = None) -> str | None:
        """Place a new job (a contract ``job/submit`` payload); returns the station it was sent to, or None
        when no station fits now (``tick`` tries again). ``station`` pins the job there (an operator's
        choice) if that station is reachable and lists the card type; a re-route ignores the pin."""
        with self.lock:
            placement = self.placements.setdefault(job["job_id"], Placement(job=job))
            if station is not None and self.fleet.reachable(station) and job["card_type"] in (
                    self.fleet.states.get(station) or {}).get("blanks", {}):
                self._send(placement, station)
                return station
            return self._place(placement)

    def _place(self, placement: Placement, exclude: tuple[str, ...] = ()) -> str | None:
        station = self.choose(placement.card_type, exclude)
        if station is None:
            placement.state = "waiting"
            return None
        self._send(placement, station)
        return station

    def _send(self, placement: Placement, station: str) -> None:
        placement.attempt += 1
        placement.station, placement.state, placement.sent_at = station, "sent", self.clock()
        if station not in placement.stations:
            placement.stations.append(station)
        payload = {**placement.job, "request_id": f"dispatch-{placement.job['job_id']}-{placement.attempt}"}
        placement.correlation = self.fleet.send(station, "job/submit", payload, expiry_s=self.expiry_s,
                                                wait=False)
        self._sent[placement.correlation] = placement.job["job_id"]
        return station

    # -- hearing -------------------------------------------------------------------------------------
    def _on_answer(self, station: str, correlation: bytes, body: dict) -> None:
        with self.changed:
            placement = self.placements.get(self._sent.pop(correlation, None) or "")
            self.fleet.forget(correlation)
            if placement is None:
                return
            code = None if body.get("status") == "ok" else (body.get("error") or {}).get("code")
            if code == "expired":
                pass        # read after its Message Expiry and not acted on: the tick sends it again if need be
            elif placement.station != station:
                if code is None:
                    self.late.append((placement.job["job_id"], station))   # acted on where the job no longer is
            elif code is None:
                if placement.state in ("sent", "waiting"):
                    placement.state = "acknowledged"
            elif placement.state in ("sent", "waiting"):
                # A refusal counts only while nothing else is known: a resent request may be refused after
                # the first one was acted on (its events tell).
                placement.error = body.get("error")
                if code == "unsupported_card_type":
                    self._place(placement, exclude=tuple(placement.stations))
                else:
                    placement.state = "refused"
            self.changed.notify_all()

    def _on_job_event(self, station: str, job: dict) -> None:
        with self.changed:
            placement = self.placements.get(job.get("job_id"))
            if placement is None:
                return
            if placement.station != station:
                # The station we moved this job away from has it after all: the case docs/fleet.md describes.
                self.late.append((job["job_id"], station))
            else:
                placement.state = job.get("state", placement.state)
            self.changed.notify_all()

    # -- the clock -----------------------------------------------------------------------------------
    def tick(self) -> None:
        """Re-route what an unreachable station never acknowledged once the broker can no longer deliver it
        there, and place jobs that waited for a station."""
        with self.changed:
            now = self.clock()
            for placement in self.placements.values():
                if placement.state == "waiting":
                    self._place(placement)
                elif placement.state != "sent" or now < placement.sent_at + self.undeliverable_after_s:
                    continue
                elif self.fleet.reachable(placement.station):
                    # Up but silent past the expiry (the broker dropped the request): the same station again,
                    # which is always safe: the same job_id there is the same job. Earlier attempts stay
                    # expected: any answer to any of them counts, and one from a station the job has left
                    # is the case docs/fleet.md calls late.
                    self._send(placement, placement.station)
                else:
                    old = placement.station
                    if self._place(placement, exclude=(old,)) is not None:
                        self.rerouted.append((placement.job["job_id"], old, placement.station))
            self.changed.notify_all()

    def wait_until(self, predicate, timeout: float, tick_every_s: float = 0.2) -> None:
        """Tick until ``predicate(self)`` holds; wakes on every answer and job event."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the dispatcher's placements never matched within {timeout} s: "
                                       f"{self.summary()}")
                self.changed.wait(min(tick_every_s, remaining))
                self.tick()

    def summary(self) -> str:
        """How many jobs are in each state, and a few job ids of each unfinished one (for errors and logs)."""
        with self.lock:
            by_state: dict[str, list[str]] = {}
            for job_id, placement in self.placements.items():
                error = (placement.error or {}).get("code")
                by_state.setdefault(placement.state, []).append(f"{job_id}@{placement.station}"
                                                                + (f" {error}" if error else ""))
            return "; ".join(f"{state}: {len(ids)}" + ("" if state in FINISHED else f" ({', '.join(ids[:5])})")
                             for state, ids in sorted(by_state.items())) + f"; late: {self.late[:5]}"

    def count(self, state: str) -> int:
        with self.lock:
            return sum(1 for p in self.placements.values() if p.state == state)


def read_jobs(path: str) -> list[dict]:
    """The jobs in a JSON-lines file; a line that is not a job object raises ValueError naming the line."""
    jobs = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                job = json.loads(line)
            except ValueError:
                raise ValueError(f"{path}:{number}: not JSON; write one job/submit object per line") from None
            if not isinstance(job, dict) or not isinstance(job.get("job_id"), str) or "card_type" not in job:
                raise ValueError(f"{path}:{number}: a job needs at least job_id and card_type")
            jobs.append(job)
    return jobs


def main(argv: list[str] | None = None) -> int:
    """Place every job of a file on the fleet, wait until each is acknowledged somewhere, and say where."""
    parser = argparse.ArgumentParser(prog="python -m kartud.room.dispatcher", description=main.__doc__)
    parser.add_argument("jobs", help="a file with one job/submit payload (JSON) per line")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default="kartud", help="mqtt.topic_prefix of the stations")
    parser.add_argument("--tls", nargs=3, metavar=("CA", "CERT", "KEY"), help="CA file, client certificate and key")
    parser.add_argument("--deliver-within", type=float, default=60.0, metavar="SECONDS",
                        help="Message Expiry of each job/submit; re-routing waits this long (default 60)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                        help="give up waiting for acknowledgements after this long (default 600)")
    args = parser.parse_args(argv)
    try:
        jobs = read_jobs(args.jobs)
        fleet = FleetClient(args.host, args.port, prefix=args.prefix, tls=tuple(args.tls) if args.tls else None)
    except (OSError, ValueError, TimeoutError) as error:
        print(f"dispatcher: {error}", file=sys.stderr)
        return 2
    with fleet:
        try:                                     # the retained states arrive just after subscribing
            fleet.wait_for(lambda f: f.states, timeout=10.0)
        except TimeoutError:
            pass                                 # no station yet: the jobs wait, and each tick tries again
        dispatcher = Dispatcher(fleet, deliver_within_s=args.deliver_within)
        for job in jobs:
            dispatcher.submit(job)
        settled = lambda d: all(p.state not in ("waiting", "sent") for p in d.placements.values())  # noqa: E731
        try:
            dispatcher.wait_until(settled, timeout=args.timeout, tick_every_s=1.0)
        except TimeoutError:
            pass
        for placement in dispatcher.placements.values():
            where = placement.station or "-"
            code = (placement.error or {}).get("code", "")
            print(f"{placement.job['job_id']}\t{where}\t{placement.state}\t{code}".rstrip())
    return 0 if settled(dispatcher) else 1


if __name__ == "__main__":
    sys.exit(main())
