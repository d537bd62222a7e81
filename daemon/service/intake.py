"""Requests in, answers out: parse, refuse what is bad, commit submissions in groups, answer in arrival order.

Each request is handled inside a boundary (:mod:`kartud.service.boundary`): a defect it meets is
answered ``internal_error``, acknowledged and set aside, and a message that killed the process
while it was handled is recognised when it comes back (:mod:`kartud.ledger.quarantine`).
"""

from __future__ import annotations

import asyncio
import logging
from time import monotonic
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol, runtime_checkable

from ..ledger import quarantine as Q
from ..ledger.actors import acting_as, mqtt_actor
from ..ledger.station_facts import clock_behind
from ..rules.errors import CommandError
from ..rules.signing import check_fresh, check_signature
from ..rules.wire import response_topic_problem
from ..service.boundary import error_answer, fingerprint, internal_error, log_defect, readable_request_id
from ..service.boundary import with_request_id as _with_id
from ..service.commands import Commands, parse_request
from ..service.crashpoints import crash_point, defect_point
from ..service.heap import HeapReturn
from ..service.journal_ids import MSG_REQUEST_QUARANTINED
from ..service.mqtt_link import IncomingRequest, MqttLink
from ..service.submit_groups import EXPIRED, SubmissionGroups

if TYPE_CHECKING:
    from ..ledger.store import Store
    from ..rules.config import Config

log = logging.getLogger("kartud.intake")
MAX_GROUP = 500   # submissions committed in one transaction at most
MAX_GROUP_BYTES = 4 * 1024 * 1024   # and their payloads' bytes at most (one larger request still goes alone)
IGNORE = {}       # the "answer" to a message that gets none (an empty retained one): only its PUBACK
QUARANTINE_LIST = "quarantine/list"   # the control socket's own command (kartuctl quarantine); not over MQTT


@runtime_checkable
class IntakeHost(Protocol):
    """What the intake needs from the service (the :class:`~kartud.service.daemon.Daemon` is one)."""

    config: Config                  # the topic root, the payload limit and the signing rules
    store: Store
    commands: Commands              # the handlers the requests go to
    mqtt: MqttLink | None           # where MQTT answers go; set before :meth:`Intake.serve` runs

    async def db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a store call on the store's one thread."""


RETAINED = ("requests must not be retained; publish with retain off (a retained command would replay on every "
            "reconnect), and clear this one with an empty retained message")


