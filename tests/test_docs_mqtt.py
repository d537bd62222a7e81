"""The integrators' worked example in docs/mqtt.md runs, as written, against a daemon that requires signatures."""

from __future__ import annotations

import json
import re
from pathlib import Path

from print_room import ROOT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kartud.rules.signing import public_key_base64

DOC = Path(__file__).resolve().parent.parent / "docs" / "mqtt.md"


def example_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/mqtt.md should hold exactly one Python example"
    return blocks[0]


def test_the_signed_submission_example_works_against_the_real_daemon(room, tmp_path):
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "office.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    room.overrides.update({"security.signing": '"required"',
                           "security.trusted_keys": json.dumps([public_key_base64(key)])})
    room.start()
    namespace: dict = {}
    exec(compile(example_code(), str(DOC), "exec"), namespace)
    job = room.job()

    answer = namespace["submit"]("127.0.0.1", room.broker.port, ROOT, job, str(key_file))
    assert answer["status"] == "ok" and answer["data"]["state"] == "queued"
    again = namespace["submit"]("127.0.0.1", room.broker.port, ROOT, job, str(key_file))
    assert again["data"]["resubmitted"] is True

    other = Ed25519PrivateKey.generate()
    other_file = tmp_path / "other.pem"
    other_file.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    refused = namespace["submit"]("127.0.0.1", room.broker.port, ROOT, room.job(), str(other_file))
    assert refused["error"]["code"] == "bad_signature"
    assert room.query("SELECT COUNT(*) FROM jobs") == [(1,)]
