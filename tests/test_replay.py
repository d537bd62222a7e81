"""Signed requests are usable once: request_id and ts inside the signed bytes, a stale ts refused, a replay answered as the first time."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
from fuzz_requests import KEY
from fuzz_station import ROOT, START, Station

from kartud.rules.clock import rfc3339
from kartud.rules.signing import sign_request

WIB = timezone(timedelta(hours=7))


@pytest.fixture
def station(tmp_path):
    made = Station(tmp_path / "required", "required")
    yield made
    made.close()


def signed(command: str, payload: dict, ts=None, request_id: str | None = "r-1", drop=()) -> bytes:
    """A request as an office signs it: ``ts`` defaults to the station's own now, in WIB."""
    body = {"request_id": request_id, "ts": rfc3339(START, WIB) if ts is None else ts, **payload}
    body = {k: v for k, v in body.items() if k not in drop}
    return json.dumps(sign_request(f"{ROOT}/request/{command}", body, KEY)).encode()


def one(station: Station, command: str, payload: bytes) -> dict:
    return station.ask([(command, payload)])[0]


def code(answer: dict) -> str | None:
    return answer["error"]["code"] if answer["status"] == "error" else None


def fields(answer: dict) -> set:
    return {p["field"] for p in answer["error"]["details"]["problems"]}


@pytest.mark.parametrize("command, payload", [("queue/pause", {"reason": "lunch"}), ("status/get", {})])
@pytest.mark.parametrize("drop", [("request_id",), ("ts",), ("request_id", "ts")])
def test_a_signed_request_names_each_missing_field(station, command, payload, drop):
    before = station.state()
    answer = one(station, command, signed(command, payload, drop=drop))
    assert code(answer) == "invalid_payload", answer
    assert fields(answer) == set(drop)
    assert station.state() == before


@pytest.mark.parametrize("ts", ["2026-11-27T08:00:00", "27/11/2026 08:00", "", 1796000000, None,
                                "2026-02-30T08:00:00Z"])
def test_a_ts_that_is_no_rfc3339_time_with_an_offset_is_refused(station, ts):
    payload = signed("queue/pause", {}, drop=("ts",)) if ts is None else signed("queue/pause", {}, ts=ts)
    answer = one(station, "queue/pause", payload)
    assert code(answer) == "invalid_payload" and fields(answer) == {"ts"}, answer
    assert station.state()["settings"] == []


@pytest.mark.parametrize("shift, refused", [
    (timedelta(days=-31), True), (timedelta(days=-30, seconds=-1), True), (timedelta(minutes=6), True),
    (timedelta(minutes=5, seconds=1), True), (timedelta(days=-29), False), (timedelta(minutes=4), False),
    (timedelta(0), False)])
def test_a_ts_outside_the_window_is_stale_while_the_clock_is_set(station, shift, refused):
    answer = one(station, "queue/pause", signed("queue/pause", {"reason": "lunch"}, ts=rfc3339(START + shift, WIB)))
    assert code(answer) == ("stale_request" if refused else None), answer
    assert answer["request_id"] == "r-1"
    assert bool(station.state()["settings"]) is not refused
    if refused:
        assert "replay_window_days" in answer["error"]["message"] or "ahead" in answer["error"]["message"]


def test_without_a_set_clock_ts_is_not_judged_but_a_replay_still_changes_nothing(station):
    station.clock.set_wall(START - timedelta(days=400))    # an RTC-less boot: behind the ledger, clock_not_set
    pause = signed("queue/pause", {"reason": "lunch"}, ts=rfc3339(START, WIB))
    first = one(station, "queue/pause", pause)
    assert code(first) is None
    assert code(one(station, "queue/resume", signed("queue/resume", {}, request_id="r-2"))) is None
    assert one(station, "queue/pause", pause) == first      # the same bytes: the first answer, not paused again
    assert station.state()["settings"] == []


def test_a_replay_is_remembered_until_its_ts_is_stale(station):
    """The memory outlives the window by the 5 minutes a ts may be ahead: no moment where a replay is
    neither remembered nor stale."""
    pause = signed("queue/pause", {"reason": "lunch"}, ts=rfc3339(START + timedelta(minutes=4), WIB))
    assert code(one(station, "queue/pause", pause)) is None
    station.clock.advance(10 * 60)
    assert code(one(station, "queue/resume", signed("queue/resume", {}, request_id="r-2",
                                                    ts=rfc3339(station.clock.now(), WIB)))) is None
    for days in (10, 20, 29.9999, 30 + 2 / 1440):        # the last: 30 days and 2 minutes after it was done
        station.clock.set_wall(START + timedelta(days=days))
        # Any changing request prunes the memory: this one with a ts of its own, as an office would send it.
        one(station, "maintenance/cleaned", signed("maintenance/cleaned", {}, request_id=f"c-{days}",
                                                   ts=rfc3339(station.clock.now(), WIB)))
        again = one(station, "queue/pause", pause)
        assert code(again) is None and station.state()["settings"] == [], days
    station.clock.set_wall(START + timedelta(days=30, minutes=5))
    assert code(one(station, "queue/pause", pause)) == "stale_request"
    assert station.state()["settings"] == []


def test_optional_signing_asks_request_id_and_ts_only_of_signed_requests(tmp_path):
    station = Station(tmp_path / "optional", "optional")
    try:
        assert code(one(station, "queue/pause", b'{"reason": "lunch"}')) is None
        assert code(one(station, "queue/resume", signed("queue/resume", {}, drop=("ts",)))) == "invalid_payload"
        assert code(one(station, "queue/resume", signed("queue/resume", {}))) is None
    finally:
        station.close()


def test_a_resolve_about_an_earlier_attempt_is_stale(station):
    view = one(station, "job/get", signed("job/get", {"job_id": "j-doubt-1"}))["data"]
    assert view["state"] == "in_doubt" and view["attempts"] == 1
    assert view["in_doubt_since"] == view["updated_at"] and view["in_doubt_step"] == "feeding"
    resolve = {"job_id": "j-doubt-1", "outcome": "spoiled", "note": "void", "attempts": 0}
    answer = one(station, "job/resolve", signed("job/resolve", resolve, request_id="r-old"))
    assert code(answer) == "stale_request" and answer["error"]["details"]["attempts"] == 1
    answer = one(station, "job/resolve", signed("job/resolve", {**resolve, "attempts": 1}, request_id="r-new"))
    assert answer["data"]["state"] == "queued" and answer["data"]["in_doubt_since"] is None
