"""Hostile input through the real broker: thousands of generated payloads, each refused, nothing changed.

CI sends ``KARTUD_FUZZ_EXAMPLES`` payloads (default 1,500); the full run of 10,000 is
``KARTUD_FUZZ_EXAMPLES=10000 ./scripts/test tests/test_fuzz.py``.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("KARTUD_FUZZ_EXAMPLES", "1500"))
ERROR_CODES = {"invalid_payload", "payload_too_large", "duplicate_record", "duplicate_nik", "unsupported_card_type",
               "job_id_conflict", "bad_signature", "expired", "not_found", "not_cancellable", "not_in_doubt",
               "batch_conflict", "unknown_command", "retained_request"}
TABLES = ("jobs", "printed_records", "blank_stock", "blank_batches", "blank_movements", "blank_adjustments")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A tiny file that claims a huge image: a few KB of zeros that would inflate to gigabytes."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    body = _png_chunk(b"IDAT", zlib.compress(b"\0" * 200000, 9))
    return b"\x89PNG\r\n\x1a\n" + header + body + _png_chunk(b"IEND", b"")


def card_sized_garbage() -> bytes:
    """Right size in the header, nonsense in the data."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1016, 648, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + _png_chunk(b"IDAT", b"\x78\x9cnot zlib at all") + _png_chunk(b"IEND", b"")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=15)
niks = st.one_of(st.text(alphabet="0123456789", min_size=0, max_size=20),
                 st.sampled_from(["9901010000000000", "9901011300000001", "9901010001000001", "9901017201000001",
                                  "990101400100000１", "99010141010000a1", "", " " * 16, "9" * 16]))
bad_images = st.one_of(
    st.just(base64.b64encode(png_bomb(100000, 100000)).decode()),
    st.just(base64.b64encode(png_bomb(1016, 648)).decode()),          # right size, wrong data length
    st.just(base64.b64encode(card_sized_garbage()).decode()),
    st.text(max_size=30),                                               # not base64
    st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),  # base64 of garbage
    st.just("====" * 10))
huge = st.integers(min_value=1000, max_value=200000).map(lambda n: "A" * n)
field_values = st.one_of(json_values, niks, bad_images, huge)
job_like = st.dictionaries(
    st.sampled_from(["job_id", "record_id", "card_type", "nik", "front_png", "back_png", "chip", "priority",
                     "not_after", "reprint", "sig", "request_id", "extra"]),
    field_values, max_size=10).map(lambda d: {**d, "front_png": d.get("front_png", "not base64!")})
deep = st.integers(min_value=50, max_value=50000).map(lambda n: ("[" * n + "]" * n).encode())
raw_payloads = st.one_of(
    job_like.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=200),                                            # mostly not UTF-8 / not JSON
    json_values.map(lambda v: json.dumps(v).encode()),                  # JSON, but rarely an object
    deep)
commands = st.sampled_from(["job/submit"] * 6 + ["job/resolve", "job/cancel", "blanks/adjust", "blanks/receive",
                                                  "report/daily", "no/such/command"])


def dump(room) -> list:
    return [room.query(f"SELECT * FROM {table}") for table in TABLES]


def test_hostile_payloads_are_each_refused_and_change_nothing(room):
    room.overrides["mqtt.max_payload_bytes"] = "200000"
    room.start()
    room.receive_blanks(10)
    before = dump(room)
    answered = {"count": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(command=commands, payload=raw_payloads)
    def hostile(command, payload):
        if command == "blanks/receive" and payload.startswith(b"{"):
            payload = payload[:-1] + b', "count": -1}' if payload != b"{}" else b'{"count": -1}'
        answer = room.office.request(command, payload, timeout=20)
        answered["count"] += 1
        assert answer["status"] == "error", (command, payload[:200], answer)
        assert answer["error"]["code"] in ERROR_CODES and answer["error"]["message"]

    hostile()
    assert answered["count"] >= min(EXAMPLES, 100)
    assert room.process.poll() is None                         # still up
    assert dump(room) == before                                 # and nothing changed
    assert room.office.request("status/get", {})["status"] == "ok"
    assert "Traceback" not in room.log()
