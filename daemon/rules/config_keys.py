"""The configuration's key table: every section's keys, their types, defaults and checks."""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kartud.hw.printer import knowledge as evolis

from ..rules.card_types import CARD_TYPES, KTP_EL
from ..rules.hours import parse_working_hours
from ..rules.jobs import CHIP_CAPACITY_BYTES, MAX_CHIP_BYTES

# A check returns None when the value is fine, else what is wrong in plain words.
Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Key:
    """One configuration key: its type, default and an optional extra check."""

    type: type | tuple
    default: Any
    check: Check | None = None
    required: bool = False


def _range(low, high) -> Check:
    return lambda v: None if low <= v <= high else f"must be between {low} and {high}, got {v}"


def _one_of(*choices) -> Check:
    def check(v):
        return None if v in choices else f"must be one of {', '.join(map(repr, choices))}, got {v!r}"

    return check


def _matches(pattern: str, what: str) -> Check:
    compiled = re.compile(pattern)
    return lambda v: None if compiled.fullmatch(v) else f"must be {what}, got {v!r}"


def _timezone(v: str) -> str | None:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tz folder such as 'Asia'
        return f"unknown time zone {v!r} (use an IANA name such as 'Asia/Jakarta')"
    return None


def _card_types(v: list) -> str | None:
    if not v:
        return "must name at least one card type"
    bad = [t for t in v if t not in CARD_TYPES]
    if bad:
        return f"unknown card type {bad[0]!r}; use {' or '.join(CARD_TYPES)}"
    if len(set(v)) != len(v):
        return "names a card type twice"
    return None


def _working_hours(v: list) -> str | None:
    try:
        parse_working_hours(v)
    except ValueError as exc:
        return str(exc)
    return None


def _dates(v: list) -> str | None:
    for item in v:
        try:
            date.fromisoformat(item)
        except (TypeError, ValueError):
            return f"every entry must be a date as YYYY-MM-DD, got {item!r}"
    return None


def _rfc3339_or_empty(v: str) -> str | None:
    if v == "":
        return None
    try:
        parsed = datetime.fromisoformat(v)
    except ValueError:
        return f"must be an RFC 3339 time such as '2026-11-27T08:00:00+07:00', got {v!r}"
    return None if parsed.tzinfo else "must include a UTC offset, such as +07:00"


def _trusted_keys(v: list) -> str | None:
    for i, key in enumerate(v):
        try:
            raw = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return f"entry {i + 1} is not base64"
        if len(raw) != 32:
            return f"entry {i + 1} is not a 32-byte Ed25519 public key"
    return None


def _mqtt_name(v: str) -> str | None:
    if any(c in v for c in "+#\0"):
        return "must not contain MQTT wildcards (+ #) or NUL"
    return None


def _topic_prefix(v: str) -> str | None:
    if not v or v.startswith("/") or v.endswith("/"):
        return "must be a non-empty topic without a leading or trailing '/'"
    return _mqtt_name(v)


def _printer_commands(v: list) -> str | None:
    # The grammar, the geometry and the default commands are the printer's: kartud.hw.printer.knowledge.
    return next((problem for item in v if (problem := evolis.command_problem(item)) is not None), None)


def _status_command(v: str) -> str | None:
    return evolis.command_problem(v, read=True) if v else None


