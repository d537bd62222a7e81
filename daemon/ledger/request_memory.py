"""The request memory: each changing request done, by request_id, with its first answer, for the replay window.

A request that changes something and carries a ``request_id`` is remembered in the transaction of
its change, so a crash can never leave the change without its memory. The same request again (a
QoS 1 redelivery, an office's retry, a replay) gets the answer it first got and changes nothing;
the same ``request_id`` asking something else is refused, naming ``request_id``. Entries older than
``security.replay_window_days`` (and a day more) are pruned as new ones are written.
"""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any, Callable

from ..rules.clock import rfc3339
from ..rules.errors import CommandError, invalid_payload
from ..rules.request_ids import Memo

Body = dict[str, Any]


class Repeat:
    """A request done before. ``body`` is the answer it first got, or None when its change committed but
    the process stopped before its answer (a state document, made after the commit) was written."""

    def __init__(self, request_id: str, body: Body | None):
        self.request_id = request_id
        self.body = body

    def data(self) -> Any:
        """The first answer's ``data``, or its refusal raised again."""
        if self.body["status"] == "ok":
            return self.body["data"]
        error = self.body["error"]
        raise CommandError(error["code"], error["message"], error.get("details"))


class RequestIdReused(CommandError):
    """The ``request_id`` of a request done before, on a request that asks something else."""


def error_body(error: CommandError) -> Body:
    """The response body of a refusal, as it is remembered."""
    return {"status": "error", "error": error.as_error()}


class RequestMemory:
    """Request-memory methods of :class:`~kartud.ledger.store.Store` (which provides ``transaction``,
    ``clock`` and ``conn``). ``transaction`` nests, so a change opened inside :meth:`once` joins its
    transaction."""

    def once(self, memo: Memo | None, act: Callable[[], Any], answer: Callable[[Any], Any] | None = None) -> Any:
        """Run ``act()`` and remember ``memo``'s request with the answer ``{"status": "ok", "data":
        answer(result)}``, all in one transaction; return what ``act`` returned.

        A request done before returns its :class:`Repeat` and runs nothing. A refusal ``act`` raises
        changed nothing; it is remembered too (a repeat gets it again, even when the state has changed
        since) and raised. Without ``answer`` the answer is left empty for :meth:`write_answer`. Without
        ``memo`` (no ``request_id``) this is ``act()``.
        """
        if memo is None:
            return act()
        refusal = None
        with self.transaction() as conn:
            self._prune(conn, memo.keep_days)
            done = self._recall(conn, memo)
            if done is not None:
                return done
            try:
                result = act()
                body = None if answer is None else {"status": "ok", "data": answer(result)}
            except CommandError as error:
                refusal, body = error, error_body(error)
            self._remember(conn, memo, body)
        if refusal is not None:
            raise refusal
        return result

    def write_answer(self, memo: Memo, body: Body) -> Body:
        """Write the answer of a request remembered without one; return the answer remembered (the first
        written, should two race)."""
        with self.transaction() as conn:
            self._fill(conn, memo.request_id, body)
            return self._recall(conn, memo).body

    def _recall(self, conn, memo: Memo) -> Repeat | None:
        row = conn.execute("SELECT command, fingerprint, answer, at FROM requests_done WHERE request_id = ?",
                           (memo.request_id,)).fetchone()
        if row is None:
            return None
        if (row["command"], row["fingerprint"]) != (memo.command, memo.fingerprint):
            other = "for a request with other content" if row["command"] == memo.command \
                else f"for {row['command']}"
            refusal = invalid_payload([{"field": "request_id", "problem": f"was already used at {row['at']} {other};"
                                                                          " a new request needs a new request_id"}])
            raise RequestIdReused(refusal.code, refusal.message, refusal.details)
        return Repeat(memo.request_id, json.loads(row["answer"]) if row["answer"] is not None else None)

    def _remember(self, conn, memo: Memo, body: Body | None) -> None:
        conn.execute("INSERT INTO requests_done (request_id, command, fingerprint, answer, at) VALUES (?, ?, ?, ?, ?)",
                     (memo.request_id, memo.command, memo.fingerprint, _json(body),
                      rfc3339(self.clock.now().astimezone(timezone.utc))))

    def _fill(self, conn, request_id: str, body: Body) -> None:
        conn.execute("UPDATE requests_done SET answer = ? WHERE request_id = ? AND answer IS NULL",
                     (_json(body), request_id))

    def _prune(self, conn, keep_days: int) -> None:
        # The index on ``at`` makes this a seek that finds nothing on most calls. A day past the window:
        # a signed request stays fresh until its ts is keep_days old, and its ts may be up to 5 minutes
        # ahead of ``at`` (the sender's clock ahead of ours): no moment may come when a replay is neither
        # remembered nor stale.
        cutoff = rfc3339((self.clock.now() - timedelta(days=keep_days + 1)).astimezone(timezone.utc))
        conn.execute("DELETE FROM requests_done WHERE at < ?", (cutoff,))


def _json(body: Body | None) -> str | None:
    # ASCII: an answer may echo text that UTF-8 cannot carry (a lone surrogate), and it must still be kept.
    return None if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=True)
