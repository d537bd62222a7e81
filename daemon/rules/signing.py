"""Ed25519 request signatures: the exact bytes the contract signs, checking them, and making them (office side).

The signed bytes are ``<topic>\\n<canonical JSON of the payload without "sig">`` in UTF-8, where
canonical JSON is ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.

>>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
>>> key = Ed25519PrivateKey.generate()
>>> payload = sign_request("kartud/st-1/request/status/get", {"request_id": "r-1"}, key)
>>> check_signature("kartud/st-1/request/status/get", payload, [public_key_base64(key)], "required")
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ..rules.errors import CommandError


def signed_bytes(topic: str, payload: dict[str, Any]) -> bytes:
    """What the signature covers: the topic, a newline, the canonical JSON of the payload without ``sig``."""
    body = {k: v for k, v in payload.items() if k != "sig"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{topic}\n{canonical}".encode("utf-8")


def _public_keys(trusted_keys: list[str]):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return [Ed25519PublicKey.from_public_bytes(base64.b64decode(k)) for k in trusted_keys]


def check_signature(topic: str, payload: dict[str, Any], trusted_keys: list[str], mode: str) -> None:
    """Refuse with ``bad_signature`` unless the request is signed as ``security.signing`` requires.

    ``off``: signatures are ignored. ``optional``: a present ``sig`` must verify. ``required``: a
    ``sig`` must be present and verify against one of ``trusted_keys``.
    """
    if mode == "off":
        return
    sig = payload.get("sig")
    if sig is None:
        if mode == "required":
            raise CommandError("bad_signature", "this station requires signed requests: add \"sig\", the base64 "
                                                "Ed25519 signature of the topic and the canonical JSON")
        return
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
    for key in _public_keys(trusted_keys):
        try:
            key.verify(signature, message)
            return
        except InvalidSignature:
            continue
    raise CommandError("bad_signature", "the signature does not match this request and topic for any trusted key; "
                                        "sign exactly the bytes the contract names, after the last change")


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
