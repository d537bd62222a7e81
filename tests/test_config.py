"""The configuration file: the example, the defaults, every kind of bad value, and `kartud check-config`."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kartud.rules import config as config_module
from kartud.rules.config import SCHEMA, Config, ConfigError, from_dict, load

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "etc" / "kartud" / "kartud.toml"
DOCS = ROOT / "docs" / "configuration.md"

GOOD_KEY = base64.b64encode(bytes(range(32))).decode()
MINIMAL = '[station]\nid = "x-1"\n'


# -- helpers ---------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "kartud.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def check_config(path: Path | str) -> subprocess.CompletedProcess:
    """Run ``kartud check-config`` as its own process, as an operator would."""
    return subprocess.run([sys.executable, "-m", "kartud.service.cli", "check-config", "--config", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)


def problems_of(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    return caught.value.problems


def all_keys() -> list[str]:
    return [f"{section}.{name}" for section, keys in SCHEMA.items() for name in keys]


def value_at(config: Config, dotted: str):
    target = config
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


def assert_reported(problems: list[tuple[str, str]], key: str, fragment: str) -> None:
    matching = [message for k, message in problems if k == key]
    assert matching, f"no problem reported for {key!r}; got {problems}"
    assert any(fragment.lower() in message.lower() for message in matching), \
        f"{key!r} reported as {matching}, expected a message containing {fragment!r}"


# -- the example configuration ---------------------------------------------------------------------


def test_example_config_loads_with_the_defaults():
    config = load(str(EXAMPLE))
    assert config.station.id == "kota-probolinggo-01"
    assert config.printer.transport == "usb"
    for key in all_keys():
        if key == "station.id":
            continue
        section, name = key.rsplit(".", 1)
        assert value_at(config, key) == SCHEMA[section][name].default, f"{key} in the example is not its default"


def test_example_config_passes_check_config():
    result = check_config("etc/kartud/kartud.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "etc/kartud/kartud.toml: ok"


def test_example_config_has_no_sim_section_but_shows_it_commented():
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert "sim" not in raw
    assert "sim" not in raw["printer"]
    text = EXAMPLE.read_text(encoding="utf-8")
    assert re.search(r"^# \[sim\]$", text, re.M)
    assert re.search(r"^# \[printer\.sim\]$", text, re.M)


def test_example_mentions_every_key():
    text = EXAMPLE.read_text(encoding="utf-8")
    for key in all_keys():
        name = key.rsplit(".", 1)[1]
        assert re.search(rf"^(# )?{name} = ", text, re.M), f"{key} is missing from the example"


def test_example_sim_sections_uncommented_are_valid():
    """Turning the example into a simulator station by uncommenting its sim sections gives a valid file."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('transport = "usb"', 'transport = "sim"').replace('backend = "pcsc"', 'backend = "sim"')
    text = re.sub(r"^# (\[sim\]|\[printer\.sim\]|[a-z_]+ = .*)$", r"\1", text, flags=re.M)
    raw = tomllib.loads(text)
    assert set(raw["sim"]) == set(SCHEMA["sim"])
    assert set(raw["printer"]["sim"]) == set(SCHEMA["printer.sim"])
    config = from_dict(raw)
    assert config.encoder.backend == "sim"
    assert config.sim.clock_speed == 1.0


# -- defaults --------------------------------------------------------------------------------------


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


# -- bad values, in-process ------------------------------------------------------------------------

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


# -- kartud check-config, as its own process -------------------------------------------------------

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


# -- the documentation -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", all_keys())
def test_every_key_is_documented(key):
    assert f"`{key}`" in DOCS.read_text(encoding="utf-8"), f"{key} is not in docs/configuration.md"


def test_docs_name_no_key_that_does_not_exist():
    """Every `section.key` the docs write in backticks is a real key (or a section)."""
    text = DOCS.read_text(encoding="utf-8")
    known = set(all_keys()) | set(SCHEMA)
    sections = "|".join(sorted((re.escape(s) for s in SCHEMA), key=len, reverse=True))
    named = set(re.findall(rf"`((?:{sections})\.[a-z_]+)`", text))
    assert named, "the docs name no keys"
    assert named <= known, f"documented but not in SCHEMA: {sorted(named - known)}"


def test_schema_sections_match_the_config_module():
    # Guards the completeness tests above: the schema is what from_dict validates against.
    assert config_module.SCHEMA is SCHEMA
    assert {"station", "mqtt", "control", "store", "limits", "blanks", "printer", "printer.sim", "encoder",
            "indicator", "security", "sim"} == set(SCHEMA)
