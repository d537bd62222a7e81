"""Jobs: NIK rules, validation (every problem at once), the content hash, the state machine, the view."""

from __future__ import annotations

import base64
import io
import itertools
import random
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kartud.rules import jobs as J
from kartud.rules.errors import CommandError
from kartud.room.fake_people import fake_job
from kartud.service.faces import png_problem

BOTH = ["KTP_EL", "KIA"]


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 200, 200)).save(out, format="PNG")
    return out.getvalue()


LANDSCAPE = _png(1016, 648)
PORTRAIT = _png(648, 1016)
B64 = lambda data: base64.b64encode(data).decode()  # noqa: E731


def good(card_type: str = "KTP_EL", serial: int = 1, **fields) -> dict:
    job = fake_job(random.Random(serial), serial, card_type, job_id=f"j-{serial:04d}",
                   record_id=f"PRR-9999-{serial:06d}", front_png=LANDSCAPE)
    job["nik"] = "3574014107900001"
    job.update(fields)
    return job


def refusal(payload, card_types=BOTH) -> CommandError:
    with pytest.raises(CommandError) as caught:
        J.validate_submission(payload, card_types, png_problem)
    return caught.value


def problems(payload, card_types=BOTH) -> list[dict]:
    error = refusal(payload, card_types)
    assert error.code == "invalid_payload"
    found = error.details["problems"]
    for p in found:
        assert set(p) == {"field", "problem"} and p["field"] and p["problem"]
    return found


def fields_of(payload) -> list[str]:
    return [p["field"] for p in problems(payload)]


# -- NIK ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nik", [
    "3574010107900001",   # a man born 01-07-90
    "3574013112990001",   # day 31
    "3574014107900001",   # a woman: day 01 + 40
    "3574017112990001",   # a woman: day 31 + 40
    "3574015506859999",   # a woman, serial 9999
    "9901010101000001",   # region 99 does not exist: accepted, codes get renumbered
    "0000000101000001",   # region 00: not checked
    "3574010112000001",   # December
])
def test_valid_niks(nik):
    assert J.nik_problem(nik) is None


@pytest.mark.parametrize("nik, what", [
    ("357401010790001", "16 digits"),     # 15 digits
    ("35740101079000011", "16 digits"),   # 17 digits
    ("", "16 digits"),
    ("35740101079O0001", "16 digits"),    # a letter O
    ("3574O10107900001", "16 digits"),
    ("357401010790000 ", "16 digits"),
    (" 357401010790000", "16 digits"),
    ("3574010107900001\n", "16 digits"),
    ("+574010107900001", "16 digits"),
    ("3574-10107900001", "16 digits"),
    ("357401٠١07900001", "16 digits"),    # Arabic-Indic digits are not NIK digits
    ("3574010107900001".translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}), "16 digits"),  # fullwidth
    ("3574010100900001", "month"),        # month 00
    ("3574010113900001", "month"),        # month 13
    ("3574010199900001", "month"),
    ("3574010007900001", "day"),          # day 00
    ("3574013207900001", "day"),          # day 32
    ("3574014007900001", "day"),          # day 40 (a woman's day 00)
    ("3574017207900001", "day"),          # day 72
    ("3574019907900001", "day"),
    ("3574010107900000", "serial"),       # serial 0000
])
def test_invalid_niks(nik, what):
    problem = J.nik_problem(nik)
    assert problem is not None and what in problem


@pytest.mark.parametrize("nik, masked", [
    ("3574014107900001", "357401******0001"),
    ("9901010101000001", "990101******0001"),
    ("12345678901", "123456*8901"),
    ("1234567890", "**********"),
    ("", ""),
])
def test_mask_nik(nik, masked):
    assert J.mask_nik(nik) == masked


def test_new_job_masks_its_nik():
    job = J.validate_submission(good(), BOTH)
    assert job.nik_masked == "357401******0001"


# -- validation: the happy paths ----------------------------------------------------------------


