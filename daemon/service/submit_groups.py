"""Submissions committed in groups: validated while the next are read, one transaction for the lot, or one store call.

Part of :class:`~kartud.service.intake.Intake` (a mixin, as the intake is one object): consecutive
``job/submit`` requests are validated one by one and committed together (group commit: one fsync for
the lot); a batch made only of plain submissions takes a single store call for its marks, validations,
commit and release.
"""

from __future__ import annotations

import asyncio
import sqlite3
from time import monotonic
from typing import Any

from ..ledger import quarantine as Q
from ..ledger.actors import acting_as
from ..rules.errors import CommandError, StorageError
from ..service.boundary import error_answer
from ..service.boundary import with_request_id as _with_id
from ..service.crashpoints import crash_point, defect_point
from ..service.mqtt_link import IncomingRequest

EXPIRED = "the request's message expiry passed before the box could handle it; nothing was done"


class SubmissionGroups:
    """The group commit of :class:`~kartud.service.intake.Intake`; uses its ``_prepare``, ``_wrap``,
    ``_defect``, ``_sha``, ``_request_id`` and ``_read_clock``."""

    host: Any                   # the intake's IntakeHost (kartud.service.intake, which imports this)
    config: Any

    async def answer_batch(self, batch: list[IncomingRequest], released: set[str] | None = None) -> list[dict[str, Any]]:
        """The responses to ``batch``, in order: consecutive submissions are committed together.

        With ``released`` (the caller sends the answers as soon as this returns) the marks of the
        submissions are released in the transaction that commits them, and their sha256s added to it."""
        responses: list[dict[str, Any] | None] = [None] * len(batch)
        pending: list[tuple[int, str | None, asyncio.Future]] = []   # submissions waiting for the group commit
        group_actor = None                                  # who sent them: one group commits for one actor
        await self._read_clock()

        async def commit_pending() -> None:
            prepared = []                                   # (index, request_id, job) of the valid ones
            # Every one is answered from the commit on: the valid ones by it, a refusal by its content alone
            # (so again if it comes back), a defect's mark went with the quarantine.
            answered = [self._sha(batch[index]) for index, _, _ in pending]
            for index, request_id, validation in pending:
                try:
                    prepared.append((index, request_id, await validation))
                except CommandError as error:
                    responses[index] = _with_id(request_id, {"status": "error", "error": error.as_error()})
                except Exception as exc:
                    responses[index] = await self._defect(exc, batch[index], request_id)
            pending.clear()
            if not prepared:
                return
            with acting_as(group_actor):
                results = await self._commit([job for _, _, job in prepared], answered, released)
            crash_point("after_submit_commit")              # committed, not yet answered nor acknowledged
            for (index, request_id, job), result in zip(prepared, results):
                if isinstance(result, Exception) and not isinstance(result, CommandError):
                    responses[index] = await self._defect(result, batch[index], request_id)
                    continue
                responses[index] = await self._wrap(request_id, "job/submit",
                                                    self.host.commands.finish_submit(job, result), batch[index])

        for index, request in enumerate(batch):
            topic = f"{self.config.root}/request/{request.command}"
            if request.expires_at is not None and monotonic() > request.expires_at:
                responses[index] = error_answer("expired", EXPIRED, self._request_id(request))   # it waited here
                continue
            if request.command == "job/submit":
                request_id, payload, refusal, actor = self._prepare(request.payload, request.retain, topic, request)
                if refusal is not None:
                    responses[index] = refusal
                    continue
                if pending and actor != group_actor:
                    await commit_pending()
                group_actor = actor
                # Validation (decoding the images) runs on the CPU threads while the next ones are read.
                validation = asyncio.ensure_future(self._validate(payload))
                pending.append((index, request_id, validation))
                continue
            await commit_pending()                          # keep the order: earlier submissions first
            responses[index] = await self.answer(request.command, request.payload, request.retain, topic, request)
        await commit_pending()
        return responses

    async def _validate(self, payload: dict[str, Any]):
        crash_point("while_handling", "job/submit")
        defect_point("while_handling", "job/submit")
        return await self.host.commands.prepare_submit(payload)

    async def _commit(self, jobs: list, shas: list[str], released: set[str] | None) -> list:
        """``submit_jobs`` for the group, releasing ``shas``' marks in its transaction when ``released`` is
        given (then added to it); when the group meets a defect, each job alone, so that only the one
        that meets it is refused (the group's transaction was rolled back whole, the release with it)."""
        store = self.host.store
        try:
            if released is None:
                return await self.host.db(store.submit_jobs, jobs)
            results = await self.host.db(Q.commit_releasing, store, store.submit_jobs, jobs, shas)
            released.update(shas)
            return results
        except CommandError as error:                      # the database failed: every one is refused
            return [error] * len(jobs)
        except Exception as exc:
            if len(jobs) == 1:
                return [exc]
        results = []
        for job in jobs:
            try:
                results += await self.host.db(self.host.store.submit_jobs, [job])
            except Exception as exc:
                results.append(exc)
        return results

    async def _submit_in_one_call(self, batch: list[IncomingRequest]) -> tuple[dict[str, str], list | None]:
        """Submissions only: their marks, then (on the store's thread, the marks committed) their validation
        and the commit of their jobs with the marks' release, in ONE store call; ``(verdicts, answers)``.
        The answers are None when the batch needs the usual path (the marks taken stand): a message that
        died with the process, a face for Pillow, more than one sender, or a defect (which the usual
        path meets again, inside its boundary)."""
        await self._read_clock()
        topic, store = f"{self.config.root}/request/job/submit", self.host.store

        def handle():                                       # on the store's thread, the marks committed
            prepared, jobs, actors = [], [], set()
            for request in batch:
                request_id, payload, refusal, actor = self._prepare(request.payload, False, topic, request)
                job = None
                if refusal is None:
                    crash_point("while_handling", "job/submit")
                    try:
                        defect_point("while_handling", "job/submit")
                        job = self.host.commands.validate_plain(payload)
                    except CommandError as error:
                        refusal = _with_id(request_id, {"status": "error", "error": error.as_error()})
                    except Exception:
                        return None
                    if refusal is None:
                        if job is None:
                            return None                     # a face for Pillow, on the CPU thread
                        jobs.append(job)
                        actors.add(actor)
                prepared.append((request_id, job, refusal))
            if len(actors) > 1:
                return None
            shas = [self._sha(request) for request in batch]
            if not jobs:
                Q.release(store, shas)
                return prepared, []
            with acting_as(actors.pop()):
                try:
                    return prepared, Q.commit_releasing(store, store.submit_jobs, jobs, shas)
                except (StorageError, sqlite3.Error):
                    raise                                   # the database: host.db raises its fault
                except Exception:
                    return None                             # a defect: the usual path commits each job alone

        try:
            verdicts, outcome = await self.host.db(Q.handled_in_hand, store,
                                                   [(self._sha(r), r.command, len(r.payload)) for r in batch], handle)
        except CommandError:
            return {}, None                                 # the usual path meets the failing database too
        if outcome is None:
            return verdicts, None
        prepared, results = outcome[0], iter(outcome[1])
        if outcome[1]:
            crash_point("after_submit_commit")              # committed, not yet answered nor acknowledged
        return verdicts, [refusal if refusal is not None else
                          await self._wrap(request_id, "job/submit",
                                           self.host.commands.finish_submit(job, next(results)), request)
                          for request, (request_id, job, refusal) in zip(batch, prepared)]
