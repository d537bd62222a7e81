"""Requests for the fuzz tests: a good request of any command with some of its fields swapped for any value, signed or not, and the checks on its answer."""

from __future__ import annotations

import base64
import json
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fuzz_contract import (COMMANDS, CONTRACT_CODES, DEFECT_CODES, STATES, Expectation, Facts, bad, either,
                           judge_fields, plain_text)
from fuzz_domains import (Marker, Raw, any_value, deep, has_lone_surrogate, has_marker,
                          not_utf8, numbers, raw, strings, times)
from fuzz_jobs import GOOD_FACES, SEEDED_JOBS, SUBMIT_BUSINESS, good_job, job_ids, judge_submit, near_job_value
from hypothesis import strategies as st

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))          # the office's key, trusted by the station
INTRUDER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))   # a key nobody trusts
texts = st.text(max_size=40)                                           # any Unicode UTF-8 can carry
request_ids = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
notes = texts.map(lambda t: "seen: " + t)
batch_ids = st.one_of(st.integers(1, 10**6).map(lambda n: f"B-fz-{n}"), st.sampled_from(["B-KTP_EL", "B-KIA"]))
GOOD: dict[str, dict[str, st.SearchStrategy]] = {
    "job/get": {"job_id": st.sampled_from(sorted(SEEDED_JOBS)) | job_ids},
    "job/list": {"state": st.sampled_from(STATES), "limit": st.integers(1, 1000)},
    "job/cancel": {"job_id": st.sampled_from(sorted(SEEDED_JOBS)) | job_ids},
    "job/resolve": {"job_id": st.sampled_from(sorted(SEEDED_JOBS)) | job_ids, "outcome": st.sampled_from(
        ["printed", "spoiled"]), "note": notes, "attempts": st.integers(0, 3)},
    "queue/pause": {"reason": texts},
    "queue/resume": {},
    "blanks/receive": {"batch_id": batch_ids, "card_type": st.sampled_from(["KTP_EL", "KIA"]),
                       "count": st.integers(1, 100) | st.integers(1, 100000), "note": texts},
    "blanks/adjust": {"card_type": st.sampled_from(["KTP_EL", "KIA"]),
                      "delta": st.integers(-40, 40).filter(bool) | st.integers(1, 100000),
                      "reason": notes, "adjustment_id": batch_ids.map(lambda b: "adj" + b[1:])},
    "maintenance/cleaned": {"note": texts},
    "status/get": {},
    "report/daily": {"date": st.sampled_from(["0001-01-01", "9999-12-31", "2026-11-27", "2024-02-29", "1970-01-01"])
                     | st.dates(date(1, 1, 1), date(9999, 12, 31)).map(date.isoformat)
                     | st.dates(date(2026, 1, 1), date(2027, 12, 31)).map(date.isoformat)},
}
REQUIRED = {"job/get": ["job_id"], "job/cancel": ["job_id"], "job/resolve": ["job_id", "outcome", "note"],
            "blanks/receive": ["batch_id", "card_type", "count"], "blanks/adjust": ["card_type", "delta", "reason"],
            "report/daily": ["date"]}
NEAR = {"limit": numbers, "count": numbers, "delta": numbers, "attempts": numbers, "date": times,
        "state": st.sampled_from(["QUEUED", "queued ", "in-doubt", "done", ""]).map(raw),
        "outcome": st.sampled_from(["Printed", "spoilt", "printed\0", "", "ok"]).map(raw),
        "card_type": st.sampled_from(["ktp_el", "KTP-EL", "KIA ", "SIM", ""]).map(raw)}
SHAPES = [b"", b"[]", b'"{}"', b"1", b"null", b"true", b"{}{}", b'{"a":1,}', b"{'a':1}", b'{"a" 1}', b'{"a":1',
          b"{", b"}", b'{"a":1}garbage', b"\xff\xfe{\x00}\x00", b'{"request_id":"r"}\x00']
SPACES = [(b"", b""), (b" \n\t", b"\r\n "), (b"\xef\xbb\xbf", b"")]


def ts_now(now: float, offset_minutes: int, delta: int) -> Raw:
    zone = timezone(timedelta(minutes=offset_minutes))
    return raw(datetime.fromtimestamp(now + delta, zone).isoformat())


