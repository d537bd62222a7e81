"""A reprint is one card, not a licence: no second job for a NIK and card type while one is on its way."""

from __future__ import annotations

import pytest
from print_room import chip_sha
from sample_jobs import new_job
from store_checks import bring_to

from kartud.rules import jobs as J
from kartud.rules.errors import CommandError

NIK = "3574014107900001"
LOST = {"of_record_id": "PRR-3574-000099", "reason": "lost"}


@pytest.mark.parametrize("state", [J.QUEUED, J.PRINTING, J.IN_DOUBT])
def test_a_reprint_is_refused_while_another_card_for_the_nik_is_on_its_way(store, state):
    first = bring_to(store, new_job(1, nik=NIK, reprint=LOST), state)
    with pytest.raises(CommandError) as refused:
        store.submit_job(new_job(2, nik=NIK, reprint={**LOST, "reason": "damaged"}))
    assert refused.value.code == "duplicate_nik" and refused.value.details["job_id"] == first["job_id"]
    assert NIK not in str(refused.value.as_error())                      # personal data stays in
    assert store.get_job("j-0002") is None


@pytest.mark.parametrize("state", [J.PRINTED, J.CANCELLED, J.EXPIRED, J.FAILED])
def test_a_reprint_may_follow_a_job_that_has_ended(store, state):
    bring_to(store, new_job(1, nik=NIK), state)
    view, _ = store.submit_job(new_job(2, nik=NIK, reprint=LOST))
    assert view["state"] == J.QUEUED


def test_a_reprint_needs_no_earlier_card_on_this_station(store):
    view, _ = store.submit_job(new_job(1, nik=NIK, reprint=LOST))      # the first card was printed elsewhere
    assert view["state"] == J.QUEUED


def test_a_reprint_of_another_card_type_is_another_card(store):
    store.submit_job(new_job(1, "KTP_EL", nik=NIK, reprint=LOST))
    view, _ = store.submit_job(new_job(2, "KIA", nik=NIK, reprint=LOST))
    assert view["state"] == J.QUEUED


def test_a_resubmitted_reprint_is_still_answered_as_itself(store):
    job = new_job(1, nik=NIK, reprint=LOST)
    store.submit_job(job)
    view, resubmitted = store.submit_job(job)
    assert resubmitted and view["job_id"] == "j-0001"


def test_many_reprints_sent_at_once_make_one_card(room):
    room.start()
    room.receive_blanks(10)
    nik = room.job()["nik"]
    jobs = [room.job(nik=nik, reprint={"of_record_id": "PRR-9999-000001", "reason": "lost"}) for _ in range(3)]
    answers = [room.office.wait_answer(c) for c in [room.office.send("job/submit", job) for job in jobs]]
    assert [a["status"] for a in answers] == ["ok", "error", "error"]
    assert {a["error"]["code"] for a in answers[1:]} == {"duplicate_nik"}
    room.wait_state(jobs[0]["job_id"], "printed")
    # Once that card is out, the next reprint (lost again) is one more card, and only one.
    again = room.job(nik=nik, reprint={"of_record_id": jobs[0]["record_id"], "reason": "lost"})
    assert room.submit(again)["status"] == "ok"
    room.wait_state(again["job_id"], "printed")
    assert room.stop() == 0
    assert [(c["destination"], c["chip_files_sha256"]) for c in room.cards()] == \
        [("output", chip_sha(jobs[0])), ("output", chip_sha(again))]
