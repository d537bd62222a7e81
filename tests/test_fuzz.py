"""Hostile input through the real broker against the daemon process: every answer one, with a code; nothing changed unless valid.

Two kinds of runs. The first sends shapeless hostile payloads (PNG bombs, random bytes, any JSON)
to the commands that change things: each is refused and nothing changes. The others send a good
request of every command with fields swapped for any value of any domain (tests/fuzz_domains.py),
signed or not, published as raw bytes with a Response Topic and Correlation Data: the process
never exits, each request gets exactly one answer, a JSON object with a status and, for an error,
a code the contract allows for it (tests/fuzz_contract.py), and the database changes only for an
accepted request. The same requests through the handlers alone are tests/test_fuzz_handlers.py.

CI sends a share of ``KARTUD_FUZZ_EXAMPLES`` requests (2,000 over all fuzz tests by default) to each
test; the long run of 100,000 is
``KARTUD_FUZZ_EXAMPLES=100000 ./scripts/test tests/test_fuzz.py tests/test_fuzz_handlers.py``.
"""

from __future__ import annotations

import base64
import json

import pytest
from fuzz_broker import MAX_PAYLOAD, FuzzRoom, read_answer
from fuzz_contract import COMMANDS, Facts
from fuzz_domains import TIMEOUT_S, card_sized_garbage, png_bomb, share, shrinking_for_at_most
from fuzz_domains import raw
from fuzz_requests import Request, check_answer, requests, ts_now
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from print_room import ROOT

pytestmark = pytest.mark.timeout(TIMEOUT_S)
EXAMPLES = share(0.25)
ERROR_CODES = {"invalid_payload", "payload_too_large", "duplicate_record", "duplicate_nik", "unsupported_card_type",
               "job_id_conflict", "bad_signature", "expired", "not_found", "not_cancellable", "not_in_doubt",
               "batch_conflict", "unknown_command", "retained_request"}
TABLES = ("jobs", "printed_records", "blank_stock", "blank_batches", "blank_movements", "blank_adjustments")
READ_ONLY = {name for name, spec in COMMANDS.items() if not spec.changes}


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


# -- every field of every command, over every domain, through the broker --------------------------

def fuzz_settings(fraction: float):
    return settings(max_examples=share(fraction), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example,
                                           HealthCheck.filter_too_much])


def fuzz_through_the_broker(room, mode: str, commands: list[str], fraction: float) -> None:
    """Send generated requests of ``commands`` one by one to a daemon signing ``mode``, checking each
    answer and the database; then every request has had exactly one answer and the daemon still answers."""
    fuzz = FuzzRoom(room, mode)
    sent: list[bytes] = []
    last = ["(none)"]

    @fuzz_settings(fraction)
    @given(data=st.data())
    def one_request(data):
        fuzz.revive(last[0])
        command = data.draw(st.sampled_from(commands), label="command")
        request = data.draw(requests(command, mode, fuzz.now), label="request")
        tag = f"{len(sent)}:"                                  # no two requests share a request_id
        payload = request.payload(f"{ROOT}/request/{command}", tag)
        last[0] = request
        facts = Facts(now=fuzz.now(), stock=None, max_payload=MAX_PAYLOAD, fresh=False)
        before = fuzz.snapshot()
        correlation = fuzz.wire.send(command, payload)
        sent.append(correlation)
        answer = read_answer(fuzz.wire.wait(correlation, room.process))
        check_answer(request, request.expect(mode, facts, len(payload), tag), answer, tag)
        event(f"{command}: {answer['status'] if answer['status'] == 'ok' else answer['error']['code']}")
        after = fuzz.snapshot()
        if answer["status"] == "error" or command in READ_ONLY:
            assert after == before, "the database changed: " + ", ".join(n for n in before if before[n] != after[n])

    try:
        with shrinking_for_at_most(25):
            one_request()
        fuzz.revive(last[0])
        last_one = Request("status/get", [(raw("request_id"), raw("barrier")), (raw("ts"), ts_now(fuzz.now(), 0, 0))],
                           "good" if mode != "off" else "none")
        barrier = fuzz.wire.send("status/get", last_one.payload(f"{ROOT}/request/status/get"))
        assert read_answer(fuzz.wire.wait(barrier, room.process))["status"] == "ok"   # still up, still answering
        assert not fuzz.deaths, "\n".join(fuzz.deaths)
        twice = {c: len(fuzz.wire.answers[c]) for c in sent if len(fuzz.wire.answers[c]) != 1}
        assert not twice, f"requests answered other than once: {sorted(twice.values())}"
        assert not fuzz.wire.stray, f"answers to no request of ours: {fuzz.wire.stray[:3]}"
    finally:
        fuzz.close()


def test_job_submit_any_field_any_value_through_the_broker(room):
    fuzz_through_the_broker(room, "optional", ["job/submit"], 0.09)


def test_job_commands_any_field_any_value_through_the_broker(room):
    fuzz_through_the_broker(room, "optional", ["job/get", "job/list", "job/cancel", "job/resolve"], 0.05)


def test_blanks_queue_maintenance_status_report_any_field_any_value_through_the_broker(room):
    fuzz_through_the_broker(room, "optional", ["blanks/receive", "blanks/adjust", "queue/pause", "queue/resume",
                                                "maintenance/cleaned", "status/get", "report/daily"], 0.06)


@pytest.mark.parametrize("mode", ["required", "off"])
def test_every_command_any_field_any_value_through_the_broker(room, mode):
    fuzz_through_the_broker(room, mode, [*COMMANDS, "job/submit", "no/such/command"], 0.025)
