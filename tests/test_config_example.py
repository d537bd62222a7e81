"""The shipped example configuration and docs/configuration.md: every key in both, each at its default."""

from __future__ import annotations

import re
import tomllib

import pytest
from config_files import DOCS, EXAMPLE, all_keys, check_config, value_at

from kartud.rules import config as config_module
from kartud.rules.config import SCHEMA, from_dict, load


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