SCHEMA: dict[str, dict[str, Key]] = {
    "station": {
        "id": Key(str, None, _matches(r"[a-z0-9-]{1,64}", "1-64 characters of a-z, 0-9 and -"), required=True),
        "card_types": Key(list, [KTP_EL], _card_types),
        "timezone": Key(str, "Asia/Jakarta", _timezone),
    },
    "mqtt": {
        "host": Key(str, "localhost", lambda v: None if v else "must not be empty"),
        "port": Key(int, 1883, _range(1, 65535)),
        "topic_prefix": Key(str, "kartud", _topic_prefix),
        "client_id": Key(str, "", _mqtt_name),
        "session_expiry_s": Key(int, 604800, _range(0, 4294967295)),
        "keepalive_s": Key(int, 30, _range(5, 65535)),
        "username": Key(str, ""),
        "password_file": Key(str, ""),
        "tls_ca": Key(str, ""),
        "tls_cert": Key(str, ""),
        "tls_key": Key(str, ""),
        "max_payload_bytes": Key(int, 4194304, _range(1024, 268435455)),
        # Extensions (documented in docs/configuration.md): reconnect backoff bounds.
        "reconnect_min_s": Key(float, 1.0, _range(0.05, 30.0)),
        "reconnect_max_s": Key(float, 30.0, _range(0.1, 30.0)),
        # Contract 1.1: the MQTT version; extension: how long a CONNECT may go unanswered.
        "protocol": Key(str, "auto", _one_of("auto", "5", "3.1.1")),
        "connack_timeout_s": Key(float, 10.0, _range(0.5, 300.0)),
    },
    "control": {
        "socket": Key(str, "/run/kartud/control.sock", lambda v: None if os.path.isabs(v) else "must be an absolute path"),
    },
    "store": {
        "path": Key(str, "/var/lib/kartud/kartud.db", lambda v: None if v else "must not be empty"),
        "pii_retention_days": Key(int, 7, _range(0, 3650)),
        "key_file": Key(str, "/etc/kartud/nik.key", lambda v: None if os.path.isabs(v) else "must be an absolute path"),
    },
    "limits": {
        "daily": Key(int, 200, _range(1, 10000)),
        "working_hours": Key(list, ["mon-thu 08:00-14:00", "fri 08:00-11:00"], _working_hours),
        "pacing": Key(str, "even", _one_of("even", "none")),
        "max_attempts": Key(int, 3, _range(1, 20)),
        "cleaning_every": Key(int, 1000, _range(1, 1000000)),
        # Extension (documented in docs/configuration.md): dates the station does not print.
        "holidays": Key(list, [], _dates),
    },
    "blanks": {
        "low_threshold": Key(int, 200, _range(0, 1000000)),
    },
    "printer": {
        "transport": Key(str, "usb", _one_of("usb", "serial", "sim")),
        "usb_vendor_id": Key(int, 0x0F49, _range(0, 0xFFFF)),
        "usb_product_id": Key(int, 0, _range(0, 0xFFFF)),
        "serial_port": Key(str, "/dev/ttyUSB0", lambda v: None if v else "must not be empty"),
        "serial_baud": Key(int, 9600, _one_of(9600, 19200, 38400, 57600, 115200, 230400)),
        "status_poll_s": Key(float, 2.0, _range(0.1, 60.0)),
        # Extensions (documented in docs/configuration.md and docs/printer.md): the Evolis driver.
        "reply_timeout_s": Key(float, 5.0, _range(0.1, 120.0)),
        "move_timeout_s": Key(float, 60.0, _range(1.0, 600.0)),
        "usb_timeout_s": Key(float, 5.0, _range(0.1, 60.0)),
        "ribbon": Key(str, "ymcko", _one_of(*evolis.RIBBONS)),
        "colour_bits": Key(int, 6, _one_of(*evolis.COLOUR_BITS)),
        "panel_width": Key(int, evolis.PANEL_WIDTH, evolis.panel_width_problem),
        "panel_height": Key(int, evolis.PANEL_HEIGHT, _range(*evolis.PANEL_HEIGHT_RANGE)),
        "panel_rotation": Key(int, 270, _one_of(*evolis.PANEL_ROTATIONS)),
        "black_threshold": Key(int, 0, _range(0, 254)),
        "overlay_no_varnish": Key(list, [], evolis.card_rectangle_problem),
        "setup_commands": Key(list, list(evolis.SETUP_COMMANDS), _printer_commands),
        "status_command": Key(str, evolis.STATUS_COMMAND, _status_command),
    },
    "printer.sim": {
        "output_dir": Key(str, ""),
        "seconds_per_card": Key(float, 15.0, _range(0.01, 3600.0)),
        "feeder_cards": Key(int, 100, _range(0, 1000000)),
        "hopper_capacity": Key(int, 100, _range(1, 100000)),
        "reject_box_capacity": Key(int, 20, _range(1, 100000)),
        "ribbon_prints": Key(int, 300, _range(1, 100000)),
        "cleaning_every": Key(int, 1000, _range(1, 1000000)),
    },
    "encoder": {
        "backend": Key(str, "pcsc", _one_of("pcsc", "sim", "none")),
        "reader": Key(str, ""),
        "timeout_s": Key(float, 10.0, _range(0.5, 300.0)),
        "chunk_bytes": Key(int, 224, _range(16, 255)),
        # Bytes of files a blank's chip takes (no ISO command reads it from the chip): larger jobs are refused.
        "chip_capacity_bytes": Key(int, CHIP_CAPACITY_BYTES, _range(256, MAX_CHIP_BYTES)),
    },
    "indicator": {
        "backend": Key(str, "gpio", _one_of("gpio", "mock", "none")),
        "led_pin": Key(int, 17, _range(0, 53)),
        "buzzer_pin": Key(int, 27, _range(0, 53)),
        "button_pin": Key(int, 22, _range(0, 53)),
    },
    "security": {
        "signing": Key(str, "off", _one_of("off", "optional", "required")),
        "trusted_keys": Key(list, [], _trusted_keys),
        "replay_window_days": Key(int, 30, _range(1, 3650)),
    },
    "sim": {
        "clock_speed": Key(float, 1.0, _range(0.001, 100000.0)),
        "clock_start": Key(str, "", _rfc3339_or_empty),
    },
}

_LIST_ITEM_TYPE = {("station", "card_types"): str, ("limits", "working_hours"): str, ("security", "trusted_keys"): str,
                   ("limits", "holidays"): str}
