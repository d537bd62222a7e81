"""Chip files that cannot fit: refused at submit (chip_too_large), and at most one blank when the chip is smaller."""

from __future__ import annotations

import random

import pytest
from card_on_table import CardOnTable
from job_payloads import B64, BOTH, good, refusal

from kartud.hw.encoder import EncodeError, Encoder
from kartud.hw.sim.card import SimChipCard
from kartud.rules import jobs as J
from kartud.rules.errors import CommandError

UID = bytes.fromhex("04A1B2C3D4E5F6")


def _chip(*sizes: int) -> dict:
    rng = random.Random(sum(sizes))
    return {"files": {f"01{n + 1:02X}": B64(rng.randbytes(size)) for n, size in enumerate(sizes)}}


# -- the encoder ------------------------------------------------------------------------------------------


def test_files_over_the_configured_capacity_are_chip_too_large_before_the_card_is_touched():
    channel = CardOnTable(SimChipCard(uid=UID))
    with pytest.raises(EncodeError) as caught:
        Encoder(channel, chip_capacity=1000).encode({0x0101: bytes(600), 0x0102: bytes(401)})
    assert caught.value.kind == "chip_too_large" and "1001" in str(caught.value) and "1000" in str(caught.value)
    assert channel.apdus == [] and channel.released == 1


def test_a_chip_smaller_than_said_answers_6a84_to_create_file_and_nothing_is_written():
    card = SimChipCard(uid=UID, capacity=1000)
    channel = CardOnTable(card)
    with pytest.raises(EncodeError) as caught:
        Encoder(channel, chip_capacity=8192).encode({0x0101: bytes(600), 0x0102: bytes(401)})
    assert caught.value.kind == "chip_too_large" and "0102" in str(caught.value)
    assert not any(a[1] == 0xD6 for a in channel.apdus)          # found out before a byte was written
    assert channel.released == 1


def test_a_file_past_the_reach_of_a_15_bit_offset_is_chip_too_large():
    channel = CardOnTable(SimChipCard(uid=UID, capacity=64 * 1024))
    with pytest.raises(EncodeError) as caught:
        Encoder(channel, chip_capacity=64 * 1024).encode({0x0101: bytes(0x8001)})
    assert caught.value.kind == "chip_too_large" and "0101" in str(caught.value)
    assert channel.apdus == []


def test_a_chip_that_is_not_blank_is_wrong_card():
    card = SimChipCard(uid=UID)
    Encoder(CardOnTable(card)).encode({0x0101: b"first"})
    with pytest.raises(EncodeError) as caught:
        Encoder(CardOnTable(card)).encode({0x0101: b"second"})
    assert caught.value.kind == "wrong_card" and "not blank" in str(caught.value)
    assert bytes(card.files[0x0101]) == b"first"


# -- intake -----------------------------------------------------------------------------------------------


def test_chip_files_over_the_capacity_are_refused_at_submit_as_chip_too_large():
    error = refusal(good(chip=_chip(5000, 3193)), BOTH)                 # 8193 bytes: one over an e-KTP chip
    assert error.code == "invalid_payload" and error.details["reason"] == "chip_too_large"
    [problem] = error.details["problems"]
    assert problem["field"] == "chip.files"
    assert "8193" in problem["problem"] and "8192" in problem["problem"] and "encoder.chip_capacity_bytes" in \
        problem["problem"]
    assert J.validate_submission(good(chip=_chip(5000, 3192)), BOTH).chip_files   # exactly full


def test_the_issues_64_kib_chip_file_is_refused_at_submit():
    """Found: intake allowed 64 KiB, more than the chip holds, and each attempt spoiled a blank."""
    error = refusal(good(chip=_chip(64 * 1024)), BOTH)
    assert error.details["reason"] == "chip_too_large"


def test_the_capacity_is_the_stations():
    payload = good(chip=_chip(20_000))
    assert J.validate_submission(payload, BOTH, chip_capacity=24_000).chip_files
    assert refusal(payload, BOTH).details["reason"] == "chip_too_large"     # the default: 8 KiB


