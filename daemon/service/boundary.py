"""The boundary around each request: its fingerprint, its readable request_id, and what a defect it meets leaves.

A request that meets an exception nobody expected is answered ``internal_error``, acknowledged, and
set aside (:mod:`kartud.ledger.quarantine`); the log says which class, command, size and sha256, and
where in the code, never what the request held (it may hold a NIK, a name or a face).

>>> fingerprint("kartud/st-1/request/status/get", b"{}")[:16]
'8616c2bd389c7d14'
>>> readable_request_id(b'{"request_id": "r-1", "front_png": "..."}', 1000)
'r-1'
>>> readable_request_id(b'{"request_id": "r-2", ' + b'"x": 1' * 10, 10)   # too large to parse: found by pattern
'r-2'
>>> readable_request_id(b'not json', 100) is None
True
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import traceback
from typing import Any

from ..service.journal_ids import MSG_REQUEST_QUARANTINED

log = logging.getLogger("kartud.intake")

REQUEST_ID_CHARS = 128        # an echoed request_id is cut to this length
# A top-level-looking "request_id": "..." in bytes that are not parsed (too large, or a message that killed
# the process while it was parsed): a bounded, linear pattern.
_REQUEST_ID = re.compile(rb'"request_id"\s*:\s*"((?:[^"\\]|\\.){0,512})"')


def fingerprint(topic: str, payload: bytes) -> str:
    """The sha256 of ``topic``, a newline and ``payload``: the same for every redelivery of one message."""
    return hashlib.sha256(topic.encode("utf-8", "surrogatepass") + b"\n" + payload).hexdigest()


def readable_request_id(raw: bytes, max_bytes: int, parsed: Any = None) -> str | None:
    """The request's ``request_id`` when it can be read: from the parsed object, else by parsing ``raw``
    when it is within ``max_bytes``, else by a pattern. None when there is none (or it is no string)."""
    if parsed is None and len(raw) <= max_bytes:
        try:
            parsed = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            parsed = None
    if isinstance(parsed, dict):
        value = parsed.get("request_id")
        return value[:REQUEST_ID_CHARS] if isinstance(value, str) else None
    match = _REQUEST_ID.search(raw)
    if match is None:
        return None
    try:
        value = json.loads(b'"' + match.group(1) + b'"')
    except (UnicodeDecodeError, ValueError):
        return None
    return value[:REQUEST_ID_CHARS]


def error_answer(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    return with_request_id(request_id, {"status": "error", "error": {"code": code, "message": message}})


def with_request_id(request_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as an answer: its request's ``request_id`` first, when it had one."""
    return {"request_id": request_id, **body} if request_id is not None else body


def internal_error(request_id: str | None, seq: int | None, died: bool = False) -> dict[str, Any]:
    """The answer to a request that met a defect (or killed the process twice): what happened, and that
    a person has it. Nothing of it was done, unless its answer says otherwise."""
    why = ("the box stopped twice while handling this very message" if died
           else "the box met an internal error while handling this request")
    kept = f" It is kept aside for a person (kartuctl quarantine, number {seq})" if seq is not None else \
        " It is logged"
    return error_answer("internal_error", f"{why}; it will not be handled again.{kept}. Send a corrected request "
                                          "with a new request_id, or ask the station's maintainers.", request_id)


def log_defect(exc: BaseException, command: str, size: int, sha: str, seq: int | None) -> None:
    """One log line naming the defect's class, the command, the payload's size and sha256, and the code's
    frames: never the exception's message nor the payload (either may carry personal data)."""
    frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    log.error("a request met an internal error and is set aside: %s while handling %s (%d bytes, sha256 %s)%s; it "
              "was answered internal_error and acknowledged\n%s", type(exc).__name__, command[:64], size, sha,
              f", quarantine number {seq}" if seq is not None else "", frames,
              extra={"command": command[:64], "message_id": MSG_REQUEST_QUARANTINED})
