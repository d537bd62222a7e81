"""The TOML configuration: every key typed, range-checked and defaulted; unknown keys refused."""

from __future__ import annotations

import os
import tomllib
from typing import Any
from zoneinfo import ZoneInfo

from ..rules.config_keys import _LIST_ITEM_TYPE, SCHEMA, Key

__all__ = ["SCHEMA", "Key", "Config", "ConfigError", "Section", "from_dict", "load"]


class Section:
    """Attribute access to one section's values: ``config.mqtt.port``."""

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Config:
    """A validated configuration. Build one with :func:`load` or :func:`from_dict`."""

    def __init__(self, values: dict[str, dict[str, Any]], path: str | None = None):
        self.path = path
        self._values = values
        for section, keys in values.items():
            target = self
            parts = section.split(".")
            for part in parts[:-1]:
                target = getattr(target, part)
            setattr(target, parts[-1], Section(keys))

    @property
    def root(self) -> str:
        """The MQTT topic root of this station: ``<topic_prefix>/<station id>``."""
        return f"{self.mqtt.topic_prefix}/{self.station.id}"

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"kartud-{self.station.id}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.station.timezone)

    def sim_output_dir(self) -> str:
        """Where the simulated printer records its cards: the configured folder or one beside the database."""
        configured = self.printer.sim.output_dir
        return configured or os.path.join(os.path.dirname(os.path.abspath(self.store.path)), "sim-output")


class ConfigError(Exception):
    """A configuration with problems; ``problems`` is a list of ``(key, what is wrong)``."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {p}" for k, p in problems))


def _type_problem(value: Any, key: Key, item_type: type | None) -> str | None:
    wanted = key.type
    if wanted is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif wanted is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, wanted)
    if not ok:
        return f"must be {_type_name(wanted)}, got {_type_name(type(value))} {value!r}"
    if wanted is list and item_type is not None:
        for item in value:
            if not isinstance(item, item_type):
                return f"every entry must be {_type_name(item_type)}, got {item!r}"
    return None


def _type_name(t: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
            dict: "a table"}.get(t, t.__name__)


def from_dict(raw: dict[str, Any], path: str | None = None) -> Config:
    """Validate a parsed TOML document; raise :class:`ConfigError` listing every problem."""
    problems: list[tuple[str, str]] = []
    values: dict[str, dict[str, Any]] = {}
    sections = {name: raw.get(name, {}) for name in ("station", "mqtt", "control", "store", "limits", "blanks",
                                                     "printer", "encoder", "indicator", "security", "sim")}
    for name in raw:
        if name not in sections:
            problems.append((name, "unknown section"))
    printer_raw = sections.get("printer")
    if isinstance(printer_raw, dict) and isinstance(printer_raw.get("sim", {}), dict):
        sections["printer.sim"] = printer_raw.get("sim", {})
        sections["printer"] = {k: v for k, v in printer_raw.items() if k != "sim"}
    else:
        sections["printer.sim"] = {}
        if isinstance(printer_raw, dict):
            problems.append(("printer.sim", "must be a table"))
            sections["printer"] = {k: v for k, v in printer_raw.items() if k != "sim"}

    for section, keys in SCHEMA.items():
        given = sections.get(section, {})
        if not isinstance(given, dict):
            problems.append((section, "must be a table"))
            given = {}
        for name in given:
            if name not in keys:
                problems.append((f"{section}.{name}", "unknown key"))
        out: dict[str, Any] = {}
        for name, key in keys.items():
            full = f"{section}.{name}"
            if name not in given:
                if key.required:
                    problems.append((full, "is required"))
                out[name] = list(key.default) if isinstance(key.default, list) else key.default
                continue
            value = given[name]
            problem = _type_problem(value, key, _LIST_ITEM_TYPE.get((section, name)))
            if problem is None and key.check is not None:
                problem = key.check(value)
            if problem is not None:
                problems.append((full, problem))
                # Keep the default so the cross-key checks below never see a value of the wrong type.
                out[name] = list(key.default) if isinstance(key.default, list) else key.default
                continue
            out[name] = float(value) if key.type is float and isinstance(value, int) else value
        values[section] = out

    _cross_checks(values, raw, problems)
    if problems:
        raise ConfigError(problems)
    return Config(values, path)


def _cross_checks(values: dict, raw: dict, problems: list[tuple[str, str]]) -> None:
    """Rules that involve more than one key."""
    transport = values["printer"]["transport"]
    if "sim" in raw and transport != "sim":
        problems.append(("sim", 'is allowed only when printer.transport = "sim" (a real printer runs in real time)'))
    if values["encoder"]["backend"] == "sim" and transport != "sim":
        problems.append(("encoder.backend", '"sim" needs printer.transport = "sim"; use "pcsc" for a real encoder'))
    mqtt = values["mqtt"]
    if (mqtt["tls_cert"] == "") != (mqtt["tls_key"] == ""):
        problems.append(("mqtt.tls_key" if mqtt["tls_cert"] else "mqtt.tls_cert",
                         "tls_cert and tls_key must be given together"))
    if mqtt["tls_cert"] and not mqtt["tls_ca"]:
        problems.append(("mqtt.tls_ca", "must be set when a client certificate is given (it turns TLS on)"))
    for name in ("password_file", "tls_ca", "tls_cert", "tls_key"):
        path = mqtt[name]
        if path and not os.path.isfile(path):
            problems.append((f"mqtt.{name}", f"file {path!r} not found"))
    if mqtt["password_file"] and not mqtt["username"]:
        problems.append(("mqtt.username", "must be set when a password_file is given"))
    if mqtt["reconnect_min_s"] > mqtt["reconnect_max_s"]:
        problems.append(("mqtt.reconnect_min_s", "must not be larger than reconnect_max_s"))
    if values["security"]["signing"] == "required" and not values["security"]["trusted_keys"]:
        problems.append(("security.trusted_keys", 'must list at least one key when signing = "required"'))
    pins = values["indicator"]
    used = [pins["led_pin"], pins["buzzer_pin"], pins["button_pin"]]
    if values["indicator"]["backend"] == "gpio" and len(set(used)) != 3:
        problems.append(("indicator", "led_pin, buzzer_pin and button_pin must be three different pins"))


def load(path: str) -> Config:
    """Read and validate the TOML file at ``path``."""
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([("config", f"file {path!r} not found")]) from None
    except PermissionError:
        raise ConfigError([("config", f"file {path!r} is not readable by this user")]) from None
    except IsADirectoryError:
        raise ConfigError([("config", f"{path!r} is a directory, not a file")]) from None
    except OSError as exc:
        raise ConfigError([("config", f"file {path!r} cannot be read: {exc.strerror or exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([("config", f"not valid TOML: {exc}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([("config", "not valid TOML: the file is not UTF-8 text")]) from None
    return from_dict(raw, path)
