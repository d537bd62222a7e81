"""No copy of the station's files without its key file recovers a NIK: the whole search of a documented domain.

After erasure, the station's database files (``-wal`` and ``-shm`` included) are copied; the key file
stays behind. The copy is searched as someone holding it would: every structurally valid NIK of the
domain of :mod:`erased_station` (each 4-digit prefix the copy shows, with every kecamatan 00-99; every
date of the birth year, men's days and women's days +40; every serial 0001-0010: 730,000 NIKs), each
hashed every way that can be computed from the copy (MD5, SHA-1, SHA-256 and SHA-512 of the NIK, and
HMAC-SHA256 under every value of the copy's settings and of any column named like a key), is compared
with every hash-shaped value of the copy (hex text of 16, 20, 32 or 64 bytes, and blobs of those sizes).

Without the key file it recovers none. With the key file it recovers every one of the twenty, which
shows that the search can succeed.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import shutil
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest
from erased_station import BIRTH_YEAR, KEY, RETENTION_DAYS, SERIALS, fill, people, station_files

from kartud.ledger.store import Store

HEX = re.compile(rb"(?i)(?<![0-9a-f])(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{128})(?![0-9a-f])")
SIZES = (16, 20, 32, 64)


def cells(directory: Path):
    """Every ``(table, column, value)`` of every database in ``directory``."""
    for path in sorted(directory.glob("*.db")):
        conn = sqlite3.connect(path)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                cursor = conn.execute(f'SELECT * FROM "{table}"')
                names = [c[0] for c in cursor.description]
                for row in cursor:
                    yield from ((table, name, value) for name, value in zip(names, row))
        finally:
            conn.close()


def what_the_copy_holds(directory: Path) -> tuple[set[str], list[bytes], set[str]]:
    """The hash-shaped values of the copy (lower-case hex), the values that could be keys, and the NIK
    prefixes its masks show."""
    targets, keys, prefixes = set(), [], set()
    for table, column, value in cells(directory):
        raw = value.encode("utf-8", "replace") if isinstance(value, str) else value
        if isinstance(raw, bytes):
            targets.update(m.group().decode().lower() for m in HEX.finditer(raw))
            if not isinstance(value, str) and len(raw) in SIZES:
                targets.add(raw.hex())
            if table == "settings" or "key" in column.lower():
                keys.append(raw)
                if re.fullmatch(rb"[0-9a-fA-F]{32,128}", raw.strip()):
                    keys.append(bytes.fromhex(raw.strip().decode()))
        if column == "nik_masked" and isinstance(value, str):
            prefixes.add(value[:4])
    return targets, keys, prefixes


def domain(prefixes: set[str]):
    """Every structurally valid NIK of the documented domain under the prefixes seen."""
    days = [date(BIRTH_YEAR, 1, 1) + timedelta(n) for n in range(366 if calendar.isleap(BIRTH_YEAR) else 365)]
    dates = [f"{d.day + extra:02d}{d.month:02d}{BIRTH_YEAR % 100:02d}" for d in days for extra in (0, 40)]
    serials = [f"{s:04d}" for s in SERIALS]
    for prefix in sorted(prefixes):
        for kecamatan in range(100):
            region = f"{prefix}{kecamatan:02d}"
            for born in dates:
                for serial in serials:
                    yield region + born + serial


def search(prefixes: set[str], targets: set[str], keys: list[bytes]) -> set[str]:
    """The NIKs of the domain whose hash, any way computed, is among ``targets``."""
    keyed = []
    for key in keys:
        key = hashlib.sha256(key).digest() if len(key) > 64 else key
        block = key.ljust(64, b"\0")
        keyed.append((hashlib.sha256(bytes(b ^ 0x36 for b in block)), hashlib.sha256(bytes(b ^ 0x5C for b in block))))
    unkeyed = (hashlib.md5, hashlib.sha1, hashlib.sha256, hashlib.sha512)
    found = set()
    for nik in domain(prefixes):
        data = nik.encode()
        if any(fn(data).hexdigest() in targets for fn in unkeyed):
            found.add(nik)
            continue
        for inner, outer in keyed:
            i, o = inner.copy(), outer.copy()
            i.update(data)
            o.update(i.digest())
            if o.hexdigest() in targets:
                found.add(nik)
                break
    return found


@pytest.fixture
def copied(tmp_path, manual_clock):
    """The station's database files after erasure, copied as they lie on disk while the station runs."""
    station = tmp_path / "station"
    station.mkdir()
    store = Store(str(station / "kartud.db"), manual_clock, key=KEY)
    store.open()
    everyone = people()
    fill(store, everyone)
    manual_clock.advance(RETENTION_DAYS * 86400 + 60)
    assert store.erase_personal_data(manual_clock.now(), RETENTION_DAYS) == len(everyone)
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in station_files(station):
        shutil.copy(path, copy / path.name)
    store.close()
    return copy, everyone


def test_the_domain_holds_every_person(copied):
    copy, everyone = copied
    niks = set(domain({"9901"}))
    assert len(niks) == 100 * 730 * len(SERIALS)
    assert {p.nik for p in everyone} <= niks


def test_no_nik_is_recovered_from_a_copy_without_the_key_file(copied):
    copy, everyone = copied
    targets, keys, prefixes = what_the_copy_holds(copy)
    assert prefixes == {"9901"} and len(targets) > 50
    assert search(prefixes, targets, keys) == set()


def test_with_the_key_file_the_same_search_recovers_every_nik(copied):
    copy, everyone = copied
    targets, keys, prefixes = what_the_copy_holds(copy)
    assert search(prefixes, targets, keys + [KEY]) == {p.nik for p in everyone}