class Request:
    """One generated request: its keys and values in order, how it is signed, and its framing.
    (A plain class, not a dataclass, so that hypothesis reports it by its short ``repr``.)"""

    def __init__(self, command: str, pairs: list, sign: str, shape: bytes | None = None, space=(b"", b"")):
        self.command = command
        self.pairs = pairs          # [(key Raw, value Raw)], duplicates allowed
        self.sign = sign            # "none", "good", "intruder" or "field" (a sig from the domains, in pairs)
        self.shape = shape          # bytes that replace the whole object, or None
        self.space = space          # bytes before and after the object

    def readings(self, tag: str) -> tuple[dict, dict]:
        """What a reader makes of the object: keeping the last of duplicate keys (as Python) and the first."""
        last, first = {}, {}
        for key, value in self._tagged(tag):
            last[key.value] = value.value
            first.setdefault(key.value, value.value)
        return last, first

    def _tagged(self, tag: str) -> list:
        if not tag:
            return self.pairs
        return [(k, Raw(b'"' + tag.encode() + v.text[1:], tag + v.value)
                 if k.value == "request_id" and v.is_string and v.text.startswith(b'"') else v) for k, v in self.pairs]

    def payload(self, topic: str, tag: str = "") -> bytes:
        """The bytes sent on ``topic``; ``tag`` goes in front of a string request_id (to keep ids apart)."""
        if self.shape is not None:
            return self.shape
        pairs = self._tagged(tag)
        if self.sign in ("good", "intruder"):
            last, first = self.readings(tag)
            key = KEY if self.sign == "good" else INTRUDER
            signature = key.sign(signed_bytes(topic, last)) if signable(last) else bytes([90]) * 64
            pairs = pairs + [(raw("sig"), raw(base64.b64encode(signature).decode()))]
        body = b"{" + b",".join(k.text + b":" + v.text for k, v in pairs) + b"}"
        return self.space[0] + body + self.space[1]

    def expect(self, mode: str, facts: Facts, size: int, tag: str = "") -> Expectation:
        """What the contract says of this request at a station whose ``security.signing`` is ``mode``."""
        unknown = set() if self.command in COMMANDS or self.command == "job/submit" else {"unknown_command"}
        if size > facts.max_payload:
            return Expectation(True, {"payload_too_large"} | unknown, ["larger than mqtt.max_payload_bytes"])
        if self.shape is not None:
            return Expectation(True, {"invalid_payload"} | unknown, ["not a UTF-8 JSON object"])
        last, first = self.readings(tag)
        sig = last.get("sig", None)
        signed = mode != "off" and (self.sign in ("good", "intruder") or "sig" in last)
        values = [v.value for _, v in self._tagged(tag)]
        spoiled = [v for v in values if isinstance(v, Marker) and v.whole]
        if spoiled:                                     # not UTF-8 JSON, even in a value a duplicate hides
            return Expectation(True, {"invalid_payload"} | unknown, [f"a value is {spoiled[0].what}"])
        submit = judge_submit if self.command == "job/submit" else None
        # Duplicate keys: a reader may keep the last (as Python does) or the first; the request must be
        # refused only when it must be refused either way.
        found, *other = [judge_fields(self.command, reading, facts, signed and self.sign == "good", submit)
                         for reading in ([last, first] if last != first else [last])]
        for one in other:
            must = found.must_refuse and one.must_refuse
            found.add_all(one)
            found.must_refuse = must
        if self.space[0].startswith(b"\xef\xbb\xbf"):
            found.add(either("a byte order mark before the JSON"))
        if has_marker(values):
            found.add(either("a value Python's JSON reader cannot hold, perhaps under a duplicate key"))
        if mode == "required" and not signed:
            found.add(bad("unsigned at a station that requires signatures", "bad_signature"))
        elif signed:
            if self.sign == "intruder" or not signable(last):
                found.add(bad("signed by no trusted key, or over text no signature covers", "bad_signature",
                              "invalid_payload"))
            elif self.sign == "field":
                codes = ("bad_signature", "invalid_payload")
                found.add(either("sig is null", *codes) if sig is None and mode == "optional" else
                          bad("sig is no signature of this request", *codes))
            elif last != first:
                found.add(either("signed, with duplicate keys", "bad_signature", "invalid_payload"))
        return found

    def readable_request_id(self, tag: str = "") -> str | None:
        """The request_id every answer must echo: a plain string, read the same by any reader."""
        if self.shape is not None or self.space[0].startswith(b"\xef\xbb\xbf"):
            return None                                 # a reader that refuses a byte order mark reads no id
        last, first = self.readings(tag)
        rid = last.get("request_id")
        if last.get("request_id") != first.get("request_id") or not isinstance(rid, str):
            return None
        if not plain_text(rid) or not 1 <= len(rid) <= 64 or has_marker([v.value for _, v in self.pairs]):
            return None
        return rid

    def __repr__(self) -> str:
        body = self.payload("kartud/<station>/request/" + self.command)
        for name, face in zip(("landscape", "portrait"), GOOD_FACES):
            body = body.replace(face.encode(), b"<%s face>" % name.encode())
        body = re.sub(rb'"([A-Za-z0-9+/=]{40})[A-Za-z0-9+/=]{20,}"', rb'"\1...(base64)"', body)
        shown = body if len(body) <= 1000 else body[:800] + b"...(%d bytes)" % len(body)
        return f"Request({self.command!r}, sign={self.sign!r}, payload={shown!r})"


