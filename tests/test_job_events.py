"""Every job state change is an event (contract 1.1), those made at start-up and by timers included."""

from __future__ import annotations

from datetime import datetime, timedelta

from print_room import chip_sha
from test_crash import check_promises

from kartud.rules.clock import rfc3339


def ledger_states(room, job_id: str) -> list[str]:
    """Every state the ledger's audit chain says ``job_id`` went to, in order."""
    rows = room.query("SELECT kind, json_extract(detail, '$.to') FROM audit WHERE job_id = ? AND kind != 'job_step'"
                      " ORDER BY id", job_id)
    return ["queued" if kind == "job_submitted" else to for kind, to in rows]


def event_states(room, job_id: str) -> list[str]:
    """The states the office's job events showed for ``job_id``, in order, steps of one card as one."""
    states: list[str] = []
    for event in room.seen:
        state = event["job"]["state"]
        if event["job"]["job_id"] == job_id and (not states or state != states[-1]):
            states.append(state)
    return states


def test_a_job_turned_in_doubt_at_start_up_is_an_event_before_any_answer(room):
    room.env["KARTUD_CRASH_AT"] = "after_feed"              # killed with a card in the printer
    room.start()
    room.receive_blanks(5)
    job = room.job()
    room.office.send("job/submit", job)
    assert room.process.wait(30) == -9
    # While the box is down an operator, who saw the card die, already resolves it: the resolve waits in
    # the broker and reaches the daemon as early as it can, racing the start-up recovery.
    resolve = room.office.send("job/resolve", {"job_id": job["job_id"], "outcome": "spoiled",
                                               "note": "the card stopped half way", "request_id": "resolve-1"})
    room.env.pop("KARTUD_CRASH_AT")
    room.start()
    doubt = room.wait_state(job["job_id"], "in_doubt")
    assert doubt["job"]["reason"] == "interrupted" and "nik" not in doubt["job"]
    answer = room.office.wait_answer(resolve, timeout=20)
    assert answer["status"] == "ok" and answer["data"]["state"] == "queued"
    room.wait_state(job["job_id"], "printed")
    mine = [e["job"] for e in room.seen if e["job"]["job_id"] == job["job_id"]]
    in_doubt = next(i for i, view in enumerate(mine) if view["state"] == "in_doubt")
    requeued = next(i for i, view in enumerate(mine) if view["reason"] == "resolved_spoiled")
    assert in_doubt < requeued                               # the office saw in_doubt before its resolve acted
    assert room.stop() == 0
    # From the restart on, the office saw every change the ledger made (those before the kill may be lost
    # with the process: an event is published after its commit, not kept).
    changes = ledger_states(room, job["job_id"])
    assert changes[-4:] == ["in_doubt", "queued", "printing", "printed"]
    assert event_states(room, job["job_id"])[-4:] == changes[-4:]
    # What physically left the printer: the card of this record once, on the output.
    assert [(c["destination"], c["chip_files_sha256"]) for c in room.cards()] == [("output", chip_sha(job))]
    check_promises(room, {job["job_id"]: job})


def test_a_job_whose_not_after_passes_in_the_queue_is_an_expired_event(room):
    room.start()
    room.receive_blanks(5)
    assert room.office.request("queue/pause", {"reason": "test"})["status"] == "ok"
    now = datetime.fromisoformat(room.office.request("status/get", {})["data"]["at"])
    job = room.job(not_after=rfc3339(now + timedelta(seconds=300)))     # 3 s at the room's clock speed
    assert room.submit(job)["status"] == "ok"
    expired = room.wait_state(job["job_id"], "expired")
    assert expired["job"]["reason"] == "not_after_passed"
    assert room.stop() == 0
    assert event_states(room, job["job_id"]) == ledger_states(room, job["job_id"]) == ["queued", "expired"]
    assert room.cards() == []
