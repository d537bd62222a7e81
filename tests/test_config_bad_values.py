"""Every kind of bad value in a configuration file, reported in-process with its key and a message that says why."""

from __future__ import annotations

import base64

import pytest
from config_files import GOOD_KEY, MINIMAL, assert_reported, problems_of, write

from kartud.rules.config import ConfigError, from_dict


# (id, TOML text, key that must be reported, fragment of its message). "{tmp}" is the test's folder.
BAD = [
    # wrong types
    ("string-for-int", MINIMAL + '[mqtt]\nport = "1883"\n', "mqtt.port", "must be an integer"),
    ("bool-for-int", MINIMAL + "[limits]\ndaily = true\n", "limits.daily", "must be an integer"),
    ("float-for-int", MINIMAL + "[limits]\nmax_attempts = 2.5\n", "limits.max_attempts", "must be an integer"),
    ("int-for-string", MINIMAL + "[mqtt]\nhost = 5\n", "mqtt.host", "must be a string"),
    ("string-for-number", MINIMAL + '[printer]\nstatus_poll_s = "2"\n', "printer.status_poll_s", "must be a number"),
    ("bool-for-number", MINIMAL + "[encoder]\ntimeout_s = true\n", "encoder.timeout_s", "must be a number"),
    ("string-for-list", MINIMAL + '[limits]\nworking_hours = "mon 08:00-10:00"\n', "limits.working_hours",
     "must be a list"),
    ("list-item-int", '[station]\nid = "x-1"\ncard_types = [1]\n', "station.card_types", "every entry must be a string"),
    ("list-item-table", MINIMAL + "[security]\ntrusted_keys = [{a = 1}]\n", "security.trusted_keys",
     "every entry must be a string"),
    ("toml-datetime-for-string", MINIMAL + '[printer]\ntransport = "sim"\n[sim]\nclock_start = 2026-11-27T08:00:00+07:00\n',
     "sim.clock_start", "must be a string"),
    ("section-not-table", 'mqtt = "broker"\n' + MINIMAL, "mqtt", "must be a table"),
    ("printer-sim-not-table", MINIMAL + '[printer]\nsim = "yes"\n', "printer.sim", "must be a table"),
    # out of range
    ("port-0", MINIMAL + "[mqtt]\nport = 0\n", "mqtt.port", "between 1 and 65535"),
    ("port-70000", MINIMAL + "[mqtt]\nport = 70000\n", "mqtt.port", "between 1 and 65535"),
    ("daily-0", MINIMAL + "[limits]\ndaily = 0\n", "limits.daily", "between 1 and 10000"),
    ("keepalive-low", MINIMAL + "[mqtt]\nkeepalive_s = 1\n", "mqtt.keepalive_s", "between"),
    ("payload-small", MINIMAL + "[mqtt]\nmax_payload_bytes = 100\n", "mqtt.max_payload_bytes", "between"),
    ("retention-negative", MINIMAL + "[store]\npii_retention_days = -1\n", "store.pii_retention_days", "between"),
    ("vendor-too-big", MINIMAL + "[printer]\nusb_vendor_id = 0x10000\n", "printer.usb_vendor_id", "between"),
    ("poll-zero", MINIMAL + "[printer]\nstatus_poll_s = 0\n", "printer.status_poll_s", "between"),
    ("pin-99", MINIMAL + "[indicator]\nled_pin = 99\n", "indicator.led_pin", "between 0 and 53"),
    ("nan", MINIMAL + "[encoder]\ntimeout_s = nan\n", "encoder.timeout_s", "between"),
    # bad choices
    ("transport-parallel", MINIMAL + '[printer]\ntransport = "parallel"\n', "printer.transport", "must be one of"),
    ("pacing-fast", MINIMAL + '[limits]\npacing = "fast"\n', "limits.pacing", "must be one of"),
    ("baud-odd", MINIMAL + "[printer]\nserial_baud = 12345\n", "printer.serial_baud", "must be one of"),
    ("signing-yes", MINIMAL + '[security]\nsigning = "yes"\n', "security.signing", "must be one of"),
    ("indicator-led", MINIMAL + '[indicator]\nbackend = "led"\n', "indicator.backend", "must be one of"),
    # patterns and formats
    ("id-uppercase-underscore", '[station]\nid = "Bad_ID"\n', "station.id", "a-z, 0-9 and -"),
    ("id-empty", '[station]\nid = ""\n', "station.id", "a-z, 0-9 and -"),
    ("id-too-long", f'[station]\nid = "{"a" * 65}"\n', "station.id", "1-64"),
    ("id-newline", '[station]\nid = "ok\\n"\n', "station.id", "a-z, 0-9 and -"),
    ("topic-prefix-slash", MINIMAL + '[mqtt]\ntopic_prefix = "kartud/"\n', "mqtt.topic_prefix", "trailing"),
    ("topic-prefix-wildcard", MINIMAL + '[mqtt]\ntopic_prefix = "kartud/#"\n', "mqtt.topic_prefix", "wildcard"),
    ("client-id-wildcard", MINIMAL + '[mqtt]\nclient_id = "a+b"\n', "mqtt.client_id", "wildcard"),
    ("host-empty", MINIMAL + '[mqtt]\nhost = ""\n', "mqtt.host", "empty"),
    ("socket-relative", MINIMAL + '[control]\nsocket = "control.sock"\n', "control.socket", "absolute"),
    ("clock-start-garbage", MINIMAL + '[printer]\ntransport = "sim"\n[sim]\nclock_start = "tomorrow"\n',
     "sim.clock_start", "RFC 3339"),
    ("clock-start-no-offset", MINIMAL + '[printer]\ntransport = "sim"\n[sim]\nclock_start = "2026-11-27T08:00:00"\n',
     "sim.clock_start", "UTC offset"),
    # time zones
    ("tz-unknown", '[station]\nid = "x-1"\ntimezone = "Asia/Jakrta"\n', "station.timezone", "unknown time zone"),
    ("tz-folder", '[station]\nid = "x-1"\ntimezone = "Asia"\n', "station.timezone", "unknown time zone"),
    ("tz-absolute", '[station]\nid = "x-1"\ntimezone = "/etc/localtime"\n', "station.timezone", "unknown time zone"),
    ("tz-empty", '[station]\nid = "x-1"\ntimezone = ""\n', "station.timezone", "unknown time zone"),
    # working hours
    ("hours-one-digit", MINIMAL + '[limits]\nworking_hours = ["mon-thu 8:00-14:00"]\n', "limits.working_hours",
     "<day>[-<day>] HH:MM-HH:MM"),
    ("hours-backwards", MINIMAL + '[limits]\nworking_hours = ["mon 14:00-08:00"]\n', "limits.working_hours",
     "end must be after the start"),
    ("hours-bad-day", MINIMAL + '[limits]\nworking_hours = ["xyz 08:00-10:00"]\n', "limits.working_hours",
     "is not a day"),
    ("hours-overlap", MINIMAL + '[limits]\nworking_hours = ["mon-fri 08:00-12:00", "wed 11:00-13:00"]\n',
     "limits.working_hours", "overlap on wed"),
    ("hours-days-backwards", MINIMAL + '[limits]\nworking_hours = ["fri-mon 08:00-10:00"]\n', "limits.working_hours",
     "backwards"),
    ("hours-25", MINIMAL + '[limits]\nworking_hours = ["mon 08:00-25:00"]\n', "limits.working_hours",
     "not a time of day"),
    ("hours-start-24", MINIMAL + '[limits]\nworking_hours = ["mon 24:00-24:00"]\n', "limits.working_hours",
     "not a time of day"),
    ("hours-minutes-60", MINIMAL + '[limits]\nworking_hours = ["mon 08:60-10:00"]\n', "limits.working_hours",
     "not a time of day"),
    # card types
    ("card-types-passport", '[station]\nid = "x-1"\ncard_types = ["PASSPORT"]\n', "station.card_types",
     "unknown card type 'PASSPORT'"),
    ("card-types-empty", '[station]\nid = "x-1"\ncard_types = []\n', "station.card_types", "at least one"),
    ("card-types-twice", '[station]\nid = "x-1"\ncard_types = ["KIA", "KIA"]\n', "station.card_types", "twice"),
    # trusted keys
    ("key-not-base64", MINIMAL + '[security]\ntrusted_keys = ["not base64!"]\n', "security.trusted_keys",
     "entry 1 is not base64"),
    ("key-wrong-length", MINIMAL + f'[security]\ntrusted_keys = ["{GOOD_KEY}", '
                                   f'"{base64.b64encode(bytes(16)).decode()}"]\n', "security.trusted_keys",
     "entry 2 is not a 32-byte Ed25519 public key"),
    # required
    ("id-missing", '[mqtt]\nport = 1883\n', "station.id", "is required"),
    ("empty-file", "", "station.id", "is required"),
    # rules between keys
    ("sim-with-usb", MINIMAL + "[sim]\nclock_speed = 600\n", "sim", 'printer.transport = "sim"'),
    ("sim-with-serial", MINIMAL + '[printer]\ntransport = "serial"\n[sim]\nclock_start = ""\n', "sim",
     'printer.transport = "sim"'),
    ("encoder-sim-with-usb", MINIMAL + '[encoder]\nbackend = "sim"\n', "encoder.backend",
     'needs printer.transport = "sim"'),
    ("tls-cert-without-key", MINIMAL + '[mqtt]\ntls_ca = "{tmp}/ca.pem"\ntls_cert = "{tmp}/cert.pem"\n', "mqtt.tls_key",
     "given together"),
    ("tls-key-without-cert", MINIMAL + '[mqtt]\ntls_ca = "{tmp}/ca.pem"\ntls_key = "{tmp}/key.pem"\n', "mqtt.tls_cert",
     "given together"),
    ("tls-cert-without-ca", MINIMAL + '[mqtt]\ntls_cert = "{tmp}/cert.pem"\ntls_key = "{tmp}/key.pem"\n', "mqtt.tls_ca",
     "must be set"),
    ("password-file-missing", MINIMAL + '[mqtt]\nusername = "s"\npassword_file = "{tmp}/no-such-password"\n',
     "mqtt.password_file", "not found"),
    ("tls-ca-missing", MINIMAL + '[mqtt]\ntls_ca = "{tmp}/no-such-ca.pem"\n', "mqtt.tls_ca", "not found"),
    ("password-without-username", MINIMAL + '[mqtt]\npassword_file = "{tmp}/password"\n', "mqtt.username",
     "must be set"),
    ("reconnect-min-above-max", MINIMAL + "[mqtt]\nreconnect_min_s = 20.0\nreconnect_max_s = 10.0\n",
     "mqtt.reconnect_min_s", "larger than reconnect_max_s"),
    ("signing-required-no-keys", MINIMAL + '[security]\nsigning = "required"\n', "security.trusted_keys",
     "at least one key"),
    ("gpio-same-pins", MINIMAL + "[indicator]\nled_pin = 5\nbuzzer_pin = 5\n", "indicator", "three different pins"),
    # wrong types on keys that the cross-key rules look at: reported, never a crash
    ("tls-ca-list", MINIMAL + '[mqtt]\ntls_ca = ["ca.pem"]\n', "mqtt.tls_ca", "must be a string"),
    ("reconnect-string", MINIMAL + '[mqtt]\nreconnect_min_s = "1"\n', "mqtt.reconnect_min_s", "must be a number"),
    ("pin-list", MINIMAL + "[indicator]\nled_pin = [17]\n", "indicator.led_pin", "must be an integer"),
    ("trusted-keys-string", MINIMAL + '[security]\nsigning = "required"\ntrusted_keys = "abc"\n',
     "security.trusted_keys", "must be a list"),
    # unknown names
    ("unknown-key", MINIMAL + '[mqtt]\nhostname = "x"\n', "mqtt.hostname", "unknown key"),
    ("unknown-section", MINIMAL + "[printerr]\ntransport = \"usb\"\n", "printerr", "unknown section"),
    ("unknown-sim-key", MINIMAL + '[printer]\ntransport = "sim"\n[printer.sim]\nspeed = 2\n', "printer.sim.speed",
     "unknown key"),
    ("unknown-station-key", '[station]\nid = "x-1"\nname = "Probolinggo"\n', "station.name", "unknown key"),
    # the file itself
    ("not-toml", "this is not TOML at all\n", "config", "not valid TOML"),
    ("duplicate-key", '[station]\nid = "x-1"\nid = "x-2"\n', "config", "not valid TOML"),
]


