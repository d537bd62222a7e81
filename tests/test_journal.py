"""journald: the fields of every record on a captured journal socket, stderr without journald, and the catalog."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from journal_capture import JournalCapture, can_capture, parse_native
from kartud.service import journal_ids
from kartud.service import logs
from kartud.service.journal_ids import MSG_FAULT_RAISED, MSG_GAVE_UP, MSG_JOB_PRINTED, MSG_READY

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "etc" / "systemd" / "catalog" / "kartud.catalog"
NIK = "3574014101900001"
MASKED = "357401******0001"

needs_namespace = pytest.mark.skipif(can_capture() is not None, reason=str(can_capture()))


@pytest.fixture
def journal(tmp_path):
    capture = JournalCapture(str(tmp_path / "run-systemd"))
    yield capture
    capture.close()


def run_captured(journal: JournalCapture, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(journal.command([sys.executable, "-c", textwrap.dedent(code)]), capture_output=True,
                          text=True, timeout=30)


# -- the fields, as journald receives them ---------------------------------------------------------


@needs_namespace
def test_every_record_reaches_journald_with_its_fields_and_no_nik(journal):
    result = run_captured(journal, f"""
        import logging
        from kartud.service.logs import setup_logging
        setup_logging()
        log = logging.getLogger("kartud.press")
        log.info("job %s printed", "j-0001", extra={{"job": "j-0001", "record": "PRR-1",
                                                     "message_id": "{MSG_JOB_PRINTED}"}})
        logging.getLogger("kartud").error("fault raised: cover_open", extra={{"fault": "cover_open", "state": "fault",
                                                                           "message_id": "{MSG_FAULT_RAISED}"}})
        log.warning("NIK {NIK} slipped into a message", extra={{"record": "R-{NIK}", "card_type": "KTP_EL"}})
        try:
            raise ValueError("two\\nlines")
        except ValueError:
            log.exception("internal error")
        logging.getLogger("kartud").debug("not shown at INFO")
        logging.getLogger("kartud").info("x" * 300000)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""                        # journald was there: nothing on stderr
    printed, fault, slipped, error, big = journal.entries
    assert printed == {**printed, "MESSAGE": "job j-0001 printed", "PRIORITY": "6", "SYSLOG_IDENTIFIER": "kartud",
                       "LOGGER": "kartud.press", "KARTUD_JOB": "j-0001", "KARTUD_RECORD": "PRR-1",
                       "MESSAGE_ID": MSG_JOB_PRINTED, "CODE_FUNC": "<module>", "CODE_LINE": "6"}
    assert fault["PRIORITY"] == "3" and fault["KARTUD_FAULT"] == "cover_open" and fault["KARTUD_STATE"] == "fault"
    assert fault["MESSAGE_ID"] == MSG_FAULT_RAISED and "KARTUD_JOB" not in fault
    assert slipped["MESSAGE"] == f"NIK {MASKED} slipped into a message"
    assert slipped["KARTUD_RECORD"] == f"R-{MASKED}" and slipped["KARTUD_CARD_TYPE"] == "KTP_EL"
    assert slipped["PRIORITY"] == "4"
    assert error["PRIORITY"] == "3" and error["MESSAGE"].startswith("internal error\nTraceback")
    assert error["MESSAGE"].endswith("ValueError: two\nlines")     # a value with newlines: the binary framing
    assert big["MESSAGE"] == "x" * 300000                           # too big for a datagram: sent as a memfd
    assert not any(NIK.encode() in raw for raw in journal.raw)


@needs_namespace
def test_the_daemon_logs_its_jobs_and_faults_to_journald(room, journal):
    room.overrides["printer.sim.feeder_cards"] = "1"   # the second card finds the feeder empty: a fault
    with open(room.log_path, "ab") as output:
        room.process = subprocess.Popen(journal.command([sys.executable, "-m", "kartud.service.cli", "run",
                                                         "--config", room.config_path]),
                                        stdout=output, stderr=subprocess.STDOUT)
    room.connect().wait_availability("online", timeout=20)
    room.receive_blanks(10)
    first, second = room.job(), room.job()
    for job in (first, second):
        assert room.submit(job)["status"] == "ok"
    room.wait_state(first["job_id"], "printed")
    printed = journal.wait_for(lambda e: e.get("KARTUD_JOB") == first["job_id"] and "printed" in e["MESSAGE"])
    fault = journal.wait_for(lambda e: e.get("KARTUD_FAULT") == "feeder_empty")
    assert room.stop() == 0
    ready = journal.wait_for(lambda e: " ready: " in e["MESSAGE"])

    assert (printed["KARTUD_RECORD"], printed["PRIORITY"], printed["SYSLOG_IDENTIFIER"]) == \
        (first["record_id"], "6", "kartud")
    assert fault["PRIORITY"] == "3" and fault["MESSAGE"].startswith("fault raised: feeder_empty")
    assert ready["PRIORITY"] == "6"
    assert printed["MESSAGE_ID"] == MSG_JOB_PRINTED and fault["MESSAGE_ID"] == MSG_FAULT_RAISED
    assert ready["MESSAGE_ID"] == MSG_READY
    for job in (first, second):
        assert not any(job["nik"].encode() in raw for raw in journal.raw), "a full NIK reached the journal"
    assert room.log() == ""                            # journald was there: nothing went to stderr


