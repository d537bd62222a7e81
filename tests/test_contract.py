"""Contract conformance: every command of contract/mqtt-api.md over a real mosquitto, its answers and its errors."""

from __future__ import annotations

import base64
import io
import json

import pytest
from print_room import ROOT

from kartud.room.office import OfficeClient

VIEW_FIELDS = {"job_id", "record_id", "card_type", "nik_masked", "state", "step", "reason", "attempts", "priority",
               "created_at", "updated_at", "printed_at", "card_uid", "batch_id"}
EXTENSIONS = {"in_doubt_since", "in_doubt_step"}     # added fields, documented in docs/mqtt.md
STATE_FIELDS = {"station", "version", "at", "mode", "reason", "faults", "today", "next_print_at", "queue", "blanks",
                "printer", "encoder"}


def ok(answer: dict) -> dict:
    assert answer["status"] == "ok", answer
    return answer["data"]


def error(answer: dict, code: str) -> dict:
    assert answer["status"] == "error" and answer["error"]["code"] == code, answer
    assert answer["error"]["message"]
    return answer["error"]


@pytest.fixture
def office(room):
    room.start()
    return room.office


def test_every_command_answers_with_the_contracts_shapes(room, office):
    # blanks/receive, idempotent by batch id
    assert ok(office.request("blanks/receive", {"batch_id": "B1", "card_type": "KTP_EL", "count": 3})) == \
        {"batch_id": "B1", "card_type": "KTP_EL", "in_stock": 3}
    assert ok(office.request("blanks/receive", {"batch_id": "B1", "card_type": "KTP_EL", "count": 3}))["in_stock"] == 3
    error(office.request("blanks/receive", {"batch_id": "B1", "card_type": "KTP_EL", "count": 4}), "batch_conflict")
    error(office.request("blanks/receive", {"batch_id": "B2", "card_type": "X", "count": -1}), "invalid_payload")

    # blanks/adjust: a reason is required, stock can't go below zero, the same adjustment counts once
    assert ok(office.request("blanks/adjust", {"card_type": "KTP_EL", "delta": 2, "reason": "stocktake found 2",
                                               "request_id": "adj-1"})) == {"card_type": "KTP_EL", "in_stock": 5}
    assert ok(office.request("blanks/adjust", {"card_type": "KTP_EL", "delta": 2, "reason": "stocktake found 2",
                                               "request_id": "adj-1"}))["in_stock"] == 5
    details = error(office.request("blanks/adjust", {"card_type": "KTP_EL", "delta": -1}), "invalid_payload")
    assert [p["field"] for p in details["details"]["problems"]] == ["reason", "request_id"]
    details = error(office.request("blanks/adjust", {"card_type": "KTP_EL", "delta": -9, "reason": "lost",
                                                     "request_id": "adj-2"}), "invalid_payload")
    assert "below zero" in details["details"]["problems"][0]["problem"]

    # queue/pause before submitting, so the job waits where we can see it
    state = ok(office.request("queue/pause", {"reason": "lunch"}))
    assert set(state) >= STATE_FIELDS and (state["mode"], state["reason"]) == ("paused", "paused_by_operator")
    job = room.job()
    submitted = ok(office.request("job/submit", job))
    assert submitted == {"job_id": job["job_id"], "state": "queued", "queue_position": 1}
    view = ok(office.request("job/get", {"job_id": job["job_id"]}))
    assert set(view) == VIEW_FIELDS | EXTENSIONS and view["state"] == "queued"
    assert ok(office.request("job/list", {"state": "queued"}))["jobs"] == [view]
    error(office.request("job/get", {"job_id": "nope"}), "not_found")
    error(office.request("job/list", {"limit": 5000}), "invalid_payload")

    # job/cancel: only queued jobs, twice is one effect
    other = room.job()
    ok(office.request("job/submit", other))
    assert ok(office.request("job/cancel", {"job_id": other["job_id"]}))["state"] == "cancelled"
    assert ok(office.request("job/cancel", {"job_id": other["job_id"]}))["state"] == "cancelled"
    error(office.request("job/cancel", {"job_id": "nope"}), "not_found")

    # resume: the job prints
    assert ok(office.request("queue/resume", {}))["mode"] in ("printing", "idle")
    assert ok(office.request("queue/resume", {}))["reason"] != "paused_by_operator"
    room.wait_state(job["job_id"], "printed")
    error(office.request("job/cancel", {"job_id": job["job_id"]}), "not_cancellable")
    error(office.request("job/resolve", {"job_id": job["job_id"], "outcome": "printed", "note": "x"}), "not_in_doubt")

    # maintenance/cleaned answers the state document; report/daily balances
    assert set(ok(office.request("maintenance/cleaned", {"note": "weekly clean"}))) >= STATE_FIELDS
    today = ok(office.request("status/get", {}))["today"]["date"]
    report = ok(office.request("report/daily", {"date": today}))
    assert report["date"] == today and report["printed"] == 1 and report["cancelled"] == 1
    ktp = report["blanks"]["KTP_EL"]
    assert ktp == {"opening": 0, "received": 3, "printed": 1, "spoiled": 0, "adjusted": 2, "closing": 4}
    error(office.request("report/daily", {"date": "27-11-2026"}), "invalid_payload")


