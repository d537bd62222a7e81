"""The contract as an oracle: for any request, whether it must be refused, may be, and with which error codes.

Each field of each command is judged on what a JSON reader makes of it: ``VALID`` (the contract
accepts it), ``INVALID`` (the contract refuses it: the answer must be an error with one of the
codes), or ``EITHER`` (the contract is silent: accepting and refusing with one of the codes are both
right, crashing is not). A request is judged by the worst of its fields, its signature and its shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from fuzz_domains import Marker, has_marker

VALID, EITHER, INVALID = 0, 1, 2
MISSING = Marker("absent")
# The contract's error codes. internal_error and storage_error are in it, but a fuzz test that meets
# them has met a defect (or a broken disk), so they are never an acceptable answer here.
CONTRACT_CODES = {"invalid_payload", "payload_too_large", "duplicate_record", "duplicate_nik", "unsupported_card_type",
                  "job_id_conflict", "bad_signature", "expired", "not_found", "not_cancellable", "not_in_doubt",
                  "batch_conflict", "unknown_command", "retained_request", "stale_request", "invalid_response_topic",
                  "storage_error", "internal_error"}
DEFECT_CODES = {"internal_error", "storage_error"}
ID = re.compile(r"[A-Za-z0-9._:-]{1,64}", re.ASCII)
STATES = ("queued", "printing", "printed", "failed", "cancelled", "expired", "in_doubt")
CARD_TYPES = ("KTP_EL", "KIA")
DAY = 86400
REPLAY_WINDOW_S = 30 * DAY                 # security.replay_window_days, default 30
AHEAD_S = 300                              # a signed ts may be at most 5 minutes ahead


@dataclass(frozen=True)
class Verdict:
    kind: int
    codes: frozenset = frozenset()
    why: str = ""


def ok(why: str = "") -> Verdict:
    return Verdict(VALID, frozenset(), why)


def either(why: str, *codes: str) -> Verdict:
    return Verdict(EITHER, frozenset(codes or ("invalid_payload",)), why)


def bad(why: str, *codes: str) -> Verdict:
    return Verdict(INVALID, frozenset(codes or ("invalid_payload",)), why)


@dataclass
class Facts:
    """What the oracle knows of the station: its clock (UTC seconds) and, when known, its blanks in stock."""

    now: float
    stock: dict[str, int] | None = None         # None: not known (a daemon that has taken requests before)
    max_payload: int = 65536
    fresh: bool = True                         # False: earlier requests may have used the same ids


# -- the pieces of the contract -------------------------------------------------------------------

def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def integral_float(v: Any) -> bool:
    return isinstance(v, float) and v == v and abs(v) != float("inf") and v == int(v)


def encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def plain_text(s: str) -> bool:
    """Text any UTF-8 reader shows as it is: no lone surrogate, no control character (C0, DEL, C1)."""
    return encodable(s) and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in s)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, for any year (no datetime range limit)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _month_days(y: int, m: int) -> int:
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]


RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})([Tt ])(\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)
FIRST, LAST = _days_from_civil(1, 1, 1) * DAY, (_days_from_civil(10000, 1, 1)) * DAY   # datetime's range, in UTC


def instant(text: str) -> tuple[str, float | None]:
    """``("strict", t)`` for an RFC 3339 date-time with offset as the contract writes it (t: UTC seconds),
    ``("lenient", t)`` for forms RFC 3339 allows or ISO 8601 readers take that a strict reader may refuse
    (t None when naive or not placeable), ``("naive", None)`` without an offset, ``("bad", None)`` otherwise."""
    m = RFC3339.fullmatch(text)
    if m:
        y, mo, d, sep, h, mi, s, frac, off = m.groups()
        y, mo, d, h, mi, s = map(int, (y, mo, d, h, mi, s))
        shift = 0
        if off not in "Zz":
            oh, om = int(off[1:3]), int(off[4:6])
            if oh > 23 or om > 59:
                return "bad", None
            shift = (oh * 60 + om) * 60 * (1 if off[0] == "+" else -1)
        if not (1 <= mo <= 12) or h > 23 or mi > 59 or s > 60 or not (1 <= d <= _month_days(y, mo)):
            return "bad", None
        t = _days_from_civil(y, mo, d) * DAY + h * 3600 + mi * 60 + min(s, 59) - shift
        strict = sep == "T" and off != "z" and s < 60 and y > 0
        return ("strict" if strict else "lenient"), t
    try:
        parsed = datetime.fromisoformat(text)   # only to know which near misses an ISO 8601 reader would take
    except (TypeError, ValueError):
        return "bad", None
    if parsed.tzinfo is None:
        return "naive", None
    return "lenient", parsed.astimezone(timezone.utc).timestamp() if parsed.year > 1 else None


def judge_not_after(v: Any, facts: Facts) -> Verdict:
    if v is MISSING:
        return ok()
    if v is None:
        return either("not_after is null", "invalid_payload")
    if not isinstance(v, str):
        return bad("not_after is not a string")
    kind, t = instant(v)
    if kind in ("bad", "naive"):
        return bad(f"not_after is {kind}")
    if t is None or t <= facts.now:
        return bad("not_after has passed", "expired", "invalid_payload")
    if kind == "lenient":
        return either("not_after in a lenient form", "invalid_payload", "expired")
    if t >= LAST - 14 * 3600 or t < facts.now + 3600:
        return either("not_after at the end of time (or about to pass)", "invalid_payload", "expired")
    return ok()


def judge_ts(v: Any, facts: Facts) -> Verdict:
    codes = ("stale_request", "invalid_payload", "bad_signature")
    if v is MISSING or not isinstance(v, str):
        return bad("a signed request without a ts string", *codes)
    kind, t = instant(v)
    if t is None or kind in ("bad", "naive"):
        return bad(f"ts is {kind}", *codes)
    inside = facts.now - REPLAY_WINDOW_S + 60 <= t <= facts.now + AHEAD_S - 60
    near_edge = facts.now - REPLAY_WINDOW_S - 60 <= t <= facts.now - REPLAY_WINDOW_S + 60 or \
        facts.now + AHEAD_S - 60 <= t <= facts.now + AHEAD_S + 60
    if near_edge:
        return either("ts at the edge of the window", *codes)
    if not inside:
        return bad("ts outside the replay window", *codes)
    return ok() if kind == "strict" else either("ts in a lenient form", *codes)


def judge_id(name: str, *also: str) -> Callable[[Any, Facts], Verdict]:
    def judge(v: Any, facts: Facts) -> Verdict:
        if isinstance(v, str) and ID.fullmatch(v):
            return ok()
        return bad(f"{name} is {'absent' if v is MISSING else 'not 1-64 of A-Z a-z 0-9 . _ : -'}", "invalid_payload",
                   *also)
    return judge


def judge_card_type(v: Any, facts: Facts) -> Verdict:
    return ok() if v in CARD_TYPES else bad("card_type unknown", "invalid_payload", "unsupported_card_type")


def judge_text(name: str, required: bool) -> Callable[[Any, Facts], Verdict]:
    """A free text (a note, a reason): any string; very long, blank or lone-surrogate text may be refused."""
    def judge(v: Any, facts: Facts) -> Verdict:
        if v is MISSING:
            return bad(f"{name} is required") if required else ok()
        if v is None:
            return bad(f"{name} is null") if required else either(f"{name} is null")
        if not isinstance(v, str):
            return bad(f"{name} is not a string")
        if not plain_text(v) or len(v) > 500 or (required and not v.strip()):
            return either(f"{name} is long, blank, or holds a control character or a lone surrogate")
        return ok()
    return judge


def judge_int(name: str, low: int, high: int, hard_low: int | None = None, default_ok: bool = True):
    """An integer in ``low..high`` is valid; beyond that up to no contract bound (``hard_low``) it may be refused."""
    def judge(v: Any, facts: Facts) -> Verdict:
        if v is MISSING:
            return ok() if default_ok else bad(f"{name} is required")
        if integral_float(v) and low <= v <= high:
            return either(f"{name} is an integral float")
        if not is_int(v):
            return bad(f"{name} is not an integer")
        if low <= v <= high:
            return ok()
        if hard_low is not None and v >= hard_low:
            return either(f"{name} is beyond the usual range")
        return bad(f"{name} is out of range")
    return judge


def judge_date(v: Any, facts: Facts) -> Verdict:
    if not isinstance(v, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v, re.ASCII):
        return bad("date is not YYYY-MM-DD")
    y, m, d = int(v[:4]), int(v[5:7]), int(v[8:])
    if not (1 <= m <= 12) or not (1 <= d <= _month_days(y, m)):
        return bad("date is no calendar day")
    if y in (0, 1, 9999):
        return either("date at the end of the calendar")
    return ok()


def judge_delta(v: Any, facts: Facts) -> Verdict:
    if (is_int(v) or integral_float(v)) and v == 0:
        return bad("delta is zero")
    if integral_float(v) and abs(v) <= 100000:
        return either("delta is an integral float")
    if not is_int(v):
        return bad("delta is not an integer")
    return ok() if abs(v) <= 100000 else either("delta is beyond the usual range")


def judge_state(v: Any, facts: Facts) -> Verdict:
    if v is MISSING or v in STATES:
        return ok()
    return either("state is null") if v is None else bad("state is no job state")


def judge_outcome(v: Any, facts: Facts) -> Verdict:
    return ok() if v in ("printed", "spoiled") else bad("outcome is neither printed nor spoiled")


# -- commands -------------------------------------------------------------------------------------

@dataclass
class Command:
    fields: dict[str, Callable[[Any, Facts], Verdict]]
    business: frozenset                         # refusals a valid request may still get
    changes: bool = True                        # False: read only, never changes the database
    cross: Callable[[dict, Facts], Verdict | None] | None = None
    strict_extras: bool = False


def _adjust_cross(payload: dict, facts: Facts) -> Verdict | None:
    """v1.1: an adjustment needs a request_id or an adjustment_id; and stock never goes below zero."""
    if not isinstance(payload.get("request_id"), str) and "adjustment_id" not in payload:
        return bad("blanks/adjust with neither request_id nor adjustment_id")
    delta, card_type = payload.get("delta"), payload.get("card_type")
    if is_int(delta) and delta < 0 and card_type in CARD_TYPES:
        if facts.stock is None:
            return either("delta may take the stock below zero")
        if facts.stock[card_type] + delta < 0:
            return bad("delta takes the stock below zero")
    return None


def _resolve_attempts(v: Any, facts: Facts) -> Verdict:
    if v is MISSING or (is_int(v) and v >= 0):
        return ok()
    if is_int(v):
        return either("attempts is negative: no job view shows that", "invalid_payload", "stale_request")
    return either("attempts is an integral float", "invalid_payload", "stale_request") if integral_float(v) else \
        bad("attempts is not an integer", "invalid_payload", "stale_request")


COMMANDS: dict[str, Command] = {
    "job/get": Command({"job_id": judge_id("job_id", "not_found")}, frozenset({"not_found"}), changes=False),
    "job/list": Command({"state": judge_state, "limit": judge_int("limit", 1, 1000)}, frozenset(), changes=False),
    "job/cancel": Command({"job_id": judge_id("job_id", "not_found")}, frozenset({"not_found", "not_cancellable"})),
    "job/resolve": Command({"job_id": judge_id("job_id", "not_found"), "outcome": judge_outcome,
                            "note": judge_text("note", required=True), "attempts": _resolve_attempts},
                           frozenset({"not_found", "not_in_doubt", "stale_request"})),
    "queue/pause": Command({"reason": judge_text("reason", required=False)}, frozenset()),
    "queue/resume": Command({}, frozenset()),
    "blanks/receive": Command({"batch_id": judge_id("batch_id"), "card_type": judge_card_type,
                               "count": judge_int("count", 1, 100000, hard_low=1, default_ok=False),
                               "note": judge_text("note", required=False)}, frozenset({"batch_conflict"})),
    "blanks/adjust": Command({"card_type": judge_card_type, "delta": judge_delta,
                              "reason": judge_text("reason", required=True), "adjustment_id": judge_id("adjustment_id")},
                             frozenset(), cross=_adjust_cross),
    "maintenance/cleaned": Command({"note": judge_text("note", required=False)}, frozenset()),
    "status/get": Command({}, frozenset(), changes=False),
    "report/daily": Command({"date": judge_date}, frozenset(), changes=False),
}
# Optional fields are judged only when present; MISSING reaches the judge of a required one.
OPTIONAL = {("job/list", "state"), ("job/list", "limit"), ("job/resolve", "attempts"), ("queue/pause", "reason"),
            ("blanks/receive", "note"), ("blanks/adjust", "adjustment_id"), ("maintenance/cleaned", "note")}
TRANSPORT = ("request_id", "sig", "ts")


@dataclass
class Expectation:
    must_refuse: bool = False
    codes: set = field(default_factory=set)         # the refusals that are right
    reasons: list = field(default_factory=list)

    def add(self, verdict: Verdict | None) -> None:
        if verdict is None or verdict.kind == VALID:
            return
        self.must_refuse |= verdict.kind == INVALID
        self.codes |= verdict.codes
        self.reasons.append(verdict.why)

    def add_all(self, other: "Expectation") -> None:
        self.must_refuse |= other.must_refuse
        self.codes |= other.codes
        self.reasons += other.reasons


def judge_fields(command: str, payload: dict, facts: Facts, signed: bool, submit_judge=None) -> Expectation:
    """The expectation for one reading of the payload (duplicate keys give two readings)."""
    found = Expectation()
    spec = COMMANDS.get(command)
    if command == "job/submit":
        for verdict in submit_judge(payload, facts):
            found.add(verdict)
    elif spec is None:
        found.add(bad("unknown command", "unknown_command"))
    else:
        for name, judge in spec.fields.items():
            value = payload.get(name, MISSING)
            if value is MISSING and (command, name) in OPTIONAL:
                continue
            found.add(judge(value, facts))
        if spec.cross is not None:
            found.add(spec.cross(payload, facts))
        if command == "blanks/adjust" and not facts.fresh:
            found.codes.add("invalid_payload")         # an adjustment_id an earlier request used otherwise
    if has_marker(payload):
        found.add(either("a value Python's JSON reader cannot hold (thousands of digits, deep nesting)"))
    known = set(COMMANDS[command].fields) if spec else set()
    for name, value in payload.items():
        if isinstance(value, Marker) and value.whole:
            found.add(bad(f"{name} is {value.what}"))
        elif name == "request_id" and not (isinstance(value, str) and plain_text(value) and 1 <= len(value) <= 64):
            found.add(either("request_id is not 1-64 characters of plain text"))
        elif name not in known and name not in TRANSPORT and command in COMMANDS:
            found.add(either(f"an unknown field {name[:20]!r}"))
    if signed:
        found.add(judge_ts(payload.get("ts", MISSING), facts))
        if not isinstance(payload.get("request_id"), str):
            found.add(bad("a signed request without a request_id", "invalid_payload", "bad_signature",
                          "stale_request"))
    return found
