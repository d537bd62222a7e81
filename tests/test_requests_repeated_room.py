"""Through a real broker and daemon: a request sent again with its request_id gets its first answer, and nothing moves."""

from __future__ import annotations


def data(answer: dict) -> dict:
    assert answer["status"] == "ok", answer
    return answer["data"]


def test_repeats_through_the_broker_get_their_first_answers(room):
    room.start()
    office = room.office
    paused = data(office.request("queue/pause", {"reason": "lunch", "request_id": "p-1"}))
    job = room.job()
    first = office.request("job/submit", {**job, "request_id": "s-1"})
    assert data(first)["queue_position"] == 1
    room.wait_state(job["job_id"], "queued")
    data(office.request("job/cancel", {"job_id": job["job_id"], "request_id": "c-1"}))
    data(office.request("queue/resume", {"request_id": "r-1"}))

    # The submission again (a redelivery, a retry): its first answer, and the job stays cancelled.
    assert office.request("job/submit", {**job, "request_id": "s-1"}) == {**first, "request_id": "s-1"}
    # The pause again, after the resume: the first answer, and the queue stays resumed.
    again = office.request("queue/pause", {"reason": "lunch", "request_id": "p-1"})
    assert data(again) == paused
    state = data(office.request("status/get", {}))
    assert state["reason"] != "paused_by_operator" and state["paused_reason"] is None
    assert room.query("SELECT state FROM jobs") == [("cancelled",)]

    # A blanks/adjust sent twice without any id is refused both times, naming request_id.
    for _ in range(2):
        refused = office.request("blanks/adjust", {"card_type": "KTP_EL", "delta": 5, "reason": "found"})
        assert [p["field"] for p in refused["error"]["details"]["problems"]] == ["request_id"]
    assert room.query("SELECT adjusted FROM blank_stock WHERE card_type = 'KTP_EL'") == [(0,)]
    # The same request_id for something else is refused naming it, and does nothing.
    reused = office.request("blanks/adjust", {"card_type": "KTP_EL", "delta": 5, "reason": "found",
                                              "request_id": "p-1"})
    assert reused["error"]["code"] == "invalid_payload" and reused["request_id"] == "p-1"
    assert [p["field"] for p in reused["error"]["details"]["problems"]] == ["request_id"]
    assert room.query("SELECT adjusted FROM blank_stock WHERE card_type = 'KTP_EL'") == [(0,)]
    assert room.process.poll() is None and "Traceback" not in room.log()