class Intake(SubmissionGroups):
    """Answers requests for any transport. From MQTT they come in batches: consecutive ``job/submit``
    requests are validated one by one, then committed together in one transaction (group commit:
    one fsync for the lot), and every answer and PUBACK leaves in the order the requests came.

    Before a batch is handled its messages are marked in hand, in one transaction, and released once
    answered; submissions' marks go in the transaction that commits their jobs, their answers sent
    right after it (a death in between is answered from the ledger when the message comes back). A
    batch of plain submissions takes one store call: marks, validations, commit and release. A message
    that died with the process once is handled alone; twice, it is quarantined."""

    def __init__(self, host: IntakeHost):
        self.host = host
        self.config = host.config
        self._now = None        # the station's clock for judging a signed request's ts (None: not set)

    async def recover(self) -> None:
        """At start-up, before any request: count a death for each message the last process died holding."""
        try:
            died = await self.host.db(Q.count_deaths, self.host.store, float(self.config.mqtt.session_expiry_s))
        except CommandError:
            return                                          # the database is failing: its fault says so
        for mark in died:
            then = ("it will be quarantined if it comes back" if mark["deaths"] >= Q.DEATHS_BEFORE_QUARANTINE
                    else "if it comes back it is handled by itself")
            log.warning("kartud stopped while handling a %s request (%d bytes, sha256 %s; %d time(s) now); %s",
                        mark["command"][:64], mark["size"], mark["message_sha256"], mark["deaths"], then,
                        extra={"command": mark["command"][:64]})

    async def put_down(self) -> None:
        """At a clean stop, after :meth:`serve` was cancelled: what was in hand killed nothing."""
        try:
            await self.host.db(Q.put_down, self.host.store)
        except CommandError:
            pass

    async def serve(self, requests: "asyncio.Queue[IncomingRequest]") -> None:
        heap = HeapReturn(release=lambda: self.host.db(self.host.store.release_memory))
        heap.started()
        while True:
            batch = [await requests.get()]
            size = len(batch[0].payload)
            # Bounded by bytes too: 500 jobs with photo faces would hold hundreds of MiB at once.
            while len(batch) < MAX_GROUP and size < MAX_GROUP_BYTES and not requests.empty():
                batch.append(requests.get_nowait())
                size += len(batch[-1].payload)
            await self.serve_batch(batch)
            batch = None                                    # freed before the heap is trimmed
            heap.handled(size)
            if requests.empty():
                heap.drained()

    async def serve_batch(self, batch: list[IncomingRequest]) -> None:
        """Answer and acknowledge every request of ``batch``, in order. Never raises."""
        try:
            await self._serve_batch(batch)
        except Exception as exc:                           # a defect of the intake itself: never die of it
            left = [request for request in batch if not request.answered]
            for request in left:
                log_defect(exc, request.command, len(request.payload), self._sha(request), None)
                self._send(request, internal_error(self._request_id(request), None))
            try:
                await self.host.db(Q.release, self.host.store, [self._sha(r) for r in left])
            except Exception:
                pass

    async def _serve_batch(self, batch: list[IncomingRequest]) -> None:
        refusals = [self._triage(request) for request in batch]
        verdicts: dict[str, str] = {}
        if all(refusal is None and r.command == "job/submit" for r, refusal in zip(batch, refusals)):
            verdicts, answers = await self._submit_in_one_call(batch)
            if answers is not None:
                for request, answer in zip(batch, answers):
                    self._send(request, answer)
                return
        segment: list[tuple[IncomingRequest, dict[str, Any] | None]] = []
        for index, (request, refusal) in enumerate(zip(batch, refusals)):
            if refusal is None and self._sha(request) not in verdicts:
                # The marks of this request and the ones after it, in one transaction (up to one that died).
                verdicts.update(await self._take_in_hand([r for r, no in zip(batch[index:], refusals[index:])
                                                          if no is None]))
            verdict = verdicts.get(self._sha(request), Q.GO) if refusal is None else None
            if verdict == Q.QUARANTINE:
                refusal = await self._died_twice(request)
            if verdict == Q.ALONE:
                # It died with the process once: everything before it is answered first, then it goes alone.
                await self._run_segment(segment)
                segment = []
                await self._take_in_hand([request], alone=True)
                await self._run_segment([(request, None)])
                continue
            segment.append((request, refusal))
        await self._run_segment(segment)

    async def _run_segment(self, segment: list[tuple[IncomingRequest, dict[str, Any] | None]]) -> None:
        handled = [request for request, refusal in segment if refusal is None]
        released: set[str] = set()                          # marks the submissions' commit released already
        answers = iter(await self.answer_batch(handled, released))
        for request, refusal in segment:
            self._send(request, refusal if refusal is not None else next(answers))
        left = [self._sha(r) for r in handled if self._sha(r) not in released]
        if left:                                            # a batch of submissions only needs no call here
            try:
                await self.host.db(Q.release, self.host.store, left)
            except CommandError:
                pass                                        # the database is failing: its fault says so

    def _triage(self, request: IncomingRequest) -> dict[str, Any] | None:
        """The answer to a request refused before anything handles it (IGNORE: none), or None."""
        if request.retain and not request.payload:
            return IGNORE                                   # a retained request being cleared
        if request.response_topic is not None:
            problem = response_topic_problem(self.config.root, request.response_topic)
            if problem is not None:
                return error_answer("invalid_response_topic", problem, self._request_id(request))
        if request.retain:
            return error_answer("retained_request", RETAINED, self._request_id(request))
        if request.expires_at is not None and monotonic() > request.expires_at:
            # The sender's Message Expiry passed while the request waited here: it no longer wants it.
            return error_answer("expired", EXPIRED, self._request_id(request))
        return None

    async def _take_in_hand(self, requests: list[IncomingRequest], alone: bool = False) -> dict[str, str]:
        if not requests:
            return {}
        try:
            return await self.host.db(Q.take_in_hand, self.host.store,
                                      [(self._sha(r), r.command, len(r.payload)) for r in requests], alone)
        except CommandError:                                # no marks without a database; handled all the same
            return {self._sha(r): Q.GO for r in requests}

    async def _died_twice(self, request: IncomingRequest) -> dict[str, Any]:
        sha = self._sha(request)
        seq = None
        try:
            seq = await self.host.db(Q.quarantine, self.host.store, sha, request.command, request.payload,
                                     Q.DIED_TWICE)
        except CommandError:
            pass
        log.error("a %s request (%d bytes, sha256 %s) stopped kartud twice while it was handled: it is set aside%s "
                  "and answered internal_error, never handled again", request.command[:64], len(request.payload),
                  sha, f" (quarantine number {seq})" if seq is not None else "",
                  extra={"command": request.command[:64], "message_id": MSG_REQUEST_QUARANTINED})
        # Its request_id by pattern only: parsing this very message may be what killed the process.
        return internal_error(readable_request_id(request.payload, 0), seq, died=True)

    def _send(self, request: IncomingRequest, response: dict[str, Any]) -> None:
        """Publish the answer (none for IGNORE) where it belongs, then the PUBACK. Never raises."""
        try:
            if response is not IGNORE:
                topic = f"{self.config.root}/response/{request.command}"
                if request.response_topic is not None and \
                        response_topic_problem(self.config.root, request.response_topic) is None:
                    topic = request.response_topic
                self.host.mqtt.publish("", response, topic=topic, correlation_data=request.correlation_data)
            self.host.mqtt.ack(request)
        except Exception as exc:
            log.error("could not answer or acknowledge a %s request: %s", request.command[:64], type(exc).__name__)
        request.answered = True

    def _sha(self, request: IncomingRequest) -> str:
        if request.sha256 is None:
            request.sha256 = fingerprint(request.topic or f"{self.config.root}/request/{request.command}",
                                         request.payload)
        return request.sha256

    def _request_id(self, request: IncomingRequest) -> str | None:
        return readable_request_id(request.payload, self.config.mqtt.max_payload_bytes)

    # -- handling -------------------------------------------------------------------------------

    async def answer(self, command: str, raw: bytes, retained: bool = False, topic: str | None = None,
                     request: IncomingRequest | None = None) -> dict[str, Any]:
        """The full response to one raw request. Never raises.

        ``topic`` is the MQTT topic the request came on: requests from the network must carry the
        signature ``security.signing`` asks for; the local control socket passes None (its actor, the
        Unix user at the other end, is set by the socket).
        """
        if request is None and topic is not None:
            await self._read_clock()                        # not part of a batch that has read it
        request_id, payload, refusal, actor = self._prepare(raw, retained, topic, request)
        if refusal is not None:
            return refusal
        if request is None:       # the control socket: the boundary still needs to name the message
            request = IncomingRequest(command=command, payload=raw, retain=retained, response_topic=None,
                                      correlation_data=None, mid=0, qos=0, topic=f"control:{command}")
        work = self._handle(command, payload, local=topic is None)
        if actor is None:
            return await self._wrap(request_id, command, work, request)
        with acting_as(actor):
            return await self._wrap(request_id, command, work, request)

    async def _handle(self, command: str, payload: dict[str, Any], local: bool = False) -> dict[str, Any]:
        crash_point("while_handling", command)
        defect_point("while_handling", command)
        if local and command == QUARANTINE_LIST:
            return {"quarantined": await self.host.db(Q.quarantined, self.host.store.conn)}
        return await self.host.commands.handle(command, payload)

    def _prepare(self, raw: bytes, retained: bool, topic: str | None, request: IncomingRequest | None = None):
        """``(request_id, payload, None, actor)`` for a request that may be handled, else ``(request_id, None,
        refusal, None)``. ``actor`` names who sent it over MQTT: the trusted key that signed it, else
        ``mqtt`` and the client name it claims; None for the control socket (the socket has set it)."""
        payload = None
        try:
            if retained:
                raise CommandError("retained_request", RETAINED)
            payload = parse_request(raw, self.config.mqtt.max_payload_bytes)
            actor = None
            if topic is not None:
                security = self.config.security
                actor = check_signature(topic, payload, security.trusted_keys, security.signing)
                if actor is not None:                       # signed: usable for one effect only
                    check_fresh(payload, self._now, security.replay_window_days)
                else:
                    actor = mqtt_actor(request.client if request is not None else None)
            return readable_request_id(raw, 0, payload), payload, None, actor
        except CommandError as error:
            request_id = readable_request_id(raw, self.config.mqtt.max_payload_bytes, payload)
            return request_id, None, _with_id(request_id, {"status": "error", "error": error.as_error()}), None

    async def _read_clock(self) -> None:
        """The station's clock for judging signed requests' ``ts``, or None while it is not set (behind the
        ledger's newest row: ``clock_not_set``); read once per batch."""
        if self.config.security.signing == "off":
            return
        now = self.host.store.clock.now()
        try:
            behind = await self.host.db(clock_behind, self.host.store.conn, now)
        except CommandError:
            behind = False                                  # no database: the request will fail anyway
        self._now = None if behind else now

    async def _wrap(self, request_id: str | None, command: str, work: Awaitable[dict[str, Any]],
                    request: IncomingRequest) -> dict[str, Any]:
        try:
            body = {"status": "ok", "data": await work}
        except CommandError as error:
            body = {"status": "error", "error": error.as_error()}
        except Exception as exc:
            return await self._defect(exc, request, request_id)
        return _with_id(request_id, body)

    async def _defect(self, exc: Exception, request: IncomingRequest, request_id: str | None) -> dict[str, Any]:
        """The boundary: log the defect (never the content), set the message aside, answer internal_error."""
        sha, seq = self._sha(request), None
        try:
            seq = await self.host.db(Q.quarantine, self.host.store, sha, request.command, request.payload,
                                     type(exc).__name__)
        except Exception:
            pass                                            # the database is failing too: the log has it
        log_defect(exc, request.command, len(request.payload), sha, seq)
        return internal_error(request_id, seq)
