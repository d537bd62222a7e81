"""Requests in, answers out: parse, refuse what is bad, commit submissions in groups, answer in arrival order."""

from __future__ import annotations

import asyncio
import logging
from time import monotonic
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol, runtime_checkable

from ..service.commands import Commands, parse_request
from ..service.crashpoints import crash_point
from ..rules.errors import CommandError
from ..service.mqtt_link import IncomingRequest, MqttLink
from ..rules.signing import check_signature

if TYPE_CHECKING:
    from ..ledger.store import Store
    from ..rules.config import Config

log = logging.getLogger("kartud.intake")
MAX_GROUP = 500   # submissions committed in one transaction at most


@runtime_checkable
class IntakeHost(Protocol):
    """What the intake needs from the service (the :class:`~kartud.service.daemon.Daemon` is one)."""

    config: Config                  # the topic root, the payload limit and the signing rules
    store: Store
    commands: Commands              # the handlers the requests go to
    mqtt: MqttLink | None           # where MQTT answers go; set before :meth:`Intake.serve` runs

    async def db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a store call on the store's one thread."""


def _error(code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "error": {"code": code, "message": message}}


EXPIRED = _error("expired", "the request's message expiry passed before the box could handle it; nothing was done")
INTERNAL = _error("internal_error", "the box failed to handle this request; it is logged")


class Intake:
    """Answers requests for any transport. From MQTT they come in batches: consecutive ``job/submit``
    requests are validated one by one, then committed together in one transaction (group commit:
    one fsync for the lot), and every answer and PUBACK leaves in the order the requests came."""

    def __init__(self, host: IntakeHost):
        self.host = host
        self.config = host.config

    async def serve(self, requests: "asyncio.Queue[IncomingRequest]") -> None:
        while True:
            batch = [await requests.get()]
            while len(batch) < MAX_GROUP and not requests.empty():
                batch.append(requests.get_nowait())
            for request, response in zip(batch, await self.answer_batch(batch)):
                topic = request.response_topic or f"{self.config.root}/response/{request.command}"
                self.host.mqtt.publish("", response, topic=topic, correlation_data=request.correlation_data)
                self.host.mqtt.ack(request)

    async def answer_batch(self, batch: list[IncomingRequest]) -> list[dict[str, Any]]:
        responses: list[dict[str, Any] | None] = [None] * len(batch)
        pending: list[tuple[int, str | None, asyncio.Future]] = []   # submissions waiting for the group commit

        async def commit_pending() -> None:
            if not pending:
                return
            prepared = []                                   # (index, request_id, job) of the valid ones
            for index, request_id, validation in pending:
                try:
                    prepared.append((index, request_id, await validation))
                except CommandError as error:
                    responses[index] = _with_id(request_id, {"status": "error", "error": error.as_error()})
                except Exception:
                    log.exception("internal error while validating a submission")
                    responses[index] = _with_id(request_id, dict(INTERNAL))
            pending.clear()
            if not prepared:
                return
            jobs = [job for _, _, job in prepared]
            try:
                results = await self.host.db(self.host.store.submit_jobs, jobs)
            except CommandError as error:                  # the database failed: every one is refused
                results = [error] * len(jobs)
            crash_point("after_submit_commit")              # committed, not yet answered nor acknowledged
            for (index, request_id, job), result in zip(prepared, results):
                responses[index] = await self._wrap(request_id, "job/submit",
                                                    self.host.commands.finish_submit(job, result))

        for index, request in enumerate(batch):
            if request.expires_at is not None and monotonic() > request.expires_at:
                # The sender's Message Expiry passed while the request waited here: it no longer wants it.
                responses[index] = dict(EXPIRED)
                continue
            topic = f"{self.config.root}/request/{request.command}"
            if request.command == "job/submit":
                request_id, payload, refusal = self._prepare(request.payload, request.retain, topic)
                if refusal is not None:
                    responses[index] = refusal
                    continue
                # Validation (decoding the images) runs on the CPU threads while the next ones are read.
                validation = asyncio.ensure_future(self.host.commands.prepare_submit(payload))
                pending.append((index, request_id, validation))
                continue
            await commit_pending()                          # keep the order: earlier submissions first
            responses[index] = await self.answer(request.command, request.payload, request.retain, topic)
        await commit_pending()
        return responses

    async def answer(self, command: str, raw: bytes, retained: bool = False, topic: str | None = None) -> dict[str, Any]:
        """The full response to one raw request. Never raises.

        ``topic`` is the MQTT topic the request came on: requests from the network must carry the
        signature ``security.signing`` asks for; the local control socket passes None.
        """
        request_id, payload, refusal = self._prepare(raw, retained, topic)
        if refusal is not None:
            return refusal
        return await self._wrap(request_id, command, self.host.commands.handle(command, payload))

    def _prepare(self, raw: bytes, retained: bool, topic: str | None):
        """``(request_id, payload, None)`` for a request that may be handled, else ``(request_id, None, refusal)``."""
        request_id = None
        try:
            if retained:
                raise CommandError("retained_request", "requests must not be retained; publish with retain off "
                                                       "(a retained command would replay on every reconnect)")
            payload = parse_request(raw, self.config.mqtt.max_payload_bytes)
            if isinstance(payload.get("request_id"), str):
                request_id = payload["request_id"][:128]
            if topic is not None:
                check_signature(topic, payload, self.config.security.trusted_keys, self.config.security.signing)
            return request_id, payload, None
        except CommandError as error:
            return request_id, None, _with_id(request_id, {"status": "error", "error": error.as_error()})

    async def _wrap(self, request_id: str | None, command: str, work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        try:
            body = {"status": "ok", "data": await work}
        except CommandError as error:
            body = {"status": "error", "error": error.as_error()}
        except Exception:
            log.exception("internal error while handling %s", command[:64])
            body = dict(INTERNAL)
        return _with_id(request_id, body)


def _with_id(request_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
    return {"request_id": request_id, **body} if request_id is not None else body
