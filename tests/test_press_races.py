"""Races forced, not hoped for: the press held between choosing a job and claiming it while a request lands."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from held_press import MONDAY_9, HeldRoom, PressGate, balanced
from test_pacing import new_job

from kartud.rules.clock import rfc3339
from kartud.rules.errors import CommandError


def test_a_cancel_between_choosing_and_claiming_passes_the_job_over(tmp_path):
    async def scenario():
        room = HeldRoom(tmp_path, gate=PressGate("before_claim"))
        room.start()
        point, job = await room.point()
        assert (point, job["job_id"]) == ("before_claim", "j-1")
        answer = await room.ask("job/cancel", {"job_id": "j-1"})
        assert answer["status"] == "ok" and answer["data"]["state"] == "cancelled"
        room.gate.release()
        assert (await room.point())[0] == "claim_refused"      # not a dead press task
        await room.until("j-2", "printed")                      # the press went on with the next job
        assert await room.stop() == 0
        return room

    room = asyncio.run(scenario())
    assert room.cards() == [("output", "j-2")]
    assert balanced(room.stock()) and room.stock()["reserved"] == 0


def test_a_pause_answered_before_the_claim_stops_the_card(tmp_path):
    async def scenario():
        room = HeldRoom(tmp_path, jobs=1, gate=PressGate("before_claim"))
        room.start()
        assert (await room.point())[0] == "before_claim"
        answer = await room.ask("queue/pause", {"reason": "stocktake"})
        assert answer["status"] == "ok" and answer["data"]["mode"] == "paused"
        room.gate.release()
        assert (await room.point())[0] == "claim_refused"      # the card does not start after the answer
        assert room.cards() == [] and room.stock()["reserved"] == 0
        state = (await room.ask("status/get", {}))["data"]
        assert (state["mode"], state["queue"]["queued"]) == ("paused", 1)
        assert (await room.ask("queue/resume", {}))["status"] == "ok"
        await room.until("j-1", "printed")
        assert await room.stop() == 0
        return room

    room = asyncio.run(scenario())
    assert room.cards() == [("output", "j-1")]


def test_a_job_whose_not_after_passes_between_choosing_and_claiming_expires_unprinted(tmp_path):
    async def scenario():
        deadline = rfc3339(MONDAY_9 + timedelta(seconds=60))
        room = HeldRoom(tmp_path, gate=PressGate("before_claim"), first={"not_after": deadline})
        room.start()
        assert (await room.point())[0] == "before_claim"
        room.clock.advance(120)                                  # the job's not_after passes meanwhile
        room.gate.release()
        assert (await room.point())[0] == "claim_refused"
        expired = await room.until("j-1", "expired")
        assert expired["reason"] == "not_after_passed"
        await room.until("j-2", "printed")
        assert await room.stop() == 0
        return room

    room = asyncio.run(scenario())
    assert room.cards() == [("output", "j-2")]


def test_blanks_taken_out_between_choosing_and_claiming_leave_the_job_queued(tmp_path):
    async def scenario():
        room = HeldRoom(tmp_path, blanks=1, jobs=1, gate=PressGate("before_claim"))
        room.start()
        assert (await room.point())[0] == "before_claim"
        answer = await room.ask("blanks/adjust", {"card_type": "KTP_EL", "delta": -1, "reason": "stocktake",
                                                  "request_id": "adj-1"})
        assert answer["data"]["in_stock"] == 0
        room.gate.release()
        assert (await room.point())[0] == "claim_refused"
        assert balanced(room.stock()) and room.stock()["reserved"] == 0 and room.cards() == []
        state = (await room.ask("status/get", {}))["data"]
        assert (state["mode"], state["reason"]) == ("waiting", "out_of_blanks")
        assert (await room.ask("blanks/receive", {"batch_id": "B-2", "card_type": "KTP_EL", "count": 1}))[
            "status"] == "ok"
        await room.until("j-1", "printed")
        assert await room.stop() == 0
        return room

    room = asyncio.run(scenario())
    assert room.cards() == [("output", "j-1")]
    assert balanced(room.stock()) and room.stock()["printed"] == 1


def test_stock_moves_while_a_blank_is_reserved_keep_the_equation_and_never_go_below_zero(tmp_path):
    async def scenario():
        room = HeldRoom(tmp_path, blanks=3, jobs=1, gate=PressGate("after_claim"))
        room.start()
        assert [(await room.point())[0] for _ in range(2)] == ["before_claim", "after_claim"]
        assert (room.stock()["in_stock"], room.stock()["reserved"]) == (2, 1)
        too_many = await room.ask("blanks/adjust", {"card_type": "KTP_EL", "delta": -3, "reason": "stocktake",
                                                    "request_id": "adj-1"})
        assert too_many["status"] == "error" and too_many["error"]["code"] == "invalid_payload"
        assert (room.stock()["in_stock"], room.stock()["reserved"]) == (2, 1) and balanced(room.stock())
        exact = await room.ask("blanks/adjust", {"card_type": "KTP_EL", "delta": -2, "reason": "stocktake",
                                                 "request_id": "adj-2"})
        assert exact["data"]["in_stock"] == 0 and balanced(room.stock())
        received = await room.ask("blanks/receive", {"batch_id": "B-2", "card_type": "KTP_EL", "count": 2})
        assert received["data"]["in_stock"] == 2 and balanced(room.stock())
        room.gate.release()
        await room.until("j-1", "printed")
        assert await room.stop() == 0
        return room

    room = asyncio.run(scenario())
    assert room.cards() == [("output", "j-1")]
    stock = room.stock()
    assert balanced(stock) and (stock["in_stock"], stock["reserved"], stock["printed"]) == (2, 0, 1)


@pytest.mark.parametrize("meanwhile", ["cancelled", "expired", "paused", "already_claimed", "gone"])
def test_a_claim_looks_again_in_its_own_transaction_and_changes_nothing_when_the_job_may_not_start(
        store, manual_clock, meanwhile):
    store.receive_blanks("B", "KIA", 5, None)
    job = new_job(1)
    if meanwhile == "expired":
        job = dataclasses.replace(job, not_after=manual_clock.now() + timedelta(seconds=30))
    store.submit_job(job)
    if meanwhile == "cancelled":
        store.cancel_job(job.job_id)
    elif meanwhile == "expired":
        manual_clock.advance(31)                     # past not_after, before the expiry sweep ran
    elif meanwhile == "paused":
        store.set_setting("paused_reason", "stocktake", "queue_paused", {"reason": "stocktake"})
    elif meanwhile == "already_claimed":
        store.claim(job.job_id)
    before = (store.stock(), store.verify_audit_chain(), store.get_job(job.job_id))
    assert store.claim("j-unknown" if meanwhile == "gone" else job.job_id) is None
    assert (store.stock(), store.verify_audit_chain(), store.get_job(job.job_id)) == before


def test_a_resolve_about_an_earlier_card_never_settles_the_next_one(store):
    """Resolve against restart: the job's first card was lost and resolved spoiled; its second card was
    lost too (a restart turned it in doubt again). The first decision, repeated, must not settle the second."""
    store.receive_blanks("B", "KIA", 5, None)
    job = new_job(1)
    store.submit_job(job)
    store.claim(job.job_id)
    (first,) = store.recover_in_doubt()                      # a restart: the first card in doubt
    assert (first["state"], first["attempts"]) == ("in_doubt", 1)
    assert store.resolve_in_doubt(job.job_id, "spoiled", "bent", 3, attempts=1)["state"] == "queued"
    store.claim(job.job_id)
    (second,) = store.recover_in_doubt()                     # another restart: the second card in doubt
    assert second["attempts"] == 2
    before = (store.stock(), store.verify_audit_chain())
    with pytest.raises(CommandError) as refused:
        store.resolve_in_doubt(job.job_id, "printed", "it was fine", 3, attempts=1)
    assert refused.value.code == "stale_request"
    assert (store.stock(), store.verify_audit_chain(), store.get_job(job.job_id)["state"]) == (*before, "in_doubt")
    assert store.resolve_in_doubt(job.job_id, "printed", "it was fine", 3, attempts=2)["state"] == "printed"


def test_start_up_recovery_is_one_transaction_and_leaves_other_jobs_alone(store):
    store.receive_blanks("B", "KIA", 5, None)
    for serial in (1, 2, 3):
        store.submit_job(new_job(serial))
    store.claim("j-1")
    store.claim("j-2")
    store.mark_printed("j-2", None)
    audit_before = store.verify_audit_chain()
    assert [v["job_id"] for v in store.recover_in_doubt()] == ["j-1"]
    assert store.verify_audit_chain() == audit_before + 1
    assert [store.get_job(j)["state"] for j in ("j-1", "j-2", "j-3")] == ["in_doubt", "printed", "queued"]
    assert store.recover_in_doubt() == []                    # a second start finds nothing more to do
