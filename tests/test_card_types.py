"""The card types come from one place; the ledger's schema (SQL, which cannot import them) agrees with it."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import pytest

from kartud.ledger.daily_report import daily_report
from kartud.rules.card_types import CARD_TYPES, has_chip
from kartud.rules.config import SCHEMA, from_dict


def test_the_schema_keeps_stock_of_exactly_the_card_types(store):
    stocked = [row[0] for row in store.conn.execute("SELECT card_type FROM blank_stock")]
    assert sorted(stocked) == sorted(CARD_TYPES)
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute("INSERT INTO blank_stock (card_type) VALUES ('SIM_C')")


def test_the_daily_report_covers_every_card_type(store):
    from zoneinfo import ZoneInfo

    report = daily_report(store.conn, datetime(2026, 11, 23).date(), ZoneInfo("Asia/Jakarta"))
    assert tuple(report["blanks"]) == CARD_TYPES


def test_config_accepts_every_card_type_and_defaults_to_the_chip_card():
    assert SCHEMA["station"]["card_types"].default == ["KTP_EL"]
    assert from_dict({"station": {"id": "s-1", "card_types": list(CARD_TYPES)}}).station.card_types == list(CARD_TYPES)


def test_only_the_ktp_el_carries_a_chip():
    assert [t for t in CARD_TYPES if has_chip(t)] == ["KTP_EL"]
