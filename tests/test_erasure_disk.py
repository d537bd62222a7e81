"""Erased means gone: after retention the files keep what the ledger needs and no NIK, name, face or chip data.

The station of ``erased_station`` (twenty fake people, their chips holding NIK and name in ASCII, their
faces a run of bytes of their own) is filled, then erased; the raw bytes of every database file, its
``-wal`` and ``-shm`` included, are searched while the station is open and again after it closed.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from erased_station import KEY, RETENTION_DAYS, fill, found_in, people, station_files

from kartud.ledger.store import Store
from kartud.rules.errors import CommandError
from kartud.rules.jobs import validate_submission


@pytest.fixture
def station(tmp_path, manual_clock):
    store = Store(str(tmp_path / "kartud.db"), manual_clock, key=KEY)
    store.open()
    everyone = people()
    fill(store, everyone)
    yield store, everyone
    store.close()


def erase(store: Store) -> int:
    store.clock.advance(RETENTION_DAYS * 86400 + 60)
    return store.erase_personal_data(store.clock.now(), RETENTION_DAYS)


def test_the_search_finds_what_is_there_before_erasure(station, tmp_path):
    store, everyone = station
    files = station_files(tmp_path)
    for p in everyone:      # NIK and name (in the chip's biodata), face and photo: held until retention ends
        held = {secret for _, secret in found_in(files, p.secrets[:5])}
        assert held == set(p.secrets[:5]), f"{p.job['job_id']}'s data is not where the search looks"


def test_no_personal_data_in_any_file_after_erasure_open_or_closed(station, tmp_path):
    store, everyone = station
    assert erase(store) == len(everyone)
    secrets = [s for p in everyone for s in p.secrets]
    assert found_in(station_files(tmp_path), secrets) == []
    store.close()
    assert found_in(station_files(tmp_path), secrets) == []


def test_an_erased_job_keeps_what_the_ledger_needs_and_four_digits_of_its_nik(station):
    store, everyone = station
    before = {p.job["job_id"]: store.get_job(p.job["job_id"]) for p in everyone}
    erase(store)
    for p in everyone:
        view = store.get_job(p.job["job_id"])
        assert view["nik_masked"] == p.nik[:4] + "*" * 12
        kept = ("job_id", "record_id", "card_type", "state", "printed_at", "card_uid", "batch_id", "created_at",
                "updated_at", "reason", "attempts")
        assert {k: view[k] for k in kept} == {k: before[p.job["job_id"]][k] for k in kept}
    printed = store.conn.execute("SELECT COUNT(*) FROM printed_records").fetchone()[0]
    assert printed == len(everyone) - 2
    store.verify_audit_chain()


def test_a_remembered_answer_holds_only_the_minimised_view(station):
    store, everyone = station
    cancelled = everyone[-1]
    erase(store)
    (answer,) = store.conn.execute("SELECT answer FROM requests_done WHERE request_id = 'r-cancel'").fetchone()
    assert json.loads(answer)["data"]["nik_masked"] == cancelled.nik[:4] + "*" * 12
    assert cancelled.nik[4:6] + "*" not in answer and cancelled.nik[-4:] not in answer


def test_the_quarantined_payload_is_erased_and_listed_so(station):
    from kartud.ledger.quarantine import quarantined

    store, _ = station
    assert [q["payload_erased"] for q in quarantined(store.conn)] == [False]
    erase(store)
    assert [q["payload_erased"] for q in quarantined(store.conn)] == [True]


def test_one_card_per_nik_still_holds_after_erasure(station):
    store, everyone = station
    erase(store)
    again = {**everyone[0].job, "job_id": "j-again", "record_id": "PRR-9999-900001"}
    with pytest.raises(CommandError) as refused:
        store.submit_job(validate_submission(again, ["KTP_EL"]))
    assert refused.value.code == "duplicate_nik"


def test_nothing_is_erased_before_retention_or_from_a_live_job(tmp_path, manual_clock):
    from erased_station import person
    import random

    store = Store(str(tmp_path / "kartud.db"), manual_clock, key=KEY)
    store.open()
    try:
        store.receive_blanks("B-1", "KTP_EL", 10, None)
        rng = random.Random(5)
        done, waiting, doubtful = (person(rng, i) for i in (1, 2, 3))
        for p in (done, waiting, doubtful):
            store.submit_job(validate_submission(p.job, ["KTP_EL"]))
        for p, end in ((done, "printed"), (doubtful, "in_doubt")):
            store.claim(p.job["job_id"])
            if end == "printed":
                store.mark_printed(p.job["job_id"], "04AA")
            else:
                store.mark_in_doubt(p.job["job_id"], "interrupted")
        manual_clock.advance(RETENTION_DAYS * 86400 - 60)
        assert store.erase_personal_data(manual_clock.now(), RETENTION_DAYS) == 0
        manual_clock.advance(timedelta(minutes=2).total_seconds())
        assert store.erase_personal_data(manual_clock.now(), RETENTION_DAYS) == 1
        assert found_in(station_files(tmp_path), done.secrets) == []
        for p in (waiting, doubtful):           # not ended, or waiting for a person: kept in full
            assert {s for _, s in found_in(station_files(tmp_path), p.secrets[:5])} == set(p.secrets[:5])
            assert store.get_job(p.job["job_id"])["nik_masked"] == p.nik[:6] + "******" + p.nik[-4:]
    finally:
        store.close()