def signed_bytes(topic: str, payload: dict) -> bytes:
    """The contract's signed bytes, written from the contract (not taken from kartud)."""
    body = {k: v for k, v in payload.items() if k != "sig"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{topic}\n{canonical}".encode("utf-8")


def signable(payload: dict) -> bool:
    return not has_marker(payload) and not has_lone_surrogate(payload)


@st.composite
def requests(draw, command: str, mode: str, now: Callable[[], float]) -> Request:
    """A request of ``command`` for a station signing ``mode``: good, then up to three fields swapped for any value."""
    if command == "job/submit":
        values = draw(good_job(now()))
        names, near = list(values) + ["back_png", "not_after", "reprint", "priority"], near_job_value
    else:
        good = GOOD.get(command, {})
        values = {n: raw(draw(s)) for n, s in good.items() if n in REQUIRED.get(command, []) or draw(st.booleans())}
        names, near = list(good) or ["reason"], lambda n: st.one_of(NEAR.get(n, strings), any_value)
    if draw(st.booleans()):
        values["request_id"] = raw(draw(request_ids))
    signing = {"off": ["none", "none", "field"], "optional": ["none", "good", "intruder", "field"],
               "required": ["good", "good", "none", "intruder", "field"]}[mode]
    sign = draw(st.sampled_from(signing))
    if sign in ("good", "intruder"):
        values.setdefault("request_id", raw(draw(request_ids)))
        values["ts"] = ts_now(now(), draw(st.integers(-720, 840)), draw(st.sampled_from([0, -60, -29 * 86400, 120])))
    elif sign == "field":
        values["sig"] = draw(st.one_of(st.binary(min_size=64, max_size=64).map(
            lambda b: raw(base64.b64encode(b).decode())), any_value, st.just(raw(None))))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):   # swap fields for any value, or drop them
        name = draw(st.sampled_from(names + ["request_id"] + (["ts"] if sign != "none" else [])))
        if draw(st.integers(0, 5)) == 0:
            values.pop(name, None)
        else:
            values[name] = draw(near(name) if name not in ("request_id", "ts") else st.one_of(strings, times, any_value))
    pairs = [(raw(name), value) for name, value in values.items()]
    if draw(st.integers(0, 7)) == 0:                      # a field the command does not have
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(strings), draw(any_value)))
    if pairs and draw(st.integers(0, 7)) == 0:            # a key given twice, perhaps written another way
        key, _ = pairs[draw(st.integers(0, len(pairs) - 1))]
        spelled = Raw(key.text.replace(b"_", b"\\u005f").replace(b"a", b"\\u0061"), key.value)
        pairs.append((draw(st.sampled_from([key, spelled])), draw(any_value)))
    shape = None
    if draw(st.integers(0, 15)) == 0:
        shape = draw(st.one_of(st.sampled_from(SHAPES), deep.map(lambda r: r.text).filter(lambda t: t[:1] == b"["),
                               not_utf8.map(lambda r: b"{" + r.text + b"}")))
    return Request(command, pairs, sign, shape, draw(st.sampled_from(SPACES)) if draw(st.integers(0, 7)) == 0
                   else (b"", b""))


def business_codes(command: str) -> set:
    return set(SUBMIT_BUSINESS) if command == "job/submit" else set(COMMANDS[command].business) \
        if command in COMMANDS else set()


def check_answer(request: Request, expected: Expectation, answer: Any, tag: str = "") -> None:
    """The answer is one JSON object with a status; an error carries a contract code this request may get."""
    assert isinstance(answer, dict), f"the answer is not an object: {answer!r}"
    json.dumps(answer, allow_nan=False)                   # strict JSON: no NaN or Infinity in it
    assert answer.get("status") in ("ok", "error"), answer
    if answer["status"] == "error":
        error = answer.get("error")
        assert isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"], answer
        code = error.get("code")
        assert code in CONTRACT_CODES, f"{code!r} is no error code of the contract"
        assert code not in DEFECT_CODES, f"{code}: the request hit a defect ({error['message']})"
        # A refusal may name the request's first problem the box met: for the commands that look a job up,
        # "no such job" or "not in doubt" is as true an answer to a bad request as its bad field.
        looked_up = request.command in ("job/get", "job/cancel", "job/resolve")
        # A passed not_after is judged in the store beside the job's id, record and NIK (so that a repeat
        # gets its first answer): a job id already taken is as true a first answer as "expired".
        in_the_store = request.command == "job/submit" and "expired" in expected.codes
        allowed = expected.codes | (business_codes(request.command) if looked_up or in_the_store
                                    or not expected.must_refuse else set())
        assert code in allowed, (f"refused with {code} ({error['message']}); the contract allows "
                                 f"{sorted(allowed) or 'no refusal'} ({'; '.join(expected.reasons) or 'a valid request'})")
    else:
        assert "data" in answer, answer
        assert not expected.must_refuse, f"accepted; must be refused with one of {sorted(expected.codes)} " \
                                         f"({'; '.join(expected.reasons)})"
    rid = request.readable_request_id(tag)
    if rid is not None and "payload_too_large" not in expected.codes:
        assert answer.get("request_id") == rid, f"request_id {rid!r} not echoed: {answer.get('request_id')!r}"
