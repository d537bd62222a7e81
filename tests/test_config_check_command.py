"""`kartud check-config` as its own process: one line per problem, exit status 2, never a traceback."""

from __future__ import annotations

import re

import pytest
from config_files import MINIMAL, check_config, write


CLI_BAD = [
    ("string-for-int", MINIMAL + '[mqtt]\nport = "1883"\n', "mqtt.port: must be an integer"),
    ("port-70000", MINIMAL + "[mqtt]\nport = 70000\n", "mqtt.port: must be between 1 and 65535, got 70000"),
    ("transport-parallel", MINIMAL + '[printer]\ntransport = "parallel"\n', "printer.transport: must be one of"),
    ("bad-hours", MINIMAL + '[limits]\nworking_hours = ["mon 14:00-08:00"]\n', "limits.working_hours: "),
    ("sim-with-usb", MINIMAL + "[sim]\nclock_speed = 600\n", "sim: is allowed only when"),
    ("id-missing", "[mqtt]\n", "station.id: is required"),
    ("unknown-key", MINIMAL + '[mqtt]\nhostname = "x"\n', "mqtt.hostname: unknown key"),
    ("unknown-section", MINIMAL + "[printerr]\n", "printerr: unknown section"),
    ("not-toml", "this is not TOML at all\n", "config: not valid TOML"),
    ("tz-folder", '[station]\nid = "x-1"\ntimezone = "Asia"\n', "station.timezone: unknown time zone"),
]


@pytest.mark.parametrize("text, line", [case[1:] for case in CLI_BAD], ids=[case[0] for case in CLI_BAD])
def test_check_config_reports_bad_file(tmp_path, text, line):
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2, result.stdout + result.stderr
    assert any(out.startswith(line) for out in result.stdout.splitlines()), result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_check_config_file_not_found(tmp_path):
    result = check_config(tmp_path / "missing.toml")
    assert result.returncode == 2
    assert result.stdout.startswith("config: file ") and "not found" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_check_config_binary_file_has_no_traceback(tmp_path):
    path = tmp_path / "kartud.toml"
    path.write_bytes(b"\xff\xfe\x00\x01 binary")
    result = check_config(path)
    assert result.returncode == 2
    assert result.stdout.startswith("config: not valid TOML")
    assert "Traceback" not in result.stdout + result.stderr


def test_check_config_lists_every_problem_one_per_line(tmp_path):
    text = ('[station]\nid = "Bad_ID"\n'
            '[mqtt]\nport = 0\nhostname = "x"\n'
            '[limits]\npacing = "fast"\nworking_hours = ["xyz 08:00-10:00"]\n'
            '[security]\nsigning = "required"\n'
            '[printerr]\n')
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    keys = [line.split(": ", 1)[0] for line in lines]
    assert set(keys) == {"station.id", "mqtt.port", "mqtt.hostname", "limits.pacing", "limits.working_hours",
                         "security.trusted_keys", "printerr"}
    assert len(lines) == len(keys) == 7
    assert all(re.fullmatch(r"[a-z_.]+: \S.*", line) for line in lines), lines


def test_check_config_ok_output(tmp_path):
    path = write(tmp_path, MINIMAL)
    result = check_config(path)
    assert result.returncode == 0
    assert result.stdout == f"{path}: ok\n"
    assert result.stderr == ""
