"""kartuctl against a real control socket (fake daemon behind it) and, with the daemon down, a real database."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys

import pytest
from control_fixtures import FakeDaemon
from ledger_history import write_history

from kartud.ctl.cli import main

STATE = {
    "station": "kota-probolinggo-01", "version": "1.0.0", "at": "2026-11-27T02:15:02+00:00",
    "mode": "waiting", "reason": "pacing",
    "faults": [{"code": "feeder_empty", "since": "2026-11-27T09:10:00+07:00"}],
    "today": {"date": "2026-11-27", "printed": 57, "spoiled": 2, "limit": 200},
    "next_print_at": "2026-11-27T09:17:26+07:00",
    "queue": {"queued": 143, "in_doubt": 1}, "in_doubt_jobs": ["j-2026-11-27-0012"],
    "blanks": {"KTP_EL": {"in_stock": 3944, "low": False}, "KIA": {"in_stock": 12, "low": True}},
    "printer": {"connected": True, "model": "Evolis Primacy 2", "serial": "P2-0001", "ribbon_remaining": 231,
                "cards_until_cleaning": 943},
    "encoder": {"connected": True, "reader": "Evolis SCR"},
}


@pytest.fixture
def station(tmp_path, served):
    """A config whose socket has a fake daemon behind it; ``run(*argv, lang=...)`` → (status, out, err)."""
    config = tmp_path / "kartud.toml"
    config.write_text(f'[station]\nid = "kota-probolinggo-01"\ncard_types = ["KTP_EL", "KIA"]\n'
                      f'[control]\nsocket = "{tmp_path}/control.sock"\n[store]\npath = "{tmp_path}/kartud.db"\n')
    daemon = FakeDaemon()
    daemon.replies["status/get"] = {"status": "ok", "data": STATE}
    server = served(daemon, str(tmp_path / "control.sock"))

    class Station:
        def __init__(self):
            self.daemon, self.server, self.config, self.dir = daemon, server, str(config), tmp_path

        def run(self, *argv, lang="en"):
            out, err = io.StringIO(), io.StringIO()
            status = main(["--config", self.config, *argv], out=out, err=err,
                          environ={"LANG": "id_ID.UTF-8" if lang == "id" else "en_GB.UTF-8"})
            return status, out.getvalue(), err.getvalue()

    return Station()


@pytest.mark.parametrize("argv, command, payload", [
    (["status"], "status/get", {}),
    (["jobs"], "job/list", {"limit": 100}),
    (["jobs", "--state", "in_doubt", "--limit", "5"], "job/list", {"state": "in_doubt", "limit": 5}),
    (["job", "j-1"], "job/get", {"job_id": "j-1"}),
    (["cancel", "j-1"], "job/cancel", {"job_id": "j-1"}),
    (["resolve", "j-1", "spoiled", "--note", "tertekuk"], "job/resolve",
     {"job_id": "j-1", "outcome": "spoiled", "note": "tertekuk"}),
    (["resolve", "j-1", "printed", "--note", "baik", "--attempts", "2"], "job/resolve",
     {"job_id": "j-1", "outcome": "printed", "note": "baik", "attempts": 2}),
    (["pause"], "queue/pause", {}),
    (["pause", "--reason", "ganti pita"], "queue/pause", {"reason": "ganti pita"}),
    (["resume"], "queue/resume", {}),
    (["blanks", "receive", "B-1", "KIA", "500", "--note", "surat 12"], "blanks/receive",
     {"batch_id": "B-1", "card_type": "KIA", "count": 500, "note": "surat 12"}),
    (["blanks", "adjust", "KTP_EL", "-2", "--reason", "bengkok"], "blanks/adjust",
     {"card_type": "KTP_EL", "delta": -2, "reason": "bengkok"}),
    (["cleaned", "--note", "roller"], "maintenance/cleaned", {"note": "roller"}),
    (["report", "2026-11-27"], "report/daily", {"date": "2026-11-27"}),
])
def test_each_command_sends_the_contracts_request(station, argv, command, payload):
    station.run(*argv, "--json")
    if command == "blanks/adjust":             # an id of its own each time: a repeat is then counted once
        assert station.daemon.calls[0][1].pop("request_id").startswith("kartuctl-")
    assert station.daemon.calls == [(command, payload)]


def test_status_is_one_screen_in_indonesian_or_english(station):
    status, out, err = station.run("status", lang="id")
    assert status == 0 and err == ""
    for words in ("Stasiun kota-probolinggo-01", "Jumat, 27 November 2026 09:15 WIB", "MENUNGGU: jeda antarkartu",
                  "59 dari batas 200 (57 tercetak, 2 rusak); sisa 141", "pukul 09:17", "143 menunggu, 1 diragukan",
                  "KIA 12 SEDIKIT (di bawah 200)", "feeder_empty (sejak 09:10): tempat blangko di printer kosong",
                  'kartuctl resolve j-2026-11-27-0012 printed --note "kartu ada dan baik"',
                  "kartuctl resolve j-2026-11-27-0012 spoiled", "Evolis Primacy 2 SN P2-0001; pita 231"):
        assert words in out, words
    assert len(out.splitlines()) <= 24                                      # one screen
    _, english, _ = station.run("status", "--lang", "en")                   # --lang wins over LANG
    assert "WAITING: pausing between cards" in english and "the printer's feeder is empty: load blanks" in english


def test_json_prints_the_responses_data_and_nothing_else(station):
    status, out, err = station.run("status", "--json")
    assert status == 0 and json.loads(out) == STATE and err == ""


def test_a_refusal_exits_1_and_lists_every_problem(station):
    station.daemon.replies["blanks/adjust"] = {"status": "error", "error": {
        "code": "invalid_payload", "message": "the request has 1 problem(s)",
        "details": {"problems": [{"field": "delta",
                                  "problem": "would take KTP_EL stock below zero: only 3 in stock"}]}}}
    status, out, err = station.run("blanks", "adjust", "KTP_EL", "-5", "--reason", "hilang")
    assert status == 1 and out == ""
    assert "Refused by kartud (invalid_payload)" in err and "delta: would take KTP_EL stock below zero" in err
    status, out, _ = station.run("blanks", "adjust", "KTP_EL", "-5", "--reason", "hilang", "--json")
    assert status == 1 and json.loads(out)["error"]["code"] == "invalid_payload"


def test_confirmations_say_what_changed(station):
    station.daemon.replies["blanks/receive"] = {"status": "ok", "data": {"batch_id": "B-7", "card_type": "KTP_EL",
                                                                         "in_stock": 4444}}
    assert "Batch B-7: blangko KTP_EL diterima. Stok KTP_EL sekarang 4444." in station.run(
        "blanks", "receive", "B-7", "KTP_EL", "500", lang="id")[1]
    station.daemon.replies["queue/pause"] = {"status": "ok", "data": {**STATE, "mode": "paused",
                                                                      "reason": "paused_by_operator"}}
    out = station.run("pause", "--reason", "ganti pita")[1]
    assert "The queue is paused" in out
    assert "Mode now: PAUSED (paused by an operator; carry on with: kartuctl resume)" in out


@pytest.mark.parametrize("argv", [
    ["frobnicate"], ["resolve", "j-1", "printed"], ["resolve", "j-1", "maybe", "--note", "x"],
    ["blanks", "receive", "B-1", "PASSPORT", "5"], ["jobs", "--limit", "0"], ["report"],
    ["report", "2026-11-27", "--month", "2026-11"], ["report", "27/11/2026"], ["report", "--month", "2026-13"],
    ["report", "20261127"], ["report", "2026-W48-5"], ["report", "--month", "202611"],
    ["report", "today", "--csv", "--json"], ["--lang", "fr", "status"],
])
def test_usage_errors_exit_2_without_asking_the_daemon(station, argv, capsys):
    status, out, err = station.run(*argv)
    assert status == 2 and station.daemon.calls == []
    assert "Traceback" not in err + capsys.readouterr().err


def test_a_bad_config_exits_2_naming_the_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[station]\nid = "Bad Id"\n[control]\nsocket = "relative.sock"\n')
    err = io.StringIO()
    assert main(["--config", str(config), "status"], out=io.StringIO(), err=err, environ={}) == 2
    assert "station.id: must be 1-64 characters" in err.getvalue()
    assert "control.socket: must be an absolute path" in err.getvalue()
    assert main(["--config", str(tmp_path / "missing.toml"), "status"], out=io.StringIO(), err=err, environ={}) == 2


def test_the_help_lists_every_command_and_exits_0(station, capsys):
    assert station.run("--help")[0] == 0
    text = capsys.readouterr().out
    for name in ("status", "jobs", "job", "cancel", "resolve", "pause", "resume", "blanks", "cleaned", "report",
                 "verify", "Exit status: 0 ok, 1"):
        assert name in text
    assert station.run("--help", lang="id")[0] == 0
    assert "Status keluar" in capsys.readouterr().out


# -- the daemon down ----------------------------------------------------------------------------

@pytest.fixture
def stopped(station):
    """The station with its daemon stopped (no socket) and three days of history in its database."""
    station.server.stop()
    station.history = write_history(str(station.dir / "kartud.db"))
    return station


def test_changing_commands_exit_3_and_change_nothing_when_the_daemon_is_down(stopped):
    for argv in (["pause"], ["resume"], ["cancel", "j-015"], ["cleaned"], ["blanks", "receive", "B-9", "KIA", "5"]):
        status, out, err = stopped.run(*argv, lang="id")
        assert status == 3 and out == "" and "kartud tidak berjalan" in err and "systemctl start kartud" in err


def test_read_only_commands_read_the_database_and_say_so(stopped):
    status, out, err = stopped.run("status")
    assert status == 0 and "kartud is not running" in err and "read directly from the database" in err
    assert "kartud is NOT RUNNING" in out and "1 waiting, 1 in doubt" in out
    doubtful = stopped.history.doubtful_job
    assert f"kartuctl resolve {doubtful} printed" in out and "KTP_EL 34" in out     # one more blank is in hand
    status, out, _ = stopped.run("jobs", "--state", "in_doubt", "--json")
    assert status == 0 and [j["job_id"] for j in json.loads(out)["jobs"]] == [doubtful]
    status, out, _ = stopped.run("job", stopped.history.failed_job)
    assert status == 0 and "failed" in out and "encode_failed" in out
    status, out, err = stopped.run("job", "j-999")
    assert status == 1 and "not_found" in err
    status, out, _ = stopped.run("report", "2026-11-03", "--json")
    assert status == 0 and json.loads(out)["blanks"]["KTP_EL"]["closing"] == 36


def test_reading_a_stopped_daemons_database_leaves_no_file_behind(stopped):
    before = sorted(os.listdir(stopped.dir))
    for argv in (["status"], ["jobs"], ["report", "2026-11-02"], ["verify"]):
        assert stopped.run(*argv)[0] == 0
    # A -wal or -shm owned by whoever ran kartuctl would keep the daemon (user kartud) from opening it.
    assert sorted(os.listdir(stopped.dir)) == before


def test_verify_finds_the_first_broken_link_and_a_stock_that_disagrees_with_its_movements(stopped):
    status, out, _ = stopped.run("verify")
    assert status == 0 and "audit chain is intact" in out and "KTP_EL blank stock matches" in out
    conn = sqlite3.connect(stopped.dir / "kartud.db")
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET detail = '{\"count\":5000}' WHERE id = 3")    # someone "fixes" a figure
    conn.execute("UPDATE blank_stock SET printed = printed + 1, in_stock = in_stock - 1 WHERE card_type = 'KIA'")
    conn.commit()
    conn.close()
    status, out, _ = stopped.run("verify", lang="id")
    assert status == 1
    assert "RANTAI AUDIT RUSAK: the audit chain breaks at row 3" in out
    assert "Stok blangko KIA TIDAK cocok dengan mutasinya: printed 3 menurut stok, 2 menurut mutasi" in out
    assert json.loads(stopped.run("verify", "--json")[1])["ok"] is False


def test_a_missing_database_exits_3_with_both_reasons(stopped):
    os.rename(stopped.dir / "kartud.db", stopped.dir / "elsewhere.db")
    status, out, err = stopped.run("status")
    assert status == 3 and "not running" in err and "cannot be read" in err and "Traceback" not in err


def test_no_traceback_reaches_the_operator_even_from_a_bug(station):
    station.daemon.replies["status/get"] = {"status": "ok", "data": {"unexpected": True}}
    status, out, err = station.run("status")
    assert status == 1 and "kartuctl failed unexpectedly (KeyError" in err and "Traceback" not in err


def test_the_installed_program_keeps_its_exit_codes(tmp_path):
    config = tmp_path / "k.toml"
    config.write_text(f'[station]\nid = "s-1"\n[control]\nsocket = "{tmp_path}/none.sock"\n'
                      f'[store]\npath = "{tmp_path}/k.db"\n')
    run = lambda *argv: subprocess.run([sys.executable, "-m", "kartud.ctl.cli", "--config", str(config), *argv],
                                       capture_output=True, text=True, timeout=30, env={**os.environ, "LANG": "C"})
    down = run("resume")
    assert down.returncode == 3 and "kartud is not running" in down.stderr and "Traceback" not in down.stderr
    missing_db = run("status")
    assert missing_db.returncode == 3 and "Traceback" not in missing_db.stderr
    assert run("--help").returncode == 0 and run("nonsense").returncode == 2
