"""The configuration's defaults, the names derived from it, and the valid variants of a file that load."""

from __future__ import annotations

import pytest
from config_files import GOOD_KEY, MINIMAL, value_at, write

from kartud.rules.config import SCHEMA, Config, from_dict, load


@pytest.fixture(scope="module")
def minimal(tmp_path_factory) -> Config:
    path = tmp_path_factory.mktemp("minimal") / "kartud.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    return load(str(path))


@pytest.mark.parametrize("key, expected", [
    ("station.id", "x-1"),
    ("station.card_types", ["KTP_EL"]),
    ("station.timezone", "Asia/Jakarta"),
    ("mqtt.host", "localhost"),
    ("mqtt.port", 1883),
    ("mqtt.topic_prefix", "kartud"),
    ("mqtt.client_id", ""),
    ("mqtt.session_expiry_s", 604800),
    ("mqtt.keepalive_s", 30),
    ("mqtt.username", ""),
    ("mqtt.password_file", ""),
    ("mqtt.tls_ca", ""),
    ("mqtt.max_payload_bytes", 4194304),
    ("mqtt.reconnect_min_s", 1.0),
    ("mqtt.reconnect_max_s", 30.0),
    ("control.socket", "/run/kartud/control.sock"),
    ("store.path", "/var/lib/kartud/kartud.db"),
    ("store.pii_retention_days", 7),
    ("limits.daily", 200),
    ("limits.working_hours", ["mon-thu 08:00-14:00", "fri 08:00-11:00"]),
    ("limits.pacing", "even"),
    ("limits.max_attempts", 3),
    ("limits.cleaning_every", 1000),
    ("blanks.low_threshold", 200),
    ("printer.transport", "usb"),
    ("printer.usb_vendor_id", 0x0F49),
    ("printer.usb_product_id", 0),
    ("printer.serial_port", "/dev/ttyUSB0"),
    ("printer.serial_baud", 9600),
    ("printer.status_poll_s", 2.0),
    ("printer.sim.output_dir", ""),
    ("printer.sim.seconds_per_card", 15.0),
    ("printer.sim.feeder_cards", 100),
    ("encoder.backend", "pcsc"),
    ("encoder.reader", ""),
    ("encoder.timeout_s", 10),
    ("indicator.backend", "gpio"),
    ("indicator.led_pin", 17),
    ("indicator.buzzer_pin", 27),
    ("indicator.button_pin", 22),
    ("security.signing", "off"),
    ("security.trusted_keys", []),
    ("sim.clock_speed", 1.0),
    ("sim.clock_start", ""),
])
def test_minimal_file_has_the_contract_defaults(minimal, key, expected):
    assert value_at(minimal, key) == expected


def test_minimal_file_derived_names(minimal):
    assert minimal.client_id == "kartud-x-1"
    assert minimal.root == "kartud/x-1"
    assert str(minimal.tz) == "Asia/Jakarta"


def test_explicit_client_id_and_prefix(tmp_path):
    config = load(str(write(tmp_path, MINIMAL + '[mqtt]\nclient_id = "box-7"\ntopic_prefix = "dukcapil/kartud"\n')))
    assert config.client_id == "box-7"
    assert config.root == "dukcapil/kartud/x-1"


def test_defaults_are_not_shared_between_configs():
    first, second = from_dict({"station": {"id": "a"}}), from_dict({"station": {"id": "b"}})
    first.limits.working_hours.append("sat 08:00-09:00")
    assert second.limits.working_hours == ["mon-thu 08:00-14:00", "fri 08:00-11:00"]
    assert SCHEMA["limits"]["working_hours"].default == ["mon-thu 08:00-14:00", "fri 08:00-11:00"]


@pytest.mark.parametrize("body, key, expected", [
    ("[printer]\nstatus_poll_s = 2\n", "printer.status_poll_s", 2.0),
    ("[encoder]\ntimeout_s = 30\n", "encoder.timeout_s", 30.0),
    ('[printer]\ntransport = "sim"\n[printer.sim]\nseconds_per_card = 1\n', "printer.sim.seconds_per_card", 1.0),
    ("[mqtt]\nreconnect_min_s = 2\nreconnect_max_s = 10\n", "mqtt.reconnect_max_s", 10.0),
    ('[printer]\ntransport = "sim"\n[sim]\nclock_speed = 600\n', "sim.clock_speed", 600.0),
])
def test_integers_are_accepted_where_numbers_are_expected(tmp_path, body, key, expected):
    value = value_at(load(str(write(tmp_path, MINIMAL + body))), key)
    assert value == expected
    assert isinstance(value, float)


# -- valid variants --------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    'card_types = ["KTP_EL", "KIA"]\ntimezone = "Asia/Makassar"\n',
    '[limits]\nworking_hours = ["mon-sun 00:00-24:00"]\n',
    '[limits]\nworking_hours = ["mon 08:00-12:00", "mon 12:00-14:00", "sat 09:00-10:30"]\n',
    '[limits]\nworking_hours = []\npacing = "none"\n',
    "[printer]\nusb_vendor_id = 0xFFFF\nusb_product_id = 0x1234\nserial_baud = 115200\n",
    "[mqtt]\nport = 1\nkeepalive_s = 5\n",
    "[mqtt]\nport = 65535\nsession_expiry_s = 0\n",
    f'[security]\nsigning = "required"\ntrusted_keys = ["{GOOD_KEY}"]\n',
    '[printer]\ntransport = "sim"\n[encoder]\nbackend = "sim"\n[sim]\nclock_speed = 600\n'
    'clock_start = "2026-11-27T08:00:00+07:00"\n',
    '[printer]\ntransport = "serial"\nserial_port = "/tmp/kartud-printer"\n[encoder]\nbackend = "none"\n',
    '[indicator]\nbackend = "mock"\nled_pin = 5\nbuzzer_pin = 5\nbutton_pin = 5\n',
    "[mqtt]\n[control]\n[store]\n[limits]\n[blanks]\n[printer]\n[printer.sim]\n[encoder]\n[indicator]\n[security]\n",
])
def test_valid_variants_load(tmp_path, body):
    # Each body continues the minimal file, so bare keys at its top belong to [station].
    load(str(write(tmp_path, MINIMAL + body)))


def test_tls_and_password_files_that_exist(tmp_path):
    for name in ("ca.pem", "cert.pem", "key.pem", "password"):
        (tmp_path / name).write_text("x\n")
    config = load(str(write(tmp_path, MINIMAL + f'[mqtt]\nusername = "station"\npassword_file = "{tmp_path}/password"\n'
                                     f'tls_ca = "{tmp_path}/ca.pem"\ntls_cert = "{tmp_path}/cert.pem"\n'
                                     f'tls_key = "{tmp_path}/key.pem"\n')))
    assert config.mqtt.tls_key == f"{tmp_path}/key.pem"
