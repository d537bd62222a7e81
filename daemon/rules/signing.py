"""Ed25519 request signatures: the exact bytes the contract signs, checking them, and making them (office side).

The signed bytes are ``<topic>\\n<canonical JSON of the payload without "sig">`` in UTF-8, where
canonical JSON is ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.
A signed request also carries ``request_id`` and ``ts`` inside those bytes (contract 1.1), so that a
copy of it is good for one effect only (:func:`check_fresh`).

>>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
>>> key = Ed25519PrivateKey.generate()
>>> payload = sign_request("kartud/st-1/request/status/get", {"request_id": "r-1",
...                        "ts": "2026-12-02T08:00:00+07:00"}, key)
>>> check_signature("kartud/st-1/request/status/get", payload, [public_key_base64(key)], "required") == \\
...     key_id(public_key_base64(key))
True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ..rules.errors import CommandError, invalid_payload
from ..rules.request_ids import request_id_problem

AHEAD_S = 300      # a signed request's ts may be this far ahead of the station's clock (clocks drift)
TS_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
                     r"([Zz]|[+-][0-9]{2}:[0-9]{2})")


def signed_bytes(topic: str, payload: dict[str, Any]) -> bytes:
    """What the signature covers: the topic, a newline, the canonical JSON of the payload without ``sig``."""
    body = {k: v for k, v in payload.items() if k != "sig"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{topic}\n{canonical}".encode("utf-8")


def _public_keys(trusted_keys: list[str]):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return [Ed25519PublicKey.from_public_bytes(base64.b64decode(k)) for k in trusted_keys]


def key_id(public_key: str) -> str:
    """The name the audit gives a trusted key (``security.trusted_keys`` entry): ``key:`` and the first 16 hex
    digits of the SHA-256 of its 32 raw bytes. It stays the same when the list is reordered.

    >>> key_id("A" * 43 + "=")
    'key:66687aadf862bd77'
    """
    return "key:" + hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:16]


def check_signature(topic: str, payload: dict[str, Any], trusted_keys: list[str], mode: str) -> str | None:
    """Refuse with ``bad_signature`` unless the request is signed as ``security.signing`` requires; return the
    :func:`key_id` of the key that verified it, or None for a request taken unsigned.

    ``off``: signatures are ignored. ``optional``: a present ``sig`` must verify. ``required``: a
    ``sig`` must be present and verify against one of ``trusted_keys``.
    """
    if mode == "off":
        return None
    sig = payload.get("sig")
    if sig is None:
        if mode == "required":
            raise CommandError("bad_signature", "this station requires signed requests: add \"sig\", the base64 "
                                                "Ed25519 signature of the topic and the canonical JSON")
        return None
    try:
        signature = base64.b64decode(sig, validate=True) if isinstance(sig, str) else b""
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != 64:
        raise CommandError("bad_signature", "\"sig\" must be a base64 Ed25519 signature (64 bytes)")
    from cryptography.exceptions import InvalidSignature

    try:
        message = signed_bytes(topic, payload)
    except UnicodeEncodeError:
        # No UTF-8 bytes exist for such text (a lone surrogate like "\\ud800"), so nothing can have signed it.
        field = (_unencodable_field(payload) or "the payload")[:80]
        raise CommandError("bad_signature", f"{field} holds text that has no UTF-8 form (a lone surrogate escape "
                                            "such as \\ud800), so no signature can cover it; send valid Unicode "
                                            "text and sign it", {"field": field}) from None
    except (ValueError, RecursionError):
        raise CommandError("bad_signature", "the payload cannot be put in the canonical JSON form that is signed "
                                            "(nested too deep?); send a flatter request and sign it") from None
    for name, key in zip(trusted_keys, _public_keys(trusted_keys)):
        try:
            key.verify(signature, message)
            return key_id(name)
        except InvalidSignature:
            continue
    raise CommandError("bad_signature", "the signature does not match this request and topic for any trusted key; "
                                        "sign exactly the bytes the contract names, after the last change")


def check_fresh(payload: dict[str, Any], now: datetime | None, window_days: int) -> None:
    """What makes a signed request good for one effect: a ``request_id`` (the request memory answers a copy
    as the first time) and a ``ts``, both inside the signed bytes. Refuse ``invalid_payload`` naming each
    one missing or malformed; with ``now`` (the station's clock, when it is set), refuse ``stale_request``
    a ``ts`` more than ``window_days`` old (older than anything the memory keeps) or more than
    :data:`AHEAD_S` seconds ahead.

    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
    >>> check_fresh({"request_id": "r-1", "ts": "2026-12-02T08:04:00+07:00"}, now, 30)
    >>> try:
    ...     check_fresh({"request_id": "r-1", "ts": "2026-10-02T08:00:00+07:00"}, now, 30)
    ... except CommandError as refusal:
    ...     print(refusal.code)
    stale_request
    """
    problems = []
    request_id = payload.get("request_id")
    problem = "is required in a signed request: a new id for each request (a UUID, say), signed with it" \
        if request_id is None else request_id_problem(request_id)
    if problem is not None:
        problems.append({"field": "request_id", "problem": problem})
    ts = payload.get("ts")
    when = parse_ts(ts)
    if when is None:
        problems.append({"field": "ts", "problem": "is required in a signed request: the sender's clock when it "
                                                   "signed, an RFC 3339 time with an offset such as "
                                                   "2026-12-02T08:00:00+07:00" if ts is None else
                                                   "must be an RFC 3339 time with an offset, such as "
                                                   "2026-12-02T08:00:00+07:00"})
    if problems:
        raise invalid_payload(problems)
    if now is None:
        return                              # the station's clock is not set: it cannot tell old from new
    if when < now - timedelta(days=window_days):
        raise CommandError("stale_request", f"ts {ts} is more than {window_days} days old "
                                            "(security.replay_window_days): an old signed request is not acted "
                                            "on. Sign it again with the current time (and check the office "
                                            "server's clock)", {"ts": ts, "window_days": window_days})
    if when > now + timedelta(seconds=AHEAD_S):
        raise CommandError("stale_request", f"ts {ts} is more than {AHEAD_S // 60} minutes ahead of the station's "
                                            "clock: check the clocks of the office server and the box (NTP)",
                           {"ts": ts, "ahead_s": AHEAD_S})


def parse_ts(value: Any) -> datetime | None:
    """An RFC 3339 time with an offset whose UTC instant exists, as a datetime; else None.

    >>> parse_ts("2026-12-02T08:00:00Z"), parse_ts("2026-12-02T08:00:00")
    (datetime.datetime(2026, 12, 2, 8, 0, tzinfo=datetime.timezone.utc), None)
    """
    if not isinstance(value, str) or not TS_FORM.fullmatch(value):
        return None
    try:
        when = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
        when.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    return when


def _unencodable_field(value: Any, path: str = "", depth: int = 0) -> str | None:
    """The dotted path of the first key or string in ``value`` that UTF-8 cannot encode, or None."""
    def bad(text: str) -> bool:
        try:
            text.encode("utf-8")
            return False
        except UnicodeEncodeError:
            return True

    if depth > 64:
        return None
    if isinstance(value, str):
        return path or "the payload" if bad(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        name = f"{path}.{key}" if path and isinstance(key, str) else f"{path}[{key}]" if path else str(key)
        if isinstance(key, str) and bad(key):
            return path or "a field name"
        found = _unencodable_field(item, name, depth + 1)
        if found:
            return found
    return None


def sign_request(topic: str, payload: dict[str, Any], private_key) -> dict[str, Any]:
    """The office side: return ``payload`` with ``sig`` added, signed by an Ed25519 private key."""
    signature = private_key.sign(signed_bytes(topic, payload))
    return {**{k: v for k, v in payload.items() if k != "sig"}, "sig": base64.b64encode(signature).decode()}


def public_key_base64(private_key) -> str:
    """The base64 raw public key to list in ``security.trusted_keys``."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return base64.b64encode(private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
