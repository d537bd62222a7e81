"""The NIK: which numbers are valid, why the others are not, and how it is masked."""

from __future__ import annotations

import pytest
from job_payloads import BOTH, good

from kartud.rules import jobs as J


@pytest.mark.parametrize("nik", [
    "3574010107900001",   # a man born 01-07-90
    "3574013112990001",   # day 31
    "3574014107900001",   # a woman: day 01 + 40
    "3574017112990001",   # a woman: day 31 + 40
    "3574015506859999",   # a woman, serial 9999
    "9901010101000001",   # region 99 does not exist: accepted, codes get renumbered
    "0000000101000001",   # region 00: not checked
    "3574010112000001",   # December
])
def test_valid_niks(nik):
    assert J.nik_problem(nik) is None


@pytest.mark.parametrize("nik, what", [
    ("357401010790001", "16 digits"),     # 15 digits
    ("35740101079000011", "16 digits"),   # 17 digits
    ("", "16 digits"),
    ("35740101079O0001", "16 digits"),    # a letter O
    ("3574O10107900001", "16 digits"),
    ("357401010790000 ", "16 digits"),
    (" 357401010790000", "16 digits"),
    ("3574010107900001\n", "16 digits"),
    ("+574010107900001", "16 digits"),
    ("3574-10107900001", "16 digits"),
    ("357401٠١07900001", "16 digits"),    # Arabic-Indic digits are not NIK digits
    ("3574010107900001".translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}), "16 digits"),  # fullwidth
    ("3574010100900001", "month"),        # month 00
    ("3574010113900001", "month"),        # month 13
    ("3574010199900001", "month"),
    ("3574010007900001", "day"),          # day 00
    ("3574013207900001", "day"),          # day 32
    ("3574014007900001", "day"),          # day 40 (a woman's day 00)
    ("3574017207900001", "day"),          # day 72
    ("3574019907900001", "day"),
    ("3574010107900000", "serial"),       # serial 0000
])
def test_invalid_niks(nik, what):
    problem = J.nik_problem(nik)
    assert problem is not None and what in problem


@pytest.mark.parametrize("nik, masked", [
    ("3574014107900001", "357401******0001"),
    ("9901010101000001", "990101******0001"),
    ("12345678901", "123456*8901"),
    ("1234567890", "**********"),
    ("", ""),
])
def test_mask_nik(nik, masked):
    assert J.mask_nik(nik) == masked


def test_new_job_masks_its_nik():
    job = J.validate_submission(good(), BOTH)
    assert job.nik_masked == "357401******0001"
