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