@needs_namespace
def test_the_failure_program_says_systemd_gave_up(journal, tmp_path):
    config = tmp_path / "kartud.toml"
    config.write_text('[station]\nid = "x"\n[indicator]\nbackend = "mock"\n')
    process = subprocess.Popen(journal.command([sys.executable, "-m", "kartud.service.cli", "indicator-fault",
                                                "--config", str(config)]),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        gave_up = journal.wait_for(lambda e: e.get("MESSAGE_ID") == MSG_GAVE_UP)
    finally:
        process.terminate()
    assert process.wait(10) == 0 and process.stdout.read() == b""
    assert gave_up["PRIORITY"] == "2"


def test_native_protocol_parser_reads_both_framings():
    data = b"A=1\nMESSAGE\n" + (5).to_bytes(8, "little") + b"x\ny=z\nB=2\n"
    assert parse_native(data) == {"A": "1", "MESSAGE": "x\ny=z", "B": "2"}


# -- without journald ------------------------------------------------------------------------------


def record(message: str, level=logging.INFO, **extra) -> logging.LogRecord:
    return logging.makeLogRecord({"name": "kartud.press", "levelno": level, "levelname": logging.getLevelName(level),
                                  "msg": message, "args": (), **extra})


def test_stderr_lines_carry_the_same_content_as_the_journal():
    entry = record(f"job j-1 printed ({NIK})", job="j-1", record="PRR-1", message_id=MSG_JOB_PRINTED)
    line = logs.StderrFormatter(under_systemd=False).format(entry)
    fields = logs.journal_fields(entry)
    assert re.fullmatch(r"\S+ \S+ INFO kartud\.press: job j-1 printed \(357401\*{6}0001\) "
                        rf"\[KARTUD_JOB=j-1 KARTUD_RECORD=PRR-1 MESSAGE_ID={MSG_JOB_PRINTED}\]", line), line
    assert fields["MESSAGE"] in line and NIK not in line


def test_stderr_under_systemd_without_journal_socket_carries_the_priority():
    line = logs.StderrFormatter(under_systemd=True).format(record("fault raised", logging.ERROR, fault="cover_open"))
    assert line == "<3>kartud.press: fault raised [KARTUD_FAULT=cover_open]"


@pytest.mark.parametrize("socket_exists, journal_stream, tty, expected", [
    (False, "8:1", False, False),     # no journald at all: stderr, even under systemd
    (True, "8:1", True, True),        # under systemd
    (True, "", False, True),          # journald there, output not a person's terminal
    (True, "", True, False),          # `kartud run` typed at a shell: the log stays on the terminal
])
def test_journald_is_used_when_it_is_there(monkeypatch, tmp_path, socket_exists, journal_stream, tty, expected):
    path = tmp_path / "socket"
    if socket_exists:
        path.touch()
    monkeypatch.setattr(logs, "JOURNAL_SOCKET", str(path))
    monkeypatch.setenv("JOURNAL_STREAM", journal_stream)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
    assert logs.journald_available() is expected


@pytest.mark.parametrize("journald", ["gone", "not listening"])
def test_a_record_journald_refuses_goes_to_stderr(tmp_path, journald):
    class Fallback(logging.Handler):
        records: list = []

        def emit(self, r):
            self.records.append(r)

    path = tmp_path / "socket"
    if journald == "not listening":      # its socket file is there, nobody reads it (journald restarting)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dead:
            dead.bind(str(path))
    handler = logs.JournalHandler(fallback=Fallback(), path=str(path))
    handler.handle(record("job j-1 printed"))
    handler.close()
    assert [r.getMessage() for r in Fallback.records] == ["job j-1 printed"]


@pytest.mark.parametrize("text, expected", [
    (f"nik {NIK}", f"nik {MASKED}"),
    (f"{NIK}7 is 17 digits", f"{NIK}7 is 17 digits"),
    ("PRR-2026-000001", "PRR-2026-000001"),
    (f"a{NIK}b", f"a{MASKED}b"),
])
def test_sixteen_digit_runs_are_masked(text, expected):
    assert logs.scrub(text) == expected


# -- the catalog -----------------------------------------------------------------------------------


def catalog_ids() -> list[str]:
    return re.findall(r"^-- ([0-9a-f]{32})$", CATALOG.read_text(), re.MULTILINE)


def test_every_message_id_is_explained_in_the_catalog_and_nothing_else():
    ids = catalog_ids()
    assert sorted(ids) == sorted(journal_ids.ALL.values())
    assert len(set(journal_ids.ALL.values())) == len(journal_ids.ALL)


@pytest.mark.skipif(shutil.which("journalctl") is None, reason="journalctl (systemd) is not installed")
def test_journalctl_compiles_the_catalog(tmp_path):
    target = tmp_path / "usr" / "lib" / "systemd" / "catalog"
    target.mkdir(parents=True)
    shutil.copy(CATALOG, target)
    update = subprocess.run(["journalctl", f"--root={tmp_path}", "--update-catalog"], capture_output=True, text=True)
    assert update.returncode == 0 and update.stderr == "", update.stderr
    listed = subprocess.run(["journalctl", f"--root={tmp_path}", "--list-catalog"], capture_output=True, text=True)
    assert sorted(line.split()[0] for line in listed.stdout.splitlines()) == sorted(journal_ids.ALL.values())
    assert os.path.exists(tmp_path / "var" / "lib" / "systemd" / "catalog" / "database")
