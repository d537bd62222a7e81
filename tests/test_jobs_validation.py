"""Validating a job/submit payload: what is accepted, and every problem of a bad one listed at once."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest
from job_payloads import B64, BOTH, LANDSCAPE, PORTRAIT, fields_of, good, plain_png, problems, refusal

from kartud.rules import jobs as J


@pytest.mark.parametrize("card_type", BOTH)
def test_a_good_job_is_accepted(card_type):
    payload = good(card_type, priority=7, not_after="2026-12-01T00:00:00+07:00", request_id="r-1")
    job = J.validate_submission(payload, BOTH)
    assert (job.job_id, job.record_id, job.card_type, job.nik) == ("j-0001", "PRR-9999-000001", card_type,
                                                                   "3574014107900001")
    assert job.front_png == LANDSCAPE and job.back_png is None
    assert job.priority == 7
    assert job.not_after.isoformat() == "2026-12-01T00:00:00+07:00"
    assert job.content_sha256 == J.content_hash(job) and job.has_hash(J.payload_hash(payload))
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
    (B64(plain_png(1016, 647)), "1016x648"),
    (B64(plain_png(640, 480)), "640x480"),
    (B64(plain_png(1015, 648)), "1016x648"),
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


def test_a_chip_of_exactly_the_capacity_is_accepted():
    files = {"0101": B64(bytes(J.CHIP_CAPACITY_BYTES - 1)), "0102": B64(b"x")}
    job = J.validate_submission(good(chip={"files": files}), BOTH)
    assert sum(map(len, job.chip_files.values())) == J.CHIP_CAPACITY_BYTES


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