def test_an_in_doubt_job_is_resolved_by_a_person_and_the_blank_accounted_either_way(room):
    room.env["KARTUD_CRASH_AT"] = "after_eject"
    room.start()
    room.receive_blanks(5)
    first, second = room.job(), room.job()
    room.submit(first)
    assert room.process.wait(30) == -9
    room.env.pop("KARTUD_CRASH_AT")
    room.start()
    office = room.office
    state = ok(office.request("status/get", {}))
    assert state["queue"]["in_doubt"] == 1 and state["in_doubt_jobs"] == [first["job_id"]]
    error(office.request("job/resolve", {"job_id": first["job_id"], "outcome": "maybe"}), "invalid_payload")

    resolved = ok(office.request("job/resolve", {"job_id": first["job_id"], "outcome": "printed",
                                                 "note": "card found in the output hopper, handed out"}))
    assert resolved["state"] == "printed"
    again = ok(office.request("job/resolve", {"job_id": first["job_id"], "outcome": "printed", "note": "again"}))
    assert again == resolved                                  # twice is one effect
    assert room.query("SELECT record_id FROM printed_records") == [(first["record_id"],)]
    error(room.submit(room.job(record_id=first["record_id"])), "duplicate_record")
    assert room.query("SELECT reserved, printed FROM blank_stock WHERE card_type = 'KTP_EL'") == [(0, 1)]

    # The other way: spoiled voids the blank and queues the job again, and it prints.
    room.stop()
    room.env["KARTUD_CRASH_AT"] = "after_print"
    room.start()
    room.submit(second)
    assert room.process.wait(30) == -9
    room.env.pop("KARTUD_CRASH_AT")
    room.start()
    spoiled = ok(room.office.request("job/resolve", {"job_id": second["job_id"], "outcome": "spoiled",
                                                     "note": "half-printed card in the printer, destroyed"}))
    assert spoiled["state"] == "queued"
    assert room.wait_state(second["job_id"], "printed")["job"]["attempts"] == 2
    assert room.query("SELECT reserved, printed, spoiled FROM blank_stock WHERE card_type = 'KTP_EL'") == [(0, 2, 1)]
    report = ok(room.office.request("report/daily", {"date": ok(room.office.request("status/get", {}))["today"]["date"]}))
    assert report["spoiled"] == {"in_doubt_spoiled": 1} and report["spoiled_cards"][0]["job_id"] == second["job_id"]


def test_one_card_per_nik_unless_a_reprint(room, office):
    room.receive_blanks(5)
    ok(office.request("queue/pause", {"reason": "the first card waits"}))     # so it stays queued
    first = room.job()
    ok(room.submit(first))
    same_person = room.job(nik=first["nik"])
    refused = error(room.submit(same_person), "duplicate_nik")
    assert first["nik"] not in json.dumps(refused)
    reprint = room.job(nik=first["nik"], reprint={"of_record_id": first["record_id"], "reason": "lost"})
    # A reprint is one card, not a licence: not while another card for the NIK is on its way.
    assert first["nik"] not in json.dumps(error(room.submit(reprint), "duplicate_nik"))
    ok(office.request("job/cancel", {"job_id": first["job_id"]}))
    assert ok(room.submit(reprint))["state"] == "queued"
    kia = room.job("KIA", nik=first["nik"])                   # another card type is another card
    ok(room.submit(kia))


def test_job_validation_refuses_broken_images_and_past_deadlines(room, office):
    from PIL import Image

    job = room.job()
    truncated = base64.b64decode(job["front_png"])[:-40]
    error(room.submit({**job, "front_png": base64.b64encode(truncated).decode()}), "invalid_payload")
    out = io.BytesIO()
    Image.new("RGB", (1016, 640)).save(out, format="PNG")
    problems = error(room.submit({**room.job(), "front_png": base64.b64encode(out.getvalue()).decode()}),
                     "invalid_payload")["details"]["problems"]
    assert problems == [{"field": "front_png", "problem": problems[0]["problem"]}] and "1016x640" in problems[0]["problem"]
    error(room.submit(room.job(not_after="2001-01-01T00:00:00+07:00")), "expired")
    error(room.submit(room.job(card_type="PASSPORT")), "invalid_payload")
    only_kia = room.job("KIA")
    room.stop()
    room.overrides["station.card_types"] = '["KTP_EL"]'
    room.start()
    error(room.submit(only_kia), "unsupported_card_type")
    assert room.query("SELECT COUNT(*) FROM jobs") == [(0,)]


def test_requests_without_a_response_topic_are_answered_on_the_response_topic(room, office):
    import queue

    answers: "queue.Queue[dict]" = queue.Queue()
    with OfficeClient("127.0.0.1", room.broker.port, ROOT) as plain:
        plain.client.on_message = lambda c, u, m: answers.put(json.loads(m.payload)) \
            if m.topic == f"{ROOT}/response/status/get" else None
        plain.client.subscribe(f"{ROOT}/response/status/get", qos=1)
        plain.client.publish(f"{ROOT}/request/status/get", json.dumps({"request_id": "r-9"}), qos=1).wait_for_publish()
        answer = answers.get(timeout=10)
    assert answer["request_id"] == "r-9" and answer["status"] == "ok"