def test_one_file_larger_than_an_offset_reaches_is_chip_too_large_on_any_chip():
    with pytest.raises(CommandError) as caught:
        J.validate_submission(good(chip=_chip(0x8001)), BOTH, chip_capacity=J.MAX_CHIP_BYTES)
    assert caught.value.details["reason"] == "chip_too_large"
    assert [p["field"] for p in caught.value.details["problems"]] == ["chip.files.0101"]


@pytest.mark.parametrize("file_id", ["3F00", "3fff", "FFFF"])
def test_a_file_id_iso_keeps_is_refused_at_submit(file_id):
    error = refusal(good(chip={"files": {file_id: B64(b"x")}}), BOTH)
    assert error.details["problems"] == [
        {"field": "chip.files", "problem": f"file id {file_id.upper()} is reserved by ISO 7816-4 (3F00, 3FFF, FFFF) "
                                          "and no chip creates it: use another"}]
    assert "reason" not in error.details


def test_other_refusals_carry_no_reason():
    assert "reason" not in refusal(good(nik="123"), BOTH).details


# -- the daemon -------------------------------------------------------------------------------------------


def _spoiled(room) -> list[tuple]:
    return room.query("SELECT reason FROM blank_movements WHERE kind = 'spoiled' ORDER BY rowid")


def test_a_job_too_large_for_the_chip_is_refused_at_submit_and_spends_no_blank(room):
    """The finding: a 40 KiB chip file passed intake (64 KiB allowed) and spoiled limits.max_attempts blanks."""
    room.start()
    room.receive_blanks(5)
    job = room.job(chip=_chip(40 * 1024))
    answer = room.submit(job)
    assert answer["status"] == "error" and answer["error"]["code"] == "invalid_payload"
    assert answer["error"]["details"]["reason"] == "chip_too_large"
    assert room.office.request("job/get", {"job_id": job["job_id"]})["error"]["code"] == "not_found"
    fits = room.job()
    room.submit(fits)
    room.wait_state(fits["job_id"], "printed")
    assert [c["destination"] for c in room.cards()] == ["output"]          # only the job that fits left the printer
    assert room.query("SELECT in_stock, spoiled FROM blank_stock WHERE card_type = 'KTP_EL'") == [(4, 0)]


def test_a_chip_smaller_than_the_config_says_spends_one_blank_and_the_job_fails(room):
    """The config promises 40 KiB; the simulated blank holds 8 KiB: the first chip says 6A 84 and the job
    fails there, not after limits.max_attempts blanks (the finding: three blanks of the day's 200)."""
    room.overrides["encoder.chip_capacity_bytes"] = str(40 * 1024)
    room.start()
    room.receive_blanks(5)
    job = room.job(chip=_chip(20_000, 20_000))
    assert room.submit(job)["status"] == "ok"
    failed = room.wait_state(job["job_id"], "failed")["job"]
    assert (failed["reason"], failed["attempts"]) == ("chip_too_large", 1)
    cards = room.cards()
    assert [c["destination"] for c in cards] == ["reject"]                 # what physically left the printer
    assert room.query("SELECT in_stock, printed, spoiled FROM blank_stock WHERE card_type = 'KTP_EL'") == [(4, 0, 1)]
    assert _spoiled(room) == [("chip_too_large",)]
    assert "chip could not be encoded (chip_too_large)" in room.log()


def test_through_a_real_pcscd_too_a_chip_smaller_than_said_spends_one_blank(pcsc_room):
    """The same through pcscd and vpcd: the 6A 84 comes back as a real reader passes it on."""
    room = pcsc_room
    room.overrides["encoder.chip_capacity_bytes"] = str(40 * 1024)
    room.start()
    room.receive_blanks(5)
    job = room.job(chip=_chip(20_000, 20_000))
    room.submit(job)
    failed = room.wait_state(job["job_id"], "failed")["job"]
    assert (failed["reason"], failed["attempts"]) == ("chip_too_large", 1)
    [card] = room.cards()
    assert card["destination"] == "reject"
    assert _spoiled(room) == [("chip_too_large",)]
