"""The command handlers, free of any transport: MQTT and the control socket both call :meth:`Commands.handle`."""

from __future__ import annotations

import json
import logging
import sys
import unicodedata
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol, runtime_checkable

from ..ledger.request_memory import Repeat
from ..rules import jobs as J
from ..rules.calendar import parse_day
from ..rules.card_types import CARD_TYPES
from ..rules.errors import CommandError, invalid_payload
from ..rules.request_ids import Memo, memo_for
from ..service.faces import NeedsFullDecode, face_chars, plain_png_problem, png_problem

if TYPE_CHECKING:
    from ..ledger.store import Store
    from ..rules.config import Config

log = logging.getLogger("kartud.commands")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
INLINE_FACE_CHARS = 96 * 1024   # faces (base64) validated on the loop at most: a colour face's check is ~0.3 ms


@runtime_checkable
class CommandsHost(Protocol):
    """What the commands need from the service (the :class:`~kartud.service.daemon.Daemon` is one)."""

    config: Config                  # the station's card types, max_attempts, security.replay_window_days
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
    except (ValueError, RecursionError) as exc:
        # ValueError: not UTF-8, not JSON, or an integer longer than Python converts (CVE-2020-10735).
        where = f" at position {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        problem = f"holds a number of more digits than the box reads ({sys.get_int_max_str_digits()} at most)" \
            if type(exc) is ValueError else f"is not UTF-8 JSON{where}"
        raise invalid_payload([{"field": "", "problem": problem}]) from None
    if not isinstance(request, dict):
        raise invalid_payload([{"field": "", "problem": "must be a JSON object"}])
    return request


def _require_str(payload, name: str, pattern=J.ID_PATTERN) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise invalid_payload([{"field": name, "problem": "is required: 1-64 characters of A-Z a-z 0-9 . _ : -"}])
    return value


def _text(payload, name: str, problems: list, required: str | None = None, limit: int = 500) -> str | None:
    """A free-text field (a note, a reason): at most ``limit`` characters of text the database can hold.
    ``required`` says what it is for, when it must be given."""
    value = payload.get(name)
    if value is None and required is None:
        return None
    if not isinstance(value, str) or len(value) > limit or (required is not None and not value.strip()):
        what = f"is required: {required}, at most {limit} characters" if required else \
            f"must be a string of at most {limit} characters"
        problems.append({"field": name, "problem": what})
    elif any(unicodedata.category(c) in ("Cs", "Cc") and c not in "\t\r\n" for c in value):
        problems.append({"field": name, "problem": "must be text without control characters or unpaired surrogates"})
    else:
        return value
    return None


