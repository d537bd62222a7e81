"""One card all the way, through a real mosquitto, the real daemon process and the simulated printer."""

from __future__ import annotations

from print_room import ROOT, chip_sha

from kartud.room.office import OfficeClient


def test_a_submitted_job_is_printed_and_the_office_sees_it_all(room):
    room.start()
    assert room.receive_blanks(10)["data"] == {"batch_id": "B-KTP_EL-10", "card_type": "KTP_EL", "in_stock": 10}
    job = room.job()
    answer = room.submit({**job, "request_id": "r-1"})
    assert answer == {"request_id": "r-1", "status": "ok",
                      "data": {"job_id": job["job_id"], "state": "queued", "queue_position": 1}}

    printed = room.wait_state(job["job_id"], "printed")["job"]
    assert room.steps_to_printed(job["job_id"]) == [("queued", None), ("printing", "feeding"), ("printing", "encoding"),
                      ("printing", "printing"), ("printing", "ejecting"), ("printed", None)]

    cards = room.cards()
    assert len(cards) == 1 and cards[0]["destination"] == "output"
    assert cards[0]["chip_files_sha256"] == chip_sha(job)           # the chip holds exactly the job's files
    assert printed["card_uid"] == cards[0]["chip_uid"]              # and the ledger knows which card it is
    assert printed["batch_id"] == "B-KTP_EL-10" and printed["attempts"] == 1
    assert printed["nik_masked"] == job["nik"][:6] + "******" + job["nik"][-4:]

    got = room.office.request("job/get", {"job_id": job["job_id"]})["data"]
    assert got["state"] == "printed" and got["card_uid"] == printed["card_uid"]

    # A newcomer gets the retained state and availability at once.
    with OfficeClient("127.0.0.1", room.broker.port, ROOT) as newcomer:
        newcomer.wait_availability("online")
        state = newcomer.wait_state(lambda s: s["today"]["printed"] == 1)
    assert state["station"] == "test-room-01" and state["mode"] == "idle" and state["reason"] == "queue_empty"
    assert state["queue"] == {"queued": 0, "in_doubt": 0}
    assert state["blanks"]["KTP_EL"] == {"in_stock": 9, "low": True}
    assert set(state) >= {"station", "version", "at", "mode", "reason", "faults", "today", "next_print_at", "queue",
                          "blanks", "printer", "encoder"}
    # Without mqtt.tls_ca it never loaded Python's ssl, nor OpenSSL's libssl (1.1 MiB: kartud.service.cli).
    assert "libssl" not in open(f"/proc/{room.process.pid}/maps").read()


def test_a_second_job_for_a_record_is_refused_and_changes_nothing(room):
    room.start()
    room.receive_blanks(10)
    first = room.job()
    room.submit(first)
    room.wait_state(first["job_id"], "printed")
    tables = "SELECT * FROM jobs ORDER BY seq", "SELECT * FROM printed_records", "SELECT * FROM blank_stock"
    before = [room.query(sql) for sql in tables]

    again = room.job(record_id=first["record_id"])
    answer = room.submit(again)

    assert answer["status"] == "error" and answer["error"]["code"] == "duplicate_record"
    assert first["record_id"] in answer["error"]["message"] and answer["error"]["details"]["state"] == "printed"
    assert again["nik"] not in str(answer)
    assert [room.query(sql) for sql in tables] == before
    assert len(room.cards()) == 1


def test_a_queued_record_also_blocks_a_second_job(room):
    room.start()  # no blanks: the first job stays queued
    first = room.job()
    assert room.submit(first)["status"] == "ok"
    answer = room.submit(room.job(record_id=first["record_id"]))
    assert answer["error"]["code"] == "duplicate_record" and answer["error"]["details"]["state"] == "queued"
    state = room.office.request("status/get", {})["data"]
    assert (state["mode"], state["reason"]) == ("waiting", "out_of_blanks")


def test_resubmitting_the_same_job_answers_resubmitted_and_different_content_conflicts(room):
    room.start()
    job = room.job()
    assert room.submit(job)["data"]["state"] == "queued"
    again = room.submit({**job, "request_id": "retry-2"})
    assert again == {"request_id": "retry-2", "status": "ok",
                     "data": {"job_id": job["job_id"], "state": "queued", "queue_position": 1, "resubmitted": True}}
    conflict = room.submit({**job, "priority": 5})
    assert conflict["error"]["code"] == "job_id_conflict"
    assert room.query("SELECT COUNT(*) FROM jobs") == [(1,)]


def test_bad_requests_get_clear_errors(room):
    room.overrides["mqtt.max_payload_bytes"] = "4096"
    room.start()
    office = room.office
    assert office.request("job/submit", b"{not json")["error"]["code"] == "invalid_payload"
    assert office.request("job/submit", b"[1, 2]")["error"]["code"] == "invalid_payload"
    assert office.request("job/submit", b"\xff\xfe")["error"]["code"] == "invalid_payload"
    assert office.request("job/submit", b"{" + b" " * 5000 + b"}")["error"]["code"] == "payload_too_large"
    assert office.request("no/such", {})["error"]["code"] == "unknown_command"
    assert office.request("status/get", {}, retain=True)["error"]["code"] == "retained_request"
    office.client.publish(f"{ROOT}/request/status/get", b"", retain=True).wait_for_publish()  # clear it
    refused = office.request("job/submit", {"job_id": "bad id!", "card_type": "PASSPORT", "nik": "123"})
    problems = {p["field"]: p["problem"] for p in refused["error"]["details"]["problems"]}
    assert set(problems) >= {"job_id", "record_id", "card_type", "nik", "front_png"}
    assert room.query("SELECT COUNT(*) FROM jobs") == [(0,)]
    assert room.process.poll() is None
    assert "Traceback" not in room.log()


def test_requests_sent_while_the_daemon_is_down_are_answered_when_it_returns(room):
    room.start()
    assert room.stop() == 0
    correlation = room.office.send("job/submit", room.job())
    room.start()
    answer = room.office.wait_answer(correlation, timeout=20)
    assert answer["status"] == "ok" and answer["data"]["state"] == "queued"