@pytest.mark.parametrize("card_type", BOTH)
def test_a_good_job_is_accepted(card_type):
    payload = good(card_type, priority=7, not_after="2026-12-01T00:00:00+07:00", request_id="r-1")
    job = J.validate_submission(payload, BOTH)
    assert (job.job_id, job.record_id, job.card_type, job.nik) == ("j-0001", "PRR-9999-000001", card_type,
                                                                   "3574014107900001")
    assert job.front_png == LANDSCAPE and job.back_png is None
    assert job.priority == 7
    assert job.not_after.isoformat() == "2026-12-01T00:00:00+07:00"
    assert job.content_sha256 == J.content_hash(payload)
    if card_type == "KIA":
        assert job.chip_files is None
    else:
        assert set(job.chip_files) == {"0101", "0102"}
        assert job.chip_files["0101"] == base64.b64decode(payload["chip"]["files"]["0101"])


def test_portrait_faces_and_a_back_are_accepted():
    job = J.validate_submission(good(front_png=B64(PORTRAIT), back_png=B64(LANDSCAPE)), BOTH)
    assert job.front_png == PORTRAIT and job.back_png == LANDSCAPE


def test_priority_defaults_to_zero_and_lowercase_file_ids_are_normalised():
    payload = good(chip={"files": {"a1b2": B64(b"x" * 10)}})
    del payload["priority"]
    job = J.validate_submission(payload, BOTH)
    assert job.priority == 0 and job.chip_files == {"A1B2": b"x" * 10}


@pytest.mark.parametrize("reason", J.REPRINT_REASONS)
def test_a_reprint_with_a_reason_is_accepted(reason):
    job = J.validate_submission(good(reprint={"of_record_id": "PRR-3574-000099", "reason": reason}), BOTH)
    assert job.reprint == {"of_record_id": "PRR-3574-000099", "reason": reason}


@pytest.mark.parametrize("value", ["a", "A" * 64, "j-2026-11-27-0001", "x.y_z:1-2"])
def test_good_ids(value):
    job = J.validate_submission(good(job_id=value, record_id=value), BOTH)
    assert job.job_id == job.record_id == value


# -- validation: every problem --------------------------------------------------------------------


def test_every_problem_is_listed_at_once():
    payload = good(job_id="bad id!", nik="123", priority=12, front_png=B64(b"GIF89a" + bytes(40)),
                   not_after="tomorrow")
    found = problems(payload)
    assert len(found) == 5
    assert [p["field"] for p in found] == ["job_id", "nik", "front_png", "priority", "not_after"]
    message = refusal(payload).message
    assert "5 problem" in message


def test_an_empty_payload_lists_every_required_field():
    assert sorted(fields_of({})) == sorted(["job_id", "record_id", "card_type", "nik", "front_png"])


@pytest.mark.parametrize("name", ["job_id", "record_id", "card_type", "nik", "front_png"])
def test_required_fields(name):
    payload = good()
    del payload[name]
    found = problems(payload)
    assert {"field": name, "problem": "is required"} in found


def test_unknown_fields_are_named():
    found = problems(good(colour="blue", nik_full="x", **{"x" * 100: 1}))
    assert {"field": "colour", "problem": "is not a field of a job"} in found
    assert {"field": "nik_full", "problem": "is not a field of a job"} in found
    assert {"field": "x" * 64, "problem": "is not a field of a job"} in found


@pytest.mark.parametrize("value", ["", "A" * 65, "has space", "slash/no", "ü", 17, {"a": 1}, ["a"], "a\n"])
@pytest.mark.parametrize("name", ["job_id", "record_id"])
def test_bad_ids(name, value):
    assert fields_of(good(**{name: value})) == [name]


@pytest.mark.parametrize("card_type", ["ktp_el", "KTP", "SIM", "", 1, ["KIA"]])
def test_bad_card_type(card_type):
    assert fields_of(good(card_type=card_type)) == ["card_type"]


@pytest.mark.parametrize("nik", [3574014107900001, "357401410790001", {"value": "3574014107900001"},
                                 ["3574014107900001"], "3574010113900001"])
def test_bad_nik_in_a_payload(nik):
    found = problems(good(nik=nik))
    assert [p["field"] for p in found] == ["nik"]
    assert "3574014107900001" not in refusal(good(nik=nik)).message


