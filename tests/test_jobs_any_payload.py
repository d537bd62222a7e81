"""Validation of any payload at all, made up by hypothesis, raises nothing but CommandError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from job_payloads import B64, BOTH, LANDSCAPE, good

from kartud.rules import jobs as J
from kartud.rules.errors import CommandError
from kartud.service.faces import png_problem


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
