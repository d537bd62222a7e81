"""The scheduler's one decision: each rule, and the order in which the rules are applied."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kartud.rules.scheduler import PRINTER_FAULTS_THAT_WAIT, Decision, Facts, decide, next_local_midnight

JAKARTA = ZoneInfo("Asia/Jakarta")
NOW = datetime(2026, 11, 27, 9, 15, 2, tzinfo=JAKARTA)


def facts(**changes) -> Facts:
    """A station that may print: nothing wrong, work queued, blanks in stock, under the limit."""
    base = Facts(now=NOW, paused=False, printer_faults=(), encoder_fault=False,
                 queued_by_type={"KTP_EL": 3, "KIA": 2}, in_doubt=0, in_stock={"KTP_EL": 100, "KIA": 100},
                 started_today=10, daily_limit=200)
    return dataclasses.replace(base, **changes)


def test_a_station_with_nothing_wrong_prints():
    decision = decide(facts())
    assert decision == Decision("printing", None, NOW, ("KTP_EL", "KIA"))
    assert decision.may_start


def test_a_card_in_the_press_is_finished_whatever_else_holds():
    everything_wrong = facts(in_press=True, paused=True, printer_faults=("cover_open", "head_cooling"),
                             encoder_fault=True, queued_by_type={}, in_doubt=3, in_stock={}, started_today=500)
    decision = decide(everything_wrong)
    assert (decision.mode, decision.reason, decision.card_types) == ("printing", None, ())
    assert decision.next_print_at is None


def test_paused_comes_before_faults_and_limits():
    decision = decide(facts(paused=True, printer_faults=("cover_open",), queued_by_type={}, started_today=999))
    assert (decision.mode, decision.reason) == ("paused", "paused_by_operator")
    assert not decision.may_start


@pytest.mark.parametrize("fault", ["printer_disconnected", "feeder_empty", "cover_open", "no_ribbon", "ribbon_ended",
                                   "card_jam", "reject_box_full", "hopper_full", "cleaning_required"])
def test_a_blocking_printer_fault_needs_a_person(fault):
    decision = decide(facts(printer_faults=(fault,)))
    assert (decision.mode, decision.reason) == ("fault", "printer_fault")
    # ... even with nothing queued: a person must act before the next job can print.
    assert decide(facts(printer_faults=(fault,), queued_by_type={})).mode == "fault"
    # ... and also beside a fault that clears by itself.
    assert decide(facts(printer_faults=("head_cooling", fault))).mode == "fault"


@pytest.mark.parametrize("queued", [{}, {"KTP_EL": 0}, {"KTP_EL": 0, "KIA": 0}])
def test_an_empty_queue_is_idle(queued):
    decision = decide(facts(queued_by_type=queued))
    assert decision == Decision("idle", "queue_empty")


def test_an_empty_queue_with_jobs_in_doubt_says_so():
    decision = decide(facts(queued_by_type={}, in_doubt=2))
    assert decision == Decision("idle", "in_doubt_jobs")


def test_jobs_in_doubt_do_not_stop_queued_work():
    assert decide(facts(in_doubt=2)).mode == "printing"


def test_an_empty_queue_comes_before_the_daily_limit_and_stock():
    decision = decide(facts(queued_by_type={}, started_today=200, in_stock={}))
    assert decision.reason == "queue_empty"


@pytest.mark.parametrize("started", [200, 201, 450])
def test_the_daily_limit_waits_until_local_midnight(started):
    decision = decide(facts(started_today=started))
    assert (decision.mode, decision.reason) == ("waiting", "daily_limit_reached")
    assert decision.next_print_at == datetime(2026, 11, 28, 0, 0, tzinfo=JAKARTA)
    assert decision.next_print_at.utcoffset() == timedelta(hours=7)
    assert decision.next_print_at.astimezone(timezone.utc) == datetime(2026, 11, 27, 17, 0, tzinfo=timezone.utc)
    assert decision.card_types == ()


def test_one_card_under_the_limit_may_still_start():
    assert decide(facts(started_today=199)).may_start


def test_the_daily_limit_comes_before_cooling_and_stock():
    decision = decide(facts(started_today=200, printer_faults=("head_cooling",), in_stock={}))
    assert decision.reason == "daily_limit_reached"


def test_head_cooling_waits_without_a_person():
    assert "head_cooling" in PRINTER_FAULTS_THAT_WAIT
    decision = decide(facts(printer_faults=("head_cooling",)))
    assert (decision.mode, decision.reason) == ("waiting", "printer_fault")
    assert not decision.may_start


def test_head_cooling_comes_before_stock():
    assert decide(facts(printer_faults=("head_cooling",), in_stock={})).reason == "printer_fault"


@pytest.mark.parametrize("in_stock", [{}, {"KTP_EL": 0, "KIA": 0}, {"KTP_EL": 0, "KIA": 0, "OTHER": 5}])
def test_out_of_blanks(in_stock):
    decision = decide(facts(in_stock=in_stock))
    assert (decision.mode, decision.reason) == ("waiting", "out_of_blanks")


def test_stock_of_a_type_with_nothing_queued_does_not_help():
    decision = decide(facts(queued_by_type={"KTP_EL": 4, "KIA": 0}, in_stock={"KTP_EL": 0, "KIA": 50}))
    assert decision.reason == "out_of_blanks"


def test_only_the_types_in_stock_may_start():
    decision = decide(facts(in_stock={"KTP_EL": 0, "KIA": 7}))
    assert decision.may_start and decision.card_types == ("KIA",)


def test_out_of_blanks_comes_before_the_encoder():
    assert decide(facts(encoder_fault=True, in_stock={})).reason == "out_of_blanks"


def test_an_encoder_fault_with_only_chip_jobs_needs_a_person():
    decision = decide(facts(encoder_fault=True, queued_by_type={"KTP_EL": 5}))
    assert (decision.mode, decision.reason) == ("fault", "encoder_fault")
    # ... also when KIA jobs are queued but there are no KIA blanks.
    decision = decide(facts(encoder_fault=True, in_stock={"KTP_EL": 5, "KIA": 0}))
    assert (decision.mode, decision.reason) == ("fault", "encoder_fault")


def test_an_encoder_fault_still_lets_kia_print():
    decision = decide(facts(encoder_fault=True))
    assert decision.may_start
    assert decision.card_types == ("KIA",)
    assert decision.next_print_at == NOW


def test_chip_types_are_configurable():
    decision = decide(facts(encoder_fault=True, chip_types=("KTP_EL", "KIA")))
    assert decision.reason == "encoder_fault"
    assert decide(facts(encoder_fault=True, chip_types=())).card_types == ("KTP_EL", "KIA")


@pytest.mark.parametrize("queued, expected", [
    ({"KTP_EL": 1}, ("KTP_EL",)),
    ({"KIA": 1}, ("KIA",)),
    ({"KTP_EL": 1, "KIA": 1}, ("KTP_EL", "KIA")),
    ({"KIA": 3, "KTP_EL": 1}, ("KIA", "KTP_EL")),
    ({"KTP_EL": 0, "KIA": 1}, ("KIA",)),
])
def test_printing_lists_the_printable_card_types(queued, expected):
    decision = decide(facts(queued_by_type=queued))
    assert decision.mode == "printing" and decision.reason is None
    assert decision.card_types == expected


def test_the_rules_in_order():
    """Remove the reasons one by one, from the operator's to the encoder's, and watch the answer change."""
    wrong = dict(in_press=True, paused=True, printer_faults=("cover_open",), queued_by_type={"KTP_EL": 1},
                 started_today=200, in_stock={"KTP_EL": 0}, encoder_fault=True)
    steps = [
        ("in_press", False, ("printing", None)),
        ("paused", False, ("paused", "paused_by_operator")),
        ("printer_faults", ("head_cooling",), ("fault", "printer_fault")),
        ("started_today", 0, ("waiting", "daily_limit_reached")),
        ("printer_faults", (), ("waiting", "printer_fault")),
        ("in_stock", {"KTP_EL": 1}, ("waiting", "out_of_blanks")),
        ("encoder_fault", False, ("fault", "encoder_fault")),
        (None, None, ("printing", None)),
    ]
    answers = []
    for name, value, _ in steps:
        decision = decide(facts(**wrong))
        answers.append((decision.mode, decision.reason))
        if name is not None:
            wrong[name] = value
    assert answers == [expected for _, _, expected in steps]


# -- next local midnight ----------------------------------------------------------------------------


@pytest.mark.parametrize("now, midnight", [
    (datetime(2026, 11, 27, 9, 15, tzinfo=JAKARTA), datetime(2026, 11, 28, tzinfo=JAKARTA)),
    (datetime(2026, 11, 27, 0, 0, tzinfo=JAKARTA), datetime(2026, 11, 28, tzinfo=JAKARTA)),
    (datetime(2026, 11, 27, 23, 59, 59, tzinfo=JAKARTA), datetime(2026, 11, 28, tzinfo=JAKARTA)),
    (datetime(2026, 12, 31, 20, 0, tzinfo=JAKARTA), datetime(2027, 1, 1, tzinfo=JAKARTA)),
    (datetime(2028, 2, 28, 12, 0, tzinfo=JAKARTA), datetime(2028, 2, 29, tzinfo=JAKARTA)),
    (datetime(2026, 11, 27, 18, 0, tzinfo=timezone.utc), datetime(2026, 11, 28, tzinfo=timezone.utc)),
])
def test_next_local_midnight(now, midnight):
    result = next_local_midnight(now)
    assert result == midnight
    assert result > now and result - now <= timedelta(days=1)
    assert (result.hour, result.minute, result.second, result.microsecond) == (0, 0, 0, 0)
    assert result.tzinfo is now.tzinfo


def test_next_local_midnight_is_local_not_utc():
    # 23:30 UTC on the 27th is 06:30 on the 28th in Jakarta: the next local midnight is the 29th's.
    now = datetime(2026, 11, 27, 23, 30, tzinfo=timezone.utc).astimezone(JAKARTA)
    assert next_local_midnight(now) == datetime(2026, 11, 29, tzinfo=JAKARTA)
    assert next_local_midnight(now).astimezone(timezone.utc) == datetime(2026, 11, 28, 17, 0, tzinfo=timezone.utc)
