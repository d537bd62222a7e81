"""Random operations on the store beside a model of it: every promise holds after every step."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from datetime import datetime, timedelta

import pytest
from clock_fixtures import START
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sample_jobs import CARD_TYPES, payload
from store_checks import audit_rows, balanced
from store_fixtures import TEST_KEY

from kartud.ledger.store import OutOfBlanks, Store
from kartud.rules import jobs as J
from kartud.rules.clock import ManualClock, rfc3339
from kartud.rules.errors import CommandError
from kartud.rules.jobs import validate_submission


class StoreModel:
    """A store beside a model of what it should hold. Each operation checks the store's answer against the model;
    :meth:`check` checks the promises (run after every step)."""

    MAX_ATTEMPTS = 3

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kartud-store-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.clock = ManualClock(START)
        self.store = Store(os.path.join(self.dir, "kartud.db"), self.clock, key=TEST_KEY)
        self.store.open()
        self.serial = 0
        self.expected: dict[str, str] = {}     # job_id -> the state the model expects
        self.record_of: dict[str, str] = {}
        self.type_of: dict[str, str] = {}
        self.payloads: dict[str, dict] = {}
        self.batches: dict[str, tuple[str, int]] = {}
        self.model_stock = {t: 0 for t in CARD_TYPES}

    def close(self):
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def jobs_in(self, *states) -> list[str]:
        return sorted(j for j, s in self.expected.items() if s in states)

    def _held(self, record_id):
        return any(self.record_of[j] == record_id and s in J.HOLDS_RECORD for j, s in self.expected.items())

    def submit(self, card_type, priority, record, not_after):
        self.serial += 1
        fields = {"priority": priority, "record_id": f"PRR-{record}"}
        if not_after:
            fields["not_after"] = rfc3339(self.clock.now() + timedelta(minutes=10))
        body = payload(self.serial, card_type, **fields)
        job = validate_submission(body, CARD_TYPES)
        held = self._held(job.record_id)
        try:
            view, resubmitted = self.store.submit_job(job)
        except CommandError as exc:
            assert held and exc.code == "duplicate_record", exc.code
            return
        assert not held and not resubmitted and view["state"] == J.QUEUED
        self.expected[job.job_id] = J.QUEUED
        self.record_of[job.job_id], self.type_of[job.job_id], self.payloads[job.job_id] = \
            job.record_id, card_type, body

    def resubmit(self, job_id, change):
        body = dict(self.payloads[job_id], request_id="again")
        if change:
            body["priority"] = (body["priority"] + 1) % 10
        try:
            view, resubmitted = self.store.submit_job(validate_submission(body, CARD_TYPES))
        except CommandError as exc:
            assert change and exc.code == "job_id_conflict"
            return
        assert not change and resubmitted and view["state"] == self.expected[job_id]

    def claim(self, job_id):
        card_type = self.type_of[job_id]
        not_after = self.payloads[job_id].get("not_after")
        overdue = not_after is not None and datetime.fromisoformat(not_after) < self.clock.now()
        try:
            view = self.store.claim(job_id)
        except OutOfBlanks:
            assert self.model_stock[card_type] == 0 and not overdue
            return
        if overdue:                          # past not_after, not yet swept: the claim moves on, nothing changes
            assert view is None
            return
        assert self.model_stock[card_type] > 0
        self.model_stock[card_type] -= 1
        assert view["state"] == J.PRINTING
        self.expected[job_id] = J.PRINTING

    def printed(self, job_id):
        assert self.store.mark_printed(job_id, "04" + "AB" * 6)["state"] == J.PRINTED
        self.expected[job_id] = J.PRINTED

    def spoiled(self, job_id):
        attempts = self.store.get_job(job_id)["attempts"]
        view = self.store.mark_spoiled(job_id, "print_failed", self.MAX_ATTEMPTS)
        assert view["state"] == (J.QUEUED if attempts < self.MAX_ATTEMPTS else J.FAILED)
        self.expected[job_id] = view["state"]

    def release(self, job_id):
        self.store.release_claim(job_id, "feeder_empty")
        self.model_stock[self.type_of[job_id]] += 1
        self.expected[job_id] = J.QUEUED

    def recover(self):
        recovered = {v["job_id"] for v in self.store.recover_in_doubt()}
        assert recovered == set(self.jobs_in(J.PRINTING))
        for job_id in recovered:
            self.expected[job_id] = J.IN_DOUBT

    def receive(self, batch, card_type, count):
        batch_id = f"B-{batch}"
        known = self.batches.get(batch_id)
        try:
            in_stock = self.store.receive_blanks(batch_id, card_type, count, None)
        except CommandError as exc:
            assert exc.code == "batch_conflict" and known is not None and known != (card_type, count)
            return
        if known is None:
            self.batches[batch_id] = (card_type, count)
            self.model_stock[card_type] += count
        else:
            assert known == (card_type, count)
        assert in_stock == self.model_stock[card_type]

    def cancel(self, job_id):
        state = self.expected[job_id]
        try:
            view = self.store.cancel_job(job_id)
        except CommandError as exc:
            assert exc.code == "not_cancellable" and state not in (J.QUEUED, J.CANCELLED)
            return
        assert state in (J.QUEUED, J.CANCELLED) and view["state"] == J.CANCELLED
        self.expected[job_id] = J.CANCELLED

    def expire(self, minutes):
        self.clock.advance(minutes * 60)
        now = self.clock.now()
        expired = {v["job_id"] for v in self.store.expire_due(now)}
        due = {j for j in self.jobs_in(J.QUEUED)
               if self.payloads[j].get("not_after") and datetime.fromisoformat(self.payloads[j]["not_after"]) < now}
        assert expired == due
        for job_id in expired:
            self.expected[job_id] = J.EXPIRED

    def check(self):
        store = self.store
        balanced(store)
        stock = store.stock()
        for card_type in CARD_TYPES:
            assert stock[card_type]["in_stock"] == self.model_stock[card_type]
            remaining = store.conn.execute("SELECT COALESCE(SUM(remaining), 0) FROM blank_batches WHERE card_type = ?",
                                           (card_type,)).fetchone()[0]
            assert remaining == stock[card_type]["in_stock"]
            moves = dict(store.conn.execute("SELECT kind, SUM(count) FROM blank_movements WHERE card_type = ?"
                                            " GROUP BY kind", (card_type,)).fetchall())
            get = lambda kind: moves.get(kind, 0)  # noqa: E731
            assert stock[card_type]["received"] == get("received")
            assert stock[card_type]["printed"] == get("printed")
            assert stock[card_type]["spoiled"] == get("spoiled")
            assert stock[card_type]["reserved"] == get("reserved") - get("released") - get("printed") - get("spoiled")
        ledger = store.conn.execute("SELECT record_id, job_id FROM printed_records").fetchall()
        records = [r["record_id"] for r in ledger]
        assert len(records) == len(set(records)), "a record was printed twice"
        rows = {r["job_id"]: r for r in store.conn.execute("SELECT job_id, record_id, state, attempts FROM jobs")}
        assert {j: r["state"] for j, r in rows.items()} == self.expected
        assert {j for j, r in rows.items() if r["state"] == J.PRINTED} == {r["job_id"] for r in ledger}
        for row in rows.values():
            assert row["state"] in J.STATES
            assert 0 <= row["attempts"] <= self.MAX_ATTEMPTS
        held = [r["record_id"] for r in rows.values() if r["state"] in J.HOLDS_RECORD]
        assert len(held) == len(set(held)), "two live jobs for one record"
        reserved = sum(1 for r in rows.values() if r["state"] in (J.PRINTING, J.IN_DOUBT))
        assert sum(s["reserved"] for s in stock.values()) == reserved


def _when_any(*states):
    """A rule that needs a job in one of ``states``."""
    return precondition(lambda self: bool(self.model.jobs_in(*states)))


class StoreMachine(RuleBasedStateMachine):
    """Hypothesis drives a :class:`StoreModel`; the promises are checked after every step."""

    def __init__(self):
        super().__init__()
        self.model = StoreModel()

    def teardown(self):
        self.model.close()

    @initialize(ktp=st.integers(0, 4), kia=st.integers(0, 4))
    def stock_up(self, ktp, kia):
        for card_type, count in (("KTP_EL", ktp), ("KIA", kia)):
            if count:
                self.model.receive(f"init-{card_type}", card_type, count)

    @rule(card_type=st.sampled_from(CARD_TYPES), priority=st.integers(0, 9), record=st.integers(0, 5),
          not_after=st.booleans())
    def submit(self, card_type, priority, record, not_after):
        self.model.submit(card_type, priority, record, not_after)

    @precondition(lambda self: self.model.payloads)
    @rule(data=st.data(), change=st.booleans())
    def resubmit(self, data, change):
        self.model.resubmit(data.draw(st.sampled_from(sorted(self.model.payloads))), change)

    @_when_any(J.QUEUED)
    @rule(data=st.data())
    def claim(self, data):
        self.model.claim(data.draw(st.sampled_from(self.model.jobs_in(J.QUEUED))))

    @_when_any(J.PRINTING, J.IN_DOUBT)
    @rule(data=st.data())
    def printed(self, data):
        self.model.printed(data.draw(st.sampled_from(self.model.jobs_in(J.PRINTING, J.IN_DOUBT))))

    @_when_any(J.PRINTING)
    @rule(data=st.data())
    def spoiled(self, data):
        self.model.spoiled(data.draw(st.sampled_from(self.model.jobs_in(J.PRINTING))))

    @_when_any(J.PRINTING)
    @rule(data=st.data())
    def release(self, data):
        self.model.release(data.draw(st.sampled_from(self.model.jobs_in(J.PRINTING))))

    @rule()
    def recover(self):
        self.model.recover()

    @rule(batch=st.integers(0, 4), card_type=st.sampled_from(CARD_TYPES), count=st.integers(1, 5))
    def receive(self, batch, card_type, count):
        self.model.receive(batch, card_type, count)

    @_when_any(*J.STATES)
    @rule(data=st.data())
    def cancel(self, data):
        self.model.cancel(data.draw(st.sampled_from(sorted(self.model.expected))))

    @rule(minutes=st.integers(0, 15))
    def expire(self, minutes):
        self.model.expire(minutes)

    @invariant()
    def promises_hold(self):
        self.model.check()


StoreMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
test_random_operations_keep_the_promises = StoreMachine.TestCase


@pytest.mark.parametrize("seed", range(4))
def test_a_long_random_day_keeps_the_promises(seed):
    """Longer, weighted random walks than hypothesis makes: many cards printed, spoiled and in doubt."""
    rng = random.Random(seed)
    model = StoreModel()
    try:
        model.receive("init", "KTP_EL", 20)
        operations = [
            (8, lambda: model.submit(rng.choice(CARD_TYPES), rng.randint(0, 9), rng.randint(0, 30), rng.random() < .2)),
            (2, lambda: model.resubmit(rng.choice(sorted(model.payloads)), rng.random() < .5) if model.payloads
             else None),
            (8, lambda: model.claim(rng.choice(model.jobs_in(J.QUEUED))) if model.jobs_in(J.QUEUED) else None),
            (4, lambda: model.printed(rng.choice(model.jobs_in(J.PRINTING, J.IN_DOUBT)))
             if model.jobs_in(J.PRINTING, J.IN_DOUBT) else None),
            (3, lambda: model.spoiled(rng.choice(model.jobs_in(J.PRINTING))) if model.jobs_in(J.PRINTING) else None),
            (2, lambda: model.release(rng.choice(model.jobs_in(J.PRINTING))) if model.jobs_in(J.PRINTING) else None),
            (1, model.recover),
            (2, lambda: model.receive(rng.randint(0, 9), rng.choice(CARD_TYPES), rng.randint(1, 6))),
            (2, lambda: model.cancel(rng.choice(sorted(model.expected))) if model.expected else None),
            (1, lambda: model.expire(rng.randint(0, 15))),
        ]
        weights = [w for w, _ in operations]
        for _ in range(300):
            rng.choices(operations, weights)[0][1]()
            model.check()
        counts = model.store.counts()
        assert counts[J.PRINTED] > 0 and sum(model.store.stock()[t]["spoiled"] for t in CARD_TYPES) > 0
        assert model.store.verify_audit_chain() == len(audit_rows(model.store))
    finally:
        model.close()