@pytest.mark.parametrize("value, what", [
    (B64(b"GIF89a" + bytes(40)), "not a PNG"),
    (B64(b"\x89PNG\r\n\x1a\n"), "not a PNG"),               # a signature and nothing else
    (B64(_png(1016, 647)), "1016x648"),
    (B64(_png(640, 480)), "640x480"),
    (B64(_png(1015, 648)), "1016x648"),
    ("not base64 at all!", "base64"),
    ("iVBORw0KGgo", "base64"),                              # not padded
    (12345, "base64"),
])
@pytest.mark.parametrize("name", ["front_png", "back_png"])
def test_bad_faces(name, value, what):
    found = problems(good(**{name: value}))
    assert [p["field"] for p in found] == [name]
    assert what in found[0]["problem"]


def test_a_png_cut_after_its_header_has_the_right_size_but_is_refused_as_unreadable():
    """The size comes from the IHDR (so a bomb is refused before decoding); the image is then decoded whole."""
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 1016, 648, 8, 2, 0, 0, 0)
    header += struct.pack(">I", zlib.crc32(header[12:]))
    found = problems(good(front_png=B64(header)))
    assert found == [{"field": "front_png", "problem": "is not a readable PNG image (damaged or truncated data)"}]


def test_front_png_null_is_refused_and_back_png_null_is_absent():
    assert [p["field"] for p in problems(good(front_png=None))] == ["front_png"]
    assert J.validate_submission(good(back_png=None), BOTH).back_png is None


def test_chip_is_required_for_ktp_el():
    payload = good("KTP_EL")
    del payload["chip"]
    found = problems(payload)
    assert [p["field"] for p in found] == ["chip"] and "required" in found[0]["problem"]


@pytest.mark.parametrize("chip", [{"files": {"0101": B64(b"abc")}}, {}, {"files": {}}, "x"])
def test_chip_is_refused_for_kia(chip):
    found = problems(good("KIA", chip=chip))
    assert [p["field"] for p in found] == ["chip"] and "KIA" in found[0]["problem"]


