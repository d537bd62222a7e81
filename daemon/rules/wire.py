"""Answers as bytes on the wire: compact UTF-8 JSON, ASCII-escaped when the text holds what UTF-8 cannot carry.

A request may be valid JSON and still hold text no UTF-8 encoder takes: ``"\\ud800"`` decodes to a
lone surrogate. Echoing it (a ``request_id``) must neither fail nor send bytes that are not JSON, so
such an answer is sent with every non-ASCII character escaped, which reads back as the same text.

>>> json_bytes({"request_id": "r-1", "note": "é"})
b'{"request_id":"r-1","note":"\\xc3\\xa9"}'
>>> json_bytes({"request_id": "\\ud800"})
b'{"request_id":"\\\\ud800"}'
>>> json.loads(json_bytes({"request_id": "\\ud800", "note": "é"}))["request_id"] == "\\ud800"
True
>>> response_topic_problem("kartud/st-1", "kartud/st-1/response/_reply/office-1") is None
True
>>> response_topic_problem("kartud/st-1", "kartud/st-1/request/queue/pause").split(" (")[0]
'the Response Topic must lie under kartud/st-1/response/'
"""

from __future__ import annotations

import json
from typing import Any


def json_bytes(obj: Any) -> bytes:
    """``obj`` as compact JSON in UTF-8; with ``\\uXXXX`` escapes instead when its text is not all encodable."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii")


MAX_TOPIC_BYTES = 65535       # MQTT's limit for a topic name


def response_topic_problem(root: str, topic: str) -> str | None:
    """Why ``topic`` may not carry an answer (contract 1.1: only under ``{root}/response/``, and a topic
    one can publish to), or None when it may."""
    prefix = f"{root}/response/"
    if not topic.startswith(prefix) or len(topic) == len(prefix):
        return (f"the Response Topic must lie under {prefix} (for example {prefix}_reply/<your client id>): the box "
                "answers nowhere else, and never onto a request topic; nothing was done")
    if any(c in topic for c in "+#\0"):
        return "the Response Topic must not hold + # or NUL (it names one topic, not a filter); nothing was done"
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        return "the Response Topic must be valid UTF-8; nothing was done"
    if size > MAX_TOPIC_BYTES:
        return f"the Response Topic must be at most {MAX_TOPIC_BYTES} bytes; nothing was done"
    return None