class Commands:
    """Every command of the contract that this version implements, by name, run against ``host``
    (see :class:`CommandsHost`). A handler that changes something tells the host, which refreshes
    the state and wakes the press: ``job_changed(view)`` for a job, ``stock_changed()`` for the rest.

    A changing request with a ``request_id`` runs through the store's request memory (see
    :mod:`kartud.ledger.request_memory`): sent again, it gets its first answer, and no handler
    announces a change or logs one.
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

    # -- remembering changing requests ------------------------------------------------------------

    def _memo(self, command: str, payload, content: Any = None) -> Memo | None:
        return memo_for(command, payload, self.host.config.security.replay_window_days, content)

    async def _once(self, memo: Memo | None, act: Callable[[], Any], answer: Callable[[Any], Any] | None = None):
        """``act()`` on the store's thread, remembered under ``memo`` with its answer (see ``Store.once``)."""
        return await self.host.db(self.host.store.once, memo, act, answer)

    async def _state_answer(self, memo: Memo | None, done: Any = None) -> dict[str, Any]:
        """The state document as the answer of a request remembered without its answer (the document is
        made on the loop, after the commit); a repeat gets the one first written."""
        if isinstance(done, Repeat) and done.body is not None:
            return done.data()
        document = await self.host.state_document()
        if memo is None:
            return document
        return (await self.host.db(self.host.store.write_answer, memo, {"status": "ok", "data": document}))["data"]

    # -- jobs -------------------------------------------------------------------------------------

    async def job_submit(self, payload):
        job = await self.prepare_submit(payload)
        result = (await self.host.db(self.host.store.submit_jobs, [job]))[0]
        return await self.finish_submit(job, result)

    async def prepare_submit(self, payload) -> J.NewJob:
        """Validate a submission, raising the refusal: on the loop when its faces are small and plain (their
        structure checked without Pillow), else on the CPU thread with Pillow's full decode. Whether it came too late (``not_after`` passed) is the store's to say, after the request memory."""
        host = self.host
        job = self.validate_plain(payload)
        if job is None:
            job = await host.cpu(J.validate_submission, payload, host.config.station.card_types, png_problem,
                                 host.config.encoder.chip_capacity_bytes)
            job.memo = self._memo("job/submit", payload, content=job.content_sha256)
        return job

    def validate_plain(self, payload) -> J.NewJob | None:
        """The submission validated here and now, raising the refusal, when its faces are small and plain
        (checked without Pillow: well under a millisecond, so on the loop or inside a store call); None
        when a face needs Pillow's full decode (:meth:`prepare_submit` does that on the CPU thread)."""
        if face_chars(payload) > INLINE_FACE_CHARS:
            return None
        config = self.host.config
        try:
            job = J.validate_submission(payload, config.station.card_types, plain_png_problem,
                                        config.encoder.chip_capacity_bytes)
        except NeedsFullDecode:
            return None                                     # an unusual face: Pillow decides, on the CPU thread
        job.memo = self._memo("job/submit", payload, content=job.content_sha256)
        return job

    async def finish_submit(self, job: J.NewJob, result) -> dict[str, Any]:
        """The answer to one submission once its transaction committed (``result`` from ``submit_jobs``)."""
        if isinstance(result, Repeat):
            return result.data()
        if isinstance(result, CommandError):
            raise result
        view, resubmitted, position = result
        if not resubmitted:
            self.host.job_changed(view)
            log.info("job %s queued (%s, priority %d)", job.job_id, job.card_type, job.priority,
                     extra={"job": job.job_id, "record": job.record_id})
        return J.submit_answer(view, resubmitted, position)

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
        memo, store = self._memo("job/cancel", payload), self.host.store
        done = await self._once(memo, lambda: (store.get_job(job_id), store.cancel_job(job_id)), lambda r: r[1])
        if isinstance(done, Repeat):
            return done.data()
        before, view = done
        if before and before["state"] != view["state"]:
            self.host.job_changed(view)
        return view

    async def job_resolve(self, payload):
        job_id = _require_str(payload, "job_id")
        outcome, attempts = payload.get("outcome"), payload.get("attempts")
        problems: list = []
        if outcome not in ("printed", "spoiled"):
            problems.append({"field": "outcome", "problem": "must be \"printed\" (the card is good and was handed "
                                                            "out or kept) or \"spoiled\" (the card is void)"})
        note = _text(payload, "note", problems, required="what the operator saw")
        if attempts is not None and (not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0):
            problems.append({"field": "attempts", "problem": "must be the attempts the job view showed, an integer"})
        if problems:
            raise invalid_payload(problems)
        memo, store = self._memo("job/resolve", payload), self.host.store

        def resolve():
            return store.get_job(job_id), store.resolve_in_doubt(job_id, outcome, note.strip(),
                                                                 self.host.config.limits.max_attempts, attempts)
        done = await self._once(memo, resolve, lambda r: r[1])
        if isinstance(done, Repeat):
            return done.data()
        before, view = done
        if before is not None and before["state"] != view["state"]:
            log.info("job %s resolved by an operator: %s", job_id, outcome, extra={"job": job_id})
            self.host.job_changed(view)
            self.host.stock_changed()
        return view

    # -- the queue, blanks and the printer ----------------------------------------------------------

    async def queue_pause(self, payload):
        problems: list = []
        reason = _text(payload, "reason", problems)
        if problems:
            raise invalid_payload(problems)
        return await self._pause("queue/pause", payload, (reason or "paused by operator")[:200])

    async def queue_resume(self, payload):
        return await self._pause("queue/resume", payload, None)

    async def _pause(self, command: str, payload, reason: str | None) -> dict[str, Any]:
        memo = self._memo(command, payload)
        if memo is not None:
            # The setting and the request's memory commit together; set_paused below then finds the
            # setting in place and only brings the daemon's own view of it up to date.
            store = self.host.store
            done = await self._once(memo, lambda: store.set_setting(
                "paused_reason", reason, "queue_paused" if reason else "queue_resumed", {"reason": reason}))
            if isinstance(done, Repeat):
                return await self._state_answer(memo, done)
            if done:
                log.info("queue %s", "paused" if reason else "resumed")
        await self.host.set_paused(reason)
        return await self._state_answer(memo)

    async def blanks_receive(self, payload):
        problems: list = []
        batch_id = payload.get("batch_id")
        if not isinstance(batch_id, str) or not J.ID_PATTERN.fullmatch(batch_id):
            problems.append({"field": "batch_id", "problem": "is required: 1-64 characters of A-Z a-z 0-9 . _ : -"})
        card_type = payload.get("card_type")
        if card_type not in CARD_TYPES:
            problems.append({"field": "card_type", "problem": f"must be {' or '.join(CARD_TYPES)}"})
        count = payload.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100000:
            problems.append({"field": "count", "problem": "must be an integer 1-100000"})
        note = _text(payload, "note", problems)
        if problems:
            raise invalid_payload(problems)
        memo, store = self._memo("blanks/receive", payload), self.host.store

        def answer(in_stock):
            return {"batch_id": batch_id, "card_type": card_type, "in_stock": in_stock}
        done = await self._once(memo, lambda: store.receive_blanks(batch_id, card_type, count, note), answer)
        if isinstance(done, Repeat):
            return done.data()
        self.host.stock_changed()
        return answer(done)

    async def blanks_adjust(self, payload):
        """A stock correction is applied once per id: ``adjustment_id`` (an extension, kept for ever) or,
        without one, ``request_id``; with neither, a repeat could not be told from a second correction."""
        memo = self._memo("blanks/adjust", payload)
        problems: list = []
        card_type = payload.get("card_type")
        if card_type not in CARD_TYPES:
            problems.append({"field": "card_type", "problem": f"must be {' or '.join(CARD_TYPES)}"})
        delta = payload.get("delta")
        if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0 or abs(delta) > 100000:
            problems.append({"field": "delta", "problem": "must be a non-zero integer (+ found, - lost), at most "
                                                          "100000 either way"})
        reason = _text(payload, "reason", problems, required="why the count changed (e.g. stocktake)")
        adjustment_id, id_field = payload.get("adjustment_id"), "adjustment_id"
        if adjustment_id is None and memo is not None:
            adjustment_id, id_field = memo.request_id, "request_id"
        if adjustment_id is None:
            problems.append({"field": "request_id", "problem": "is required (or adjustment_id): an id, new for each "
                                                               "adjustment, so that a repeat is not counted twice"})
        elif not isinstance(adjustment_id, str) or (id_field == "adjustment_id"
                                                    and not J.ID_PATTERN.fullmatch(adjustment_id)):
            problems.append({"field": "adjustment_id", "problem": "must be 1-64 characters of A-Z a-z 0-9 . _ : -"})
        if problems:
            raise invalid_payload(problems)
        store = self.host.store

        def answer(in_stock):
            return {"card_type": card_type, "in_stock": in_stock}
        done = await self._once(memo, lambda: store.adjust_blanks(card_type, delta, reason.strip(), adjustment_id,
                                                                  id_field), answer)
        if isinstance(done, Repeat):
            return done.data()
        self.host.stock_changed()
        return answer(done)

    async def maintenance_cleaned(self, payload):
        problems: list = []
        note = _text(payload, "note", problems)
        run_cycle = payload.get("run_cycle", False)
        if not isinstance(run_cycle, bool):
            problems.append({"field": "run_cycle", "problem": "must be true (run the printer's cleaning cycle, a "
                                                              "cleaning card in the feeder) or false"})
        if problems:
            raise invalid_payload(problems)
        memo, store = self._memo("maintenance/cleaned", payload), self.host.store
        cycle = None
        if run_cycle:       # extension: the printer cleans itself; recorded only when it agrees it is done
            from .cleaning_cycle import run_cleaning_cycle

            cycle = await run_cleaning_cycle(self.host)
            if not cycle["ran"] or cycle["printer_says"] == "still_due":
                return {**await self.host.state_document(), "cleaning_cycle": cycle}
        done = await self._once(memo, lambda: store.record_cleaning(note))
        if isinstance(done, Repeat):
            return await self._state_answer(memo, done)
        if done:
            log.info("the printer was cleaned")
        self.host.stock_changed()
        answer = await self._state_answer(memo)
        return {**answer, "cleaning_cycle": cycle} if cycle is not None else answer

    # -- reading ----------------------------------------------------------------------------------

    async def status_get(self, payload):
        return await self.host.state_document()

    async def report_daily(self, payload):
        from ..ledger.daily_report import daily_report

        day = parse_day(payload.get("date"))
        if day is None:
            raise invalid_payload([{"field": "date", "problem": "is required: a local date written YYYY-MM-DD, "
                                                                "such as 2026-12-02, from 0001-01-02 to 9999-12-30"}])
        return await self.host.db(daily_report, self.host.store.conn, day, self.host.tz)