@pytest.mark.parametrize("chip, field, what", [
    ({"files": {"101": B64(b"a")}}, "chip.files", "4 hex digits"),
    ({"files": {"01011": B64(b"a")}}, "chip.files", "4 hex digits"),
    ({"files": {"0G01": B64(b"a")}}, "chip.files", "4 hex digits"),
    ({"files": {"0101": "@@@"}}, "chip.files.0101", "base64"),
    ({"files": {"0101": 5}}, "chip.files.0101", "base64"),
    ({"files": {"0101": B64(b"a")[:-1]}}, "chip.files.0101", "base64"),
    ({"files": {}}, "chip.files", "non-empty"),
    ({"files": ["0101"]}, "chip.files", "non-empty"),
    ({}, "chip.files", "non-empty"),
    ("files", "chip.files", "non-empty"),
    ({"files": {"0101": B64(bytes(J.MAX_CHIP_BYTES // 2)), "0102": B64(bytes(J.MAX_CHIP_BYTES // 2 + 1))}},
     "chip.files", "more than a chip holds"),
])
def test_bad_chip(chip, field, what):
    found = problems(good("KTP_EL", chip=chip))
    assert [p["field"] for p in found] == [field]
    assert what in found[0]["problem"]


def test_a_chip_of_exactly_the_maximum_is_accepted():
    files = {"0101": B64(bytes(J.MAX_CHIP_BYTES - 1)), "0102": B64(b"x")}
    job = J.validate_submission(good(chip={"files": files}), BOTH)
    assert sum(map(len, job.chip_files.values())) == J.MAX_CHIP_BYTES


def test_a_file_id_given_twice_in_different_case_is_refused():
    """JSON allows both "0a01" and "0A01"; they name one chip file, so one of the two contents would be lost."""
    found = problems(good(chip={"files": {"0a01": B64(b"one"), "0A01": B64(b"two")}}))
    assert found == [{"field": "chip.files", "problem": "file id 0A01 is given twice"}]


def test_every_bad_chip_file_is_listed():
    found = problems(good(chip={"files": {"zz": B64(b"a"), "0101": "@", "0102": B64(b"ok"), "0103": 1}}))
    assert [p["field"] for p in found] == ["chip.files", "chip.files.0101", "chip.files.0103"]


@pytest.mark.parametrize("priority, ok", [
    (0, True), (9, True), (5, True),
    (-1, False), (10, False), (1.0, False), (5.5, False), ("5", False), (None, False),
    (True, False), (False, False), (2**70, False),
])
def test_priority_bounds(priority, ok):
    payload = good(priority=priority)
    if ok:
        assert J.validate_submission(payload, BOTH).priority == priority
    else:
        assert fields_of(payload) == ["priority"]


@pytest.mark.parametrize("not_after, ok", [
    ("2026-12-01T00:00:00+07:00", True),
    ("2026-12-01T00:00:00Z", True),
    ("2026-12-01T00:00:00.250+00:00", True),
    ("2026-12-01T00:00:00", False),       # no offset: whose midnight?
    ("2026-12-01", False),
    ("tomorrow", False),
    ("2026-13-01T00:00:00+07:00", False),
    (20261201, False),
    (["2026-12-01T00:00:00+07:00"], False),
])
def test_not_after(not_after, ok):
    payload = good(not_after=not_after)
    if ok:
        assert J.validate_submission(payload, BOTH).not_after.tzinfo is not None
    else:
        found = problems(payload)
        assert [p["field"] for p in found] == ["not_after"]


def test_not_after_null_means_none():
    assert J.validate_submission(good(not_after=None), BOTH).not_after is None


@pytest.mark.parametrize("reprint, field", [
    ({"of_record_id": "PRR-1", "reason": "stolen"}, "reprint.reason"),
    ({"of_record_id": "PRR-1"}, "reprint.reason"),
    ({"reason": "lost"}, "reprint.of_record_id"),
    ({"of_record_id": "bad id", "reason": "lost"}, "reprint.of_record_id"),
    ({"of_record_id": 12, "reason": "damaged"}, "reprint.of_record_id"),
    ("lost", "reprint.reason"),
    ([], "reprint.reason"),
])
def test_bad_reprint(reprint, field):
    assert fields_of(good(reprint=reprint)) == [field]


def test_a_card_type_the_station_does_not_print():
    error = refusal(good("KTP_EL"), ["KIA"])
    assert error.code == "unsupported_card_type"
    assert error.details == {"card_types": ["KIA"]}
    assert "KTP_EL" in error.message
    # A payload that is also invalid is answered invalid_payload first: fix the payload, then find a station.
    assert refusal(good("KTP_EL", priority=99), ["KIA"]).code == "invalid_payload"
    assert J.validate_submission(good("KIA"), ["KIA"]).card_type == "KIA"


@pytest.mark.parametrize("nik", ["3574014107900001", "3574010113900001", "3574010107900000"])
def test_no_problem_message_carries_the_nik(nik):
    error = refusal(good(nik=nik, priority=-1, job_id="", front_png="x", colour=nik))
    assert nik not in str(error.as_error())


# -- the content hash ---------------------------------------------------------------------------------


def test_content_hash_ignores_transport_fields():
    payload = good()
    base = J.content_hash(payload)
    assert J.content_hash({**payload, "request_id": "r-9"}) == base
    assert J.content_hash({**payload, "sig": "c2ln"}) == base
    assert J.content_hash({**payload, "request_id": "r-1", "sig": "x"}) == base
    assert J.content_hash(dict(reversed(list(payload.items())))) == base   # key order does not matter


@pytest.mark.parametrize("change", [
    {"priority": 1}, {"job_id": "j-other"}, {"record_id": "PRR-other"}, {"nik": "3574014107900002"},
    {"not_after": "2026-12-01T00:00:00+07:00"}, {"back_png": B64(LANDSCAPE)},
    {"reprint": {"of_record_id": "PRR-1", "reason": "lost"}},
])
def test_content_hash_covers_every_other_field(change):
    payload = good()
    assert J.content_hash({**payload, **change}) != J.content_hash(payload)


def test_content_hash_sees_a_changed_chip_byte():
    payload = good()
    other = {**payload, "chip": {"files": {**payload["chip"]["files"], "0101": B64(b"changed")}}}
    assert J.content_hash(other) != J.content_hash(payload)


# -- the state machine ------------------------------------------------------------------------------


ALLOWED = {(old, new) for old, targets in J.TRANSITIONS.items() for new in targets}


def test_transitions_cover_every_state():
    assert set(J.TRANSITIONS) == set(J.STATES)
    for targets in J.TRANSITIONS.values():
        assert targets <= set(J.STATES)
    for state in J.TERMINAL:
        assert J.TRANSITIONS[state] == frozenset()
    # Nothing goes back into the ledger's domain from the outside: only printing or in_doubt reach printed.
    assert {old for old, new in ALLOWED if new == J.PRINTED} == {J.PRINTING, J.IN_DOUBT}
    # in_doubt is reached only from printing: a queued job is never "lost track of".
    assert {old for old, new in ALLOWED if new == J.IN_DOUBT} == {J.PRINTING}


@pytest.mark.parametrize("old, new", sorted(itertools.product(J.STATES, J.STATES)))
def test_check_transition(old, new):
    if (old, new) in ALLOWED:
        J.check_transition(old, new)
    else:
        with pytest.raises(J.IllegalTransition, match=f"{old} to {new}"):
            J.check_transition(old, new)


@pytest.mark.parametrize("old, new", [("bogus", J.QUEUED), (J.QUEUED, "bogus"), ("", ""), (J.QUEUED, J.QUEUED)])
def test_check_transition_refuses_unknown_states(old, new):
    with pytest.raises(J.IllegalTransition):
        J.check_transition(old, new)


# -- the view ---------------------------------------------------------------------------------------


CONTRACT_VIEW = ["job_id", "record_id", "card_type", "nik_masked", "state", "step", "reason", "attempts", "priority",
                 "created_at", "updated_at", "printed_at", "card_uid", "batch_id"]


def test_job_view_has_exactly_the_contract_fields():
    row = {name: f"v-{name}" for name in CONTRACT_VIEW}
    row.update(nik="3574014107900001", front_png=b"png", back_png=b"png", chip_files="{}", content_sha256="x",
               seq=4, not_after=None, reprint=None, pii_erased_at=None)
    view = J.job_view(row)
    assert list(view) == CONTRACT_VIEW
    assert view == {name: f"v-{name}" for name in CONTRACT_VIEW}
    assert tuple(CONTRACT_VIEW) == J.VIEW_FIELDS


def test_job_view_fills_missing_fields_with_none():
    assert J.job_view({"job_id": "j-1"}) == {name: ("j-1" if name == "job_id" else None) for name in CONTRACT_VIEW}


# -- never anything but CommandError ----------------------------------------------------------------


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
field_names = sorted(J.KNOWN_FIELDS) + ["colour"]
near_values = st.one_of(
    json_values,
    st.sampled_from(["KTP_EL", "KIA", "3574014107900001", "j-1", B64(LANDSCAPE), B64(b"x"), "2026-12-01T00:00:00+07:00",
                     "2026-12-01", "lost"]),
    st.fixed_dictionaries({"files": st.dictionaries(st.sampled_from(["0101", "zz", "a1b2"]),
                                                    st.sampled_from([B64(b"abc"), "@@", 1, None]), max_size=3)}),
    st.fixed_dictionaries({"of_record_id": json_values, "reason": st.sampled_from(["lost", "stolen", None])}),
)


def _only_command_errors(payload, card_types):
    try:
        job = J.validate_submission(payload, card_types, png_problem)
    except CommandError as error:
        assert error.code in ("invalid_payload", "unsupported_card_type")
        if error.code == "invalid_payload":
            assert error.details["problems"]
            for p in error.details["problems"]:
                assert isinstance(p["field"], str) and isinstance(p["problem"], str)
        return
    assert job.card_type in card_types


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.dictionaries(st.text(max_size=12), json_values, max_size=8),
       card_types=st.sampled_from([BOTH, ["KIA"], ["KTP_EL"]]))
def test_validate_never_raises_anything_but_command_error_for_any_json(payload, card_types):
    _only_command_errors(payload, card_types)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.dictionaries(st.sampled_from(field_names), near_values, max_size=len(field_names)),
       card_types=st.sampled_from([BOTH, ["KIA"]]))
def test_validate_never_raises_anything_but_command_error_for_near_jobs(payload, card_types):
    _only_command_errors(payload, card_types)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(J.KNOWN_FIELDS - {"request_id", "sig"})), value=json_values)
def test_one_wrong_field_in_a_good_job(name, value):
    _only_command_errors({**good(), name: value}, BOTH)
