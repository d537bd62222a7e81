"""The daemon encoding chips through a real pcscd: kartud-sim printer presents each parked card through vpcd."""

from __future__ import annotations

from print_room import chip_sha
from pcsc_fixtures import READER


def _steps(room, job_id: str) -> list[tuple]:
    return [(e["job"]["state"], e["job"]["step"]) for e in room.seen if e["job"]["job_id"] == job_id]


def _stock(room, card_type: str = "KTP_EL") -> list[tuple]:
    return room.query("SELECT in_stock, printed, spoiled FROM blank_stock WHERE card_type = ?", card_type)


def _spoil_reasons(room) -> list[str]:
    return [r[0] for r in room.query("SELECT reason FROM blank_movements WHERE kind = 'spoiled' ORDER BY rowid")]


def test_a_ktp_el_job_is_encoded_verified_and_printed_and_a_kia_job_never_prints_on_a_chip_blank(pcsc_room):
    room = pcsc_room.start()
    room.office.wait_state(lambda s: s["encoder"] == {"connected": True, "reader": READER})
    room.receive_blanks(5, "KTP_EL")
    room.receive_blanks(5, "KIA")
    job = room.job("KTP_EL")
    assert room.submit(job)["status"] == "ok"
    printed = room.wait_state(job["job_id"], "printed")["job"]
    assert room.steps_to_printed(job["job_id"]) == [("queued", None), ("printing", "feeding"),
                                                    ("printing", "encoding"), ("printing", "printing"),
                                                    ("printing", "ejecting"), ("printed", None)]
    [card] = room.cards()
    assert card["destination"] == "output"
    assert printed["card_uid"] == card["chip_uid"]               # what the chip itself answered to GET UID
    assert card["chip_files_sha256"] == chip_sha(job)            # every file as the job sent it
    assert room.query("SELECT card_uid FROM printed_records WHERE job_id = ?", job["job_id"]) == [(card["chip_uid"],)]

    # The feeder holds chip blanks: the reader sees the chip through pcscd before a face is printed on it.
    kia = room.job("KIA")
    room.submit(kia)
    room.wait_fault("wrong_blank")
    assert ("printing", "encoding") not in _steps(room, kia["job_id"])
    assert room.query("SELECT state, reason, attempts FROM jobs WHERE job_id = ?", kia["job_id"]) == \
        [("queued", "wrong_blank", 0)]
    second = room.cards()[1]
    assert second["destination"] == "reject" and second["panels"] == [] and second["chip_uid"] is not None
    assert _stock(room, "KTP_EL")[0][-1] == 1 and _stock(room, "KIA")[0][0] == 5   # spoiled as the KTP-el it is


def test_a_write_the_first_card_refuses_rejects_it_and_the_job_prints_on_the_next_blank(pcsc_room):
    room = pcsc_room.start()
    room.receive_blanks(5, "KTP_EL")
    room.sim.control("arm encode chip_write_refused")
    job = room.job("KTP_EL")
    room.submit(job)
    printed = room.wait_state(job["job_id"], "printed")["job"]
    requeued = [e["job"] for e in room.seen if e["job"]["job_id"] == job["job_id"] and e["job"]["state"] == "queued"]
    assert requeued[-1]["reason"] == "encode_failed" and requeued[-1]["attempts"] == 1
    assert printed["attempts"] == 2
    rejected, output = room.cards()
    assert (rejected["destination"], rejected["chip_files_sha256"]) == ("reject", None)
    assert output["destination"] == "output" and output["chip_files_sha256"] == chip_sha(job)
    assert printed["card_uid"] == output["chip_uid"] != rejected["chip_uid"]
    assert _stock(room) == [(3, 1, 1)]
    assert _spoil_reasons(room) == ["encode_failed"]


def test_a_card_pulled_out_of_the_field_mid_write_is_rejected_and_the_job_prints_on_the_next(pcsc_room):
    room = pcsc_room.start()
    room.receive_blanks(5, "KTP_EL")
    room.sim.control("arm encode chip_leaves_field")
    job = room.job("KTP_EL")
    room.submit(job)
    printed = room.wait_state(job["job_id"], "printed")["job"]
    assert printed["attempts"] == 2
    assert [c["destination"] for c in room.cards()] == ["reject", "output"]
    assert room.cards()[1]["chip_files_sha256"] == chip_sha(job)
    assert _spoil_reasons(room) == ["encode_failed"]
    assert "chip could not be encoded (no_card)" in room.log()


def test_pcscd_killed_and_restarted_under_a_running_daemon(pcsc_room, pcscd):
    room = pcsc_room.start()
    pid = room.process.pid
    room.receive_blanks(5, "KTP_EL")
    first = room.job("KTP_EL")
    room.submit(first)
    room.wait_state(first["job_id"], "printed")

    pcscd.kill()
    room.wait_fault("encoder_disconnected")
    second = room.job("KTP_EL")
    room.submit(second)
    held = room.office.wait_state(lambda s: s["queue"]["queued"] == 1 and s["reason"] == "encoder_fault")
    assert held["encoder"]["connected"] is False
    pcscd.start()
    room.wait_fault("encoder_disconnected", active=False)
    printed = room.wait_state(second["job_id"], "printed")["job"]
    assert printed["attempts"] == 1                              # nothing was fed while pcscd was away
    assert [c["destination"] for c in room.cards()] == ["output", "output"]
    assert room.cards()[1]["chip_uid"] == printed["card_uid"]
    assert room.process.poll() is None and room.process.pid == pid
    assert _stock(room) == [(3, 2, 0)]


def test_no_reader_at_start_the_daemon_waits_with_encoder_disconnected_and_prints_once_it_appears(pcsc_room, pcscd):
    pcscd.ensure(reader=False)
    room = pcsc_room.start()
    room.wait_fault("encoder_disconnected")
    room.receive_blanks(5, "KTP_EL")
    room.receive_blanks(5, "KIA")
    job = room.job("KTP_EL")
    room.submit(job)
    kia = room.job("KIA")
    room.submit(kia)
    room.wait_state(kia["job_id"], "printed")                    # a card without a chip needs no encoder
    room.office.wait_state(lambda s: s["queue"]["queued"] == 1 and s["reason"] == "encoder_fault")
    pcscd.ensure(reader=True)
    room.wait_fault("encoder_disconnected", active=False)
    printed = room.wait_state(job["job_id"], "printed")["job"]
    assert printed["attempts"] == 1
    assert room.cards()[-1]["chip_uid"] == printed["card_uid"]
    assert room.office.wait_state(lambda s: s["encoder"]["connected"])["encoder"]["reader"] == READER
