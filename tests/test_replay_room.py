"""The replayed signed job/resolve of issue 14, through a real broker and the daemon process, checked against the printer's own record."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from print_room import ROOT, chip_sha

from kartud.rules.signing import public_key_base64, sign_request

WIB = timezone(timedelta(hours=7))


@pytest.fixture
def signed_room(room):
    """A room whose station requires signed requests, on a real-time clock (a fast simulated clock would make
    the office's ts look old, and a restart look like a clock that went back)."""
    room.key = Ed25519PrivateKey.generate()
    room.overrides.update({"security.signing": '"required"',
                           "security.trusted_keys": json.dumps([public_key_base64(room.key)]),
                           "sim.clock_speed": "1.0", "printer.sim.seconds_per_card": "0.3"})
    return room


def signed(room, command: str, payload: dict, **transport) -> bytes:
    """The bytes an office sends: ``payload`` with a fresh request_id and the office's ts, signed."""
    body = {"request_id": str(uuid.uuid4()), "ts": datetime.now(WIB).isoformat(timespec="seconds"), **transport,
            **payload}
    body = {k: v for k, v in body.items() if v is not None}
    return json.dumps(sign_request(f"{ROOT}/request/{command}", body, room.key)).encode()


def ask(room, command: str, payload: dict, **transport) -> dict:
    return room.office.request(command, signed(room, command, payload, **transport))


def ok(answer: dict) -> dict:
    assert answer["status"] == "ok", answer
    return answer["data"]


def cards_of(room, job: dict) -> list[str]:
    """Where each card made for ``job`` physically went, in order: the simulator's record, not the daemon's."""
    return [c["destination"] for c in room.cards() if c["chip_files_sha256"] == chip_sha(job)]


def test_a_replayed_signed_resolve_changes_nothing_and_no_second_card_leaves(signed_room):
    room = signed_room
    room.env["KARTUD_CRASH_AT"] = "after_print"            # the first card dies in the printer
    room.start()
    ok(ask(room, "blanks/receive", {"batch_id": "B-1", "card_type": "KTP_EL", "count": 10}))
    job, other = room.job(), room.job()
    ok(ask(room, "job/submit", job))
    assert room.process.wait(30) == -9

    room.env["KARTUD_CRASH_AT"] = "after_eject"            # the second card will leave, and the daemon die
    room.start()
    view = ok(ask(room, "job/get", {"job_id": job["job_id"]}))
    # What the operator decides on: which attempt, since when, and where the card was.
    assert (view["state"], view["reason"], view["attempts"], view["in_doubt_step"]) == \
        ("in_doubt", "interrupted", 1, "printing")
    assert view["in_doubt_since"] == view["updated_at"] and view["step"] is None
    assert cards_of(room, job) == []                       # the first card never left the printer

    # A resolve as offices sent it before 1.1 (no request_id, no ts) could be replayed for ever: refused.
    unsafe = sign_request(f"{ROOT}/request/job/resolve", {"job_id": job["job_id"], "outcome": "spoiled",
                                                          "note": "no card came out"}, room.key)
    refusal = room.office.request("job/resolve", unsafe)
    assert refusal["error"]["code"] == "invalid_payload", refusal
    assert {p["field"] for p in refusal["error"]["details"]["problems"]} == {"request_id", "ts"}

    message = signed(room, "job/resolve", {"job_id": job["job_id"], "outcome": "spoiled",
                                           "note": "no card came out"})   # M
    first = room.office.request("job/resolve", message)
    assert ok(first)["state"] == "queued"
    assert room.process.wait(30) == -9                      # killed with a good card in the output hopper
    assert cards_of(room, job) == ["output"]

    room.env.pop("KARTUD_CRASH_AT")
    room.start()
    view = ok(ask(room, "job/get", {"job_id": job["job_id"]}))
    assert (view["state"], view["attempts"], view["in_doubt_step"]) == ("in_doubt", 2, "ejecting")

    replay = room.office.request("job/resolve", message)   # M again, byte for byte
    assert replay == first                                 # its first answer, and nothing done
    stale = ask(room, "job/resolve", {"job_id": job["job_id"], "outcome": "spoiled", "note": "no card came out",
                                      "attempts": 1})      # the first card's decision, sent again as a new request
    assert stale["error"]["code"] == "stale_request", stale
    old = ask(room, "job/resolve", {"job_id": job["job_id"], "outcome": "spoiled", "note": "no card came out"},
              ts=(datetime.now(WIB) - timedelta(days=31)).isoformat(timespec="seconds"))
    assert old["error"]["code"] == "stale_request", old

    # The press takes the oldest queued job first: had the replay re-queued the job, it would print before this.
    ok(ask(room, "job/submit", other))
    room.wait_state(other["job_id"], "printed")
    assert ok(ask(room, "job/get", {"job_id": job["job_id"]}))["state"] == "in_doubt"
    assert cards_of(room, job) == ["output"]               # one good card for the record, not two
    outputs = Counter(c["chip_files_sha256"] for c in room.cards() if c["destination"] == "output")
    assert max(outputs.values()) == 1
    assert room.query("SELECT COUNT(*) FROM audit WHERE kind = 'job_resolved' AND job_id = ?", job["job_id"]) == [(1,)]