@pytest.fixture
def existing_files(tmp_path):
    for name in ("ca.pem", "cert.pem", "key.pem", "password"):
        (tmp_path / name).write_text("x\n")
    return tmp_path


@pytest.mark.parametrize("text, key, fragment", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_value_is_reported_with_its_key(existing_files, text, key, fragment):
    path = write(existing_files, text.replace("{tmp}", str(existing_files)))
    assert_reported(problems_of(path), key, fragment)


def test_wrong_typed_value_is_reported_only_once(tmp_path):
    """A key with a value of the wrong type gives one line, not a second one from a rule between keys."""
    problems = problems_of(write(tmp_path, MINIMAL + "[mqtt]\npassword_file = true\n"))
    assert problems == [("mqtt.password_file", "must be a string, got true or false True")]


def test_file_not_found(tmp_path):
    problems = problems_of(tmp_path / "missing.toml")
    assert problems == [("config", f"file {str(tmp_path / 'missing.toml')!r} not found")]


def test_directory_instead_of_file(tmp_path):
    assert_reported(problems_of(tmp_path), "config", "directory")


def test_binary_file(tmp_path):
    path = tmp_path / "kartud.toml"
    path.write_bytes(b"\xff\xfe\x00\x01 binary")
    assert_reported(problems_of(path), "config", "not valid TOML")


def test_problems_are_key_message_pairs(tmp_path):
    problems = problems_of(write(tmp_path, MINIMAL + "[mqtt]\nport = 0\n"))
    assert problems == [("mqtt.port", "must be between 1 and 65535, got 0")]
    assert all(isinstance(k, str) and isinstance(m, str) for k, m in problems)


def test_several_problems_are_all_listed(tmp_path):
    text = ('[station]\nid = "Bad_ID"\ntimezone = "Mars/Base"\n'
            '[mqtt]\nport = 70000\nhostname = "x"\n'
            '[limits]\ndaily = 0\npacing = "fast"\n'
            '[printer]\ntransport = "parallel"\n'
            '[encoder]\nbackend = "sim"\n'
            '[printerr]\n')
    keys = [key for key, _ in problems_of(write(tmp_path, text))]
    assert set(keys) >= {"station.id", "station.timezone", "mqtt.port", "mqtt.hostname", "limits.daily",
                         "limits.pacing", "printer.transport", "encoder.backend", "printerr"}


def test_from_dict_collects_every_problem():
    with pytest.raises(ConfigError) as caught:
        from_dict({"mqtt": {"port": 0}, "limits": {"daily": 0}})
    assert [k for k, _ in caught.value.problems] == ["station.id", "mqtt.port", "limits.daily"]
    assert "station.id: is required" in str(caught.value)
