"""Which requests change something, and when a second one is the same request: its request_id and its content.

A changing request that carries a ``request_id`` is remembered with its answer (see
:mod:`kartud.ledger.request_memory`); :func:`memo_for` says under what it is remembered.

>>> memo = memo_for("queue/pause", {"request_id": "r-1", "reason": "lunch"}, keep_days=30)
>>> memo.request_id, memo.command
('r-1', 'queue/pause')
>>> memo == memo_for("queue/pause", {"reason": "lunch", "request_id": "r-1", "ts": "2026-12-02T08:00:00+07:00"}, 30)
True
>>> memo == memo_for("queue/pause", {"request_id": "r-1", "reason": "tea"}, keep_days=30)
False
>>> memo_for("queue/pause", {"reason": "lunch"}, keep_days=30) is None
True
>>> memo_for("queue/pause", {"request_id": 7}, keep_days=30)
Traceback (most recent call last):
...
kartud.rules.errors.CommandError: the request has 1 problem(s): request_id: must be a string of 1-128 characters
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from ..rules.errors import invalid_payload

# The commands whose repeat must change nothing; the read-only ones (job/get, job/list, status/get,
# report/daily) answer afresh every time and are not remembered.
CHANGING = frozenset({"job/submit", "job/cancel", "job/resolve", "queue/pause", "queue/resume", "blanks/receive",
                      "blanks/adjust", "maintenance/cleaned"})
# Fields that carry the request, not what it asks: a retry may sign it again with a new ts.
TRANSPORT_FIELDS = ("request_id", "sig", "ts")
MAX_REQUEST_ID = 128


@dataclass(frozen=True)
class Memo:
    """What a changing request is remembered under: its id, its command and the fingerprint of its content,
    kept at least ``keep_days`` (``security.replay_window_days``)."""

    request_id: str
    command: str
    fingerprint: str
    keep_days: int


def request_id_problem(value: Any) -> str | None:
    """What keeps ``value`` from being a request_id the box can remember and echo, or None.

    >>> request_id_problem("2f1c9a4e-office-17"), request_id_problem("")
    (None, 'must be a string of 1-128 characters')
    >>> request_id_problem("a\\nb")
    'must not hold control characters or unpaired surrogates'
    """
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_REQUEST_ID:
        return f"must be a string of 1-{MAX_REQUEST_ID} characters"
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        return "must not hold control characters or unpaired surrogates"
    return None


def fingerprint(command: str, content: Any) -> str:
    """SHA-256 over the command and its content (JSON, keys sorted, ASCII so any text hashes)."""
    canonical = json.dumps([command, content], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def memo_for(command: str, payload: dict[str, Any], keep_days: int, content: Any = None) -> Memo | None:
    """The memo of a changing request, or None when it has no ``request_id`` (or a null one).

    ``content`` is what the request asks, as the handler understood it; by default the payload without
    its transport fields and without fields given as null (a null is the same as leaving a field out).
    Raises ``invalid_payload`` naming ``request_id`` when it is not one the box can remember.
    """
    request_id = payload.get("request_id")
    if request_id is None:
        return None
    problem = request_id_problem(request_id)
    if problem is not None:
        raise invalid_payload([{"field": "request_id", "problem": problem}])
    if content is None:
        content = {k: v for k, v in payload.items() if k not in TRANSPORT_FIELDS and v is not None}
    return Memo(request_id, command, fingerprint(command, content), keep_days)
