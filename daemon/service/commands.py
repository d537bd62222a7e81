"""The command handlers, free of any transport: MQTT and the control socket both call :meth:`Commands.handle`."""

from __future__ import annotations

import json
import logging
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol, runtime_checkable

from ..rules import jobs as J
from ..rules.card_types import CARD_TYPES
from ..rules.errors import CommandError, invalid_payload
from ..service.faces import png_problem

if TYPE_CHECKING:
    from ..ledger.store import Store
    from ..rules.clock import Clock
    from ..rules.config import Config

log = logging.getLogger("kartud.commands")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@runtime_checkable
class CommandsHost(Protocol):
    """What the commands need from the service (the :class:`~kartud.service.daemon.Daemon` is one)."""

    config: Config
    clock: Clock                    # a submission's not_after is checked against it
    tz: tzinfo                      # the station's zone: report/daily's date is a local one
    store: Store

    async def db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a store call on the store's one thread."""

    async def cpu(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run CPU-heavy work (decoding a submitted image) off the loop."""

    def job_changed(self, view: dict[str, Any]) -> None:
        """A job's change was committed: tell the office, refresh the state and wake the press."""

    def stock_changed(self) -> None:
        """Blanks, the pause or the cleaning changed: refresh the state and wake the press."""

    async def set_paused(self, reason: str | None) -> None:
        """Pause with a reason, or resume with None."""

    async def state_document(self) -> dict[str, Any]:
        """The contract's state document, read fresh."""


def parse_request(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """Bytes to a request object, refusing what is too large, not UTF-8 JSON, or not an object."""
    if len(payload) > max_bytes:
        raise CommandError("payload_too_large", f"the request is {len(payload)} bytes; the limit is {max_bytes}",
                           {"limit": max_bytes, "size": len(payload)})
    try:
        request = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        where = f" at position {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise invalid_payload([{"field": "", "problem": f"is not UTF-8 JSON{where}"}]) from None
    if not isinstance(request, dict):
        raise invalid_payload([{"field": "", "problem": "must be a JSON object"}])
    return request


def _require_str(payload, name: str, pattern=J.ID_PATTERN) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise invalid_payload([{"field": name, "problem": "is required: 1-64 characters of A-Z a-z 0-9 . _ : -"}])
    return value


class Commands:
    """Every command of the contract that this version implements, by name, run against ``host``
    (see :class:`CommandsHost`). A handler that changes something tells the host, which refreshes
    the state and wakes the press: ``job_changed(view)`` for a job, ``stock_changed()`` for the rest.
    """

    def __init__(self, host: CommandsHost):
        self.host = host
        self.handlers: dict[str, Handler] = {
            "job/submit": self.job_submit,
            "job/get": self.job_get,
            "job/list": self.job_list,
            "job/cancel": self.job_cancel,
            "queue/pause": self.queue_pause,
            "queue/resume": self.queue_resume,
            "job/resolve": self.job_resolve,
            "blanks/receive": self.blanks_receive,
            "blanks/adjust": self.blanks_adjust,
            "maintenance/cleaned": self.maintenance_cleaned,
            "status/get": self.status_get,
            "report/daily": self.report_daily,
        }

    async def handle(self, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Run ``command``; return its ``data`` or raise :class:`CommandError`."""
        handler = self.handlers.get(command)
        if handler is None:
            raise CommandError("unknown_command", f"there is no command {command[:64]!r} in this version; "
                                                  f"known: {', '.join(sorted(self.handlers))}")
        return await handler(payload)

    async def job_submit(self, payload):
        job = await self.prepare_submit(payload)
        result = (await self.host.db(self.host.store.submit_jobs, [job]))[0]
        return await self.finish_submit(job, result)

    async def prepare_submit(self, payload) -> J.NewJob:
        """Validate a submission off the event loop (decoding its images is real work); raise the refusal."""
        host = self.host
        job = await host.cpu(J.validate_submission, payload, host.config.station.card_types, png_problem)
        if job.not_after is not None and job.not_after <= host.clock.now():
            raise CommandError("expired", f"not_after {payload['not_after']} has already passed; the job would "
                                          "never start. Send it again with a later not_after, or none")
        return job

    async def finish_submit(self, job: J.NewJob, result) -> dict[str, Any]:
        """The answer to one submission once its transaction committed (``result`` from ``submit_jobs``)."""
        if isinstance(result, CommandError):
            raise result
        view, resubmitted, position = result
        if not resubmitted:
            self.host.job_changed(view)
            log.info("job %s queued (%s, priority %d)", job.job_id, job.card_type, job.priority,
                     extra={"job": job.job_id, "record": job.record_id})
        data = {"job_id": view["job_id"], "state": view["state"], "queue_position": position}
        if resubmitted:
            data["resubmitted"] = True
        return data

    async def job_get(self, payload):
        job_id = _require_str(payload, "job_id")
        view = await self.host.db(self.host.store.get_job, job_id)
        if view is None:
            raise CommandError("not_found", f"there is no job {job_id}")
        return view

    async def job_list(self, payload):
        state, limit = payload.get("state"), payload.get("limit", 100)
        problems = []
        if state is not None and state not in J.STATES:
            problems.append({"field": "state", "problem": f"must be one of {', '.join(J.STATES)}"})
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            problems.append({"field": "limit", "problem": "must be an integer 1-1000"})
        if problems:
            raise invalid_payload(problems)
        return {"jobs": await self.host.db(self.host.store.list_jobs, state, limit)}

    async def job_cancel(self, payload):
        job_id = _require_str(payload, "job_id")
        before = await self.host.db(self.host.store.get_job, job_id)
        view = await self.host.db(self.host.store.cancel_job, job_id)
        if before and before["state"] != view["state"]:
            self.host.job_changed(view)
        return view

    async def queue_pause(self, payload):
        reason = payload.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise invalid_payload([{"field": "reason", "problem": "must be a string"}])
        await self.host.set_paused((reason or "paused by operator")[:200])
        return await self.host.state_document()

    async def queue_resume(self, payload):
        await self.host.set_paused(None)
        return await self.host.state_document()

    async def blanks_receive(self, payload):
        problems = []
        batch_id = payload.get("batch_id")
        if not isinstance(batch_id, str) or not J.ID_PATTERN.fullmatch(batch_id):
            problems.append({"field": "batch_id", "problem": "is required: 1-64 characters of A-Z a-z 0-9 . _ : -"})
        card_type = payload.get("card_type")
        if card_type not in CARD_TYPES:
            problems.append({"field": "card_type", "problem": f"must be {' or '.join(CARD_TYPES)}"})
        count = payload.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100000:
            problems.append({"field": "count", "problem": "must be an integer 1-100000"})
        note = payload.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > 500):
            problems.append({"field": "note", "problem": "must be a string of at most 500 characters"})
        if problems:
            raise invalid_payload(problems)
        in_stock = await self.host.db(self.host.store.receive_blanks, batch_id, card_type, count, note)
        self.host.stock_changed()
        return {"batch_id": batch_id, "card_type": card_type, "in_stock": in_stock}

    async def status_get(self, payload):
        return await self.host.state_document()

    async def job_resolve(self, payload):
        job_id = _require_str(payload, "job_id")
        outcome, note = payload.get("outcome"), payload.get("note")
        problems = []
        if outcome not in ("printed", "spoiled"):
            problems.append({"field": "outcome", "problem": "must be \"printed\" (the card is good and was handed "
                                                            "out or kept) or \"spoiled\" (the card is void)"})
        if not isinstance(note, str) or not note.strip() or len(note) > 500:
            problems.append({"field": "note", "problem": "is required: what the operator saw, at most 500 characters"})
        if problems:
            raise invalid_payload(problems)
        before = await self.host.db(self.host.store.get_job, job_id)
        view = await self.host.db(self.host.store.resolve_in_doubt, job_id, outcome, note.strip(),
                                  self.host.config.limits.max_attempts)
        if before is not None and before["state"] != view["state"]:
            log.info("job %s resolved by an operator: %s", job_id, outcome, extra={"job": job_id})
            self.host.job_changed(view)
            self.host.stock_changed()
        return view

    async def blanks_adjust(self, payload):
        problems = []
        card_type = payload.get("card_type")
        if card_type not in CARD_TYPES:
            problems.append({"field": "card_type", "problem": f"must be {' or '.join(CARD_TYPES)}"})
        delta = payload.get("delta")
        if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0 or abs(delta) > 100000:
            problems.append({"field": "delta", "problem": "must be a non-zero integer (+ found, - lost), at most "
                                                          "100000 either way"})
        reason = payload.get("reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            problems.append({"field": "reason", "problem": "is required: why the count changed (e.g. stocktake), "
                                                           "at most 500 characters"})
        adjustment_id = payload.get("adjustment_id", payload.get("request_id"))
        if adjustment_id is not None and (not isinstance(adjustment_id, str) or not J.ID_PATTERN.fullmatch(adjustment_id)):
            problems.append({"field": "adjustment_id", "problem": "must be 1-64 characters of A-Z a-z 0-9 . _ : -"})
        if problems:
            raise invalid_payload(problems)
        in_stock = await self.host.db(self.host.store.adjust_blanks, card_type, delta, reason.strip(),
                                      adjustment_id)
        self.host.stock_changed()
        return {"card_type": card_type, "in_stock": in_stock}

    async def maintenance_cleaned(self, payload):
        note = payload.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > 500):
            raise invalid_payload([{"field": "note", "problem": "must be a string of at most 500 characters"}])
        if await self.host.db(self.host.store.record_cleaning, note):
            log.info("the printer was cleaned")
        self.host.stock_changed()
        return await self.host.state_document()

    async def report_daily(self, payload):
        from datetime import date

        from ..ledger.daily_report import daily_report

        try:
            day = date.fromisoformat(payload.get("date"))
        except (TypeError, ValueError):
            raise invalid_payload([{"field": "date", "problem": "is required: a local date as YYYY-MM-DD"}]) from None
        return await self.host.db(daily_report, self.host.store.conn, day, self.host.tz)
