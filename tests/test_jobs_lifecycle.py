"""A validated job: its content hash, the state machine it moves through, and the view the contract shows of it."""

from __future__ import annotations

import itertools

import pytest
from job_payloads import B64, BOTH, LANDSCAPE, good

from kartud.rules import jobs as J


def content_hash(payload: dict) -> str:
    """The hash of a payload's job, as the store compares resubmissions: the validated job's."""
    return J.validate_submission(payload, BOTH).content_sha256


def test_content_hash_ignores_transport_fields():
    payload = good()
    base = content_hash(payload)
    assert content_hash({**payload, "request_id": "r-9"}) == base
    assert content_hash({**payload, "sig": "c2ln"}) == base
    assert content_hash({**payload, "request_id": "r-1", "sig": "x", "ts": "2026-12-01T08:00:00+07:00"}) == base
    assert content_hash(dict(reversed(list(payload.items())))) == base   # key order does not matter


@pytest.mark.parametrize("change", [
    {"priority": 1}, {"job_id": "j-other"}, {"record_id": "PRR-other"}, {"nik": "3574014107900002"},
    {"not_after": "2026-12-01T00:00:00+07:00"}, {"back_png": B64(LANDSCAPE)},
    {"reprint": {"of_record_id": "PRR-1", "reason": "lost"}},
])
def test_content_hash_covers_every_other_field(change):
    payload = good()
    assert content_hash({**payload, **change}) != content_hash(payload)


def test_content_hash_sees_a_changed_chip_byte():
    payload = good()
    other = {**payload, "chip": {"files": {**payload["chip"]["files"], "0101": B64(b"changed")}}}
    assert content_hash(other) != content_hash(payload)


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
EXTENSIONS = ["in_doubt_since", "in_doubt_step"]      # what an operator decides an in-doubt job on


def test_job_view_has_exactly_the_contract_fields_and_the_extensions():
    row = {name: f"v-{name}" for name in CONTRACT_VIEW}
    row.update(nik="3574014107900001", front_png=b"png", back_png=b"png", chip_files="{}", content_sha256="x",
               seq=4, not_after=None, reprint=None, pii_erased_at=None)
    view = J.job_view(row)
    assert list(view) == CONTRACT_VIEW + EXTENSIONS
    assert view == {**{name: f"v-{name}" for name in CONTRACT_VIEW}, "in_doubt_since": None, "in_doubt_step": None}
    assert tuple(CONTRACT_VIEW) == J.VIEW_FIELDS and tuple(EXTENSIONS) == J.VIEW_EXTENSIONS


def test_an_in_doubt_job_shows_since_when_and_where_its_card_was():
    view = J.job_view({"job_id": "j-1", "state": "in_doubt", "step": "ejecting", "updated_at": "t-1"})
    assert (view["step"], view["in_doubt_step"], view["in_doubt_since"]) == (None, "ejecting", "t-1")


def test_job_view_fills_missing_fields_with_none():
    assert J.job_view({"job_id": "j-1"}) == {name: ("j-1" if name == "job_id" else None)
                                             for name in CONTRACT_VIEW + EXTENSIONS}
