"""The simulated chip answers as a blank ISO 14443-4 card: its ATR, 6A 82 for absent files, CREATE FILE, capacity."""

from __future__ import annotations

import os
import re

import pytest
from chip_apdus import create, read, select, update

from kartud.hw.sim.card import (BLANK_CAPACITY, CONTACTLESS_ATR, MAX_FILE_SIZE, SW_CLA_NOT_SUPPORTED, SW_END_OF_FILE,
                                SW_FILE_EXISTS, SW_FILE_NOT_FOUND, SW_INS_NOT_SUPPORTED, SW_NO_FILE_SELECTED,
                                SW_NOT_ENOUGH_MEMORY, SW_OK, SW_SECURITY, SW_WRONG_DATA, SW_WRONG_LENGTH,
                                SW_WRONG_P1P2, SimChipCard, contactless_atr, files_sha256)

UID = bytes.fromhex("04A1B2C3D4E5F6")
SMARTCARD_LIST = "/usr/share/pcsc/smartcard_list.txt"       # pcsc-tools' list, which pcsc_scan names cards by
# The ATR the simulated chip had before: PC/SC part 3's storage-card ATR for a MIFARE Classic 1K.
MIFARE_CLASSIC_1K_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")


@pytest.fixture
def card():
    return SimChipCard(uid=UID)


# -- the ATR ----------------------------------------------------------------------------------------------


def test_the_atr_is_an_iso_14443_4_card_as_pc_sc_builds_it():
    """PC/SC part 3: 3B 8n 80 01, n historical bytes, TCK making the XOR of T0..TCK zero."""
    atr = SimChipCard().atr
    assert atr == CONTACTLESS_ATR
    assert atr[0] == 0x3B and atr[1] >> 4 == 0x8 and atr[2:4] == b"\x80\x01"
    historical = atr[4:-1]
    assert len(historical) == atr[1] & 0x0F
    xor = 0
    for byte in atr[1:]:
        xor ^= byte
    assert xor == 0
    assert historical[0] == 0x80                     # ISO 7816-4 compact-TLV follows
    assert historical[:2] != b"\x80\x4f"             # not PC/SC part 3's storage-card RID (MIFARE and the like)
    assert atr.hex(" ").upper() == "3B 88 80 01 80 73 10 21 00 82 90 00 D9"


def test_the_atr_builder_matches_known_contactless_atrs():
    # Two ATRs from pcsc-tools' list: a type B card without historical bytes, and a DESFire (ATS 80).
    assert contactless_atr(b"").hex(" ").upper() == "3B 80 80 01 01"
    assert contactless_atr(b"\x80").hex(" ").upper() == "3B 81 80 01 80 80"
    with pytest.raises(ValueError):
        contactless_atr(bytes(16))


def _names_for(atr: bytes) -> list[str]:
    """What pcsc-tools' smartcard_list.txt says a card with ``atr`` is (its ATR lines are regular expressions)."""
    text = " ".join(f"{b:02X}" for b in atr)
    names, matched = [], False
    with open(SMARTCARD_LIST, errors="replace") as handle:
        for line in handle:
            if line.startswith("\t"):
                if matched:
                    names.append(line.strip())
            elif line.strip() and not line.startswith("#"):
                try:
                    matched = re.fullmatch(line.strip(), text, re.IGNORECASE) is not None
                except re.error:
                    matched = False
    return names


@pytest.mark.skipif(not os.path.exists(SMARTCARD_LIST), reason="pcsc-tools is not installed")
def test_pcsc_tools_list_took_the_old_atr_for_a_mifare_classic_and_knows_no_card_by_the_new_one():
    assert any("MIFARE Classic 1K" in name for name in _names_for(MIFARE_CLASSIC_1K_ATR))   # the finding
    assert _names_for(CONTACTLESS_ATR) == []


# -- files exist only when created --------------------------------------------------------------------


def test_a_select_of_an_absent_file_is_6a82_and_creates_nothing(card):
    assert card.transmit(select(0x0101)) == SW_FILE_NOT_FOUND
    assert card.transmit(select(0x0101, p1=0x00)) == SW_FILE_NOT_FOUND
    assert card.files == {} and card.selected is None and card.files_sha256() is None
    assert card.transmit(update(0, b"x")) == SW_NO_FILE_SELECTED      # nothing to write into


def test_select_of_an_application_a_blank_does_not_hold_is_6a82(card):
    assert card.transmit(bytes.fromhex("00A4040007A0000002471001")) == SW_FILE_NOT_FOUND   # the ICAO eMRTD AID


def test_create_file_makes_a_transparent_ef_of_its_size_and_selects_it(card):
    assert card.transmit(create(0x0101, 11)) == SW_OK
    assert card.selected == 0x0101 and bytes(card.files[0x0101]) == bytes(11)
    assert card.transmit(update(0, b"hello ")) == SW_OK
    assert card.transmit(update(6, b"world")) == SW_OK
    assert card.transmit(read(0, 11)) == b"hello world" + SW_OK
    assert card.transmit(read(6, 100)) == b"world" + SW_END_OF_FILE      # fewer bytes left than asked
    assert card.transmit(read(11, 1)) == SW_WRONG_P1P2                  # beyond the end
    assert card.transmit(update(6, b"world!")) == SW_NOT_ENOUGH_MEMORY  # past the file's end: its size is fixed
    assert card.transmit(update(12, b"x")) == SW_WRONG_P1P2
    assert card.transmit(create(0x0102, 3)) == SW_OK
    assert card.transmit(update(0, b"two")) == SW_OK
    assert card.transmit(select(0x0101)) == SW_OK
    assert card.transmit(read(0, 5)) == b"hello" + SW_OK
    assert card.files_sha256() == files_sha256({0x0101: b"hello world", 0x0102: b"two"})


def test_select_may_return_the_files_fcp(card):
    card.transmit(create(0x0A01, 0x0123))
    assert card.transmit(select(0x0A01, p2=0x04)) == bytes.fromhex("620B 80020123 820101 83020A01") + SW_OK
    assert card.transmit(bytes.fromhex("00A4000C023F00")) == SW_OK and card.selected is None   # the MF
    assert card.transmit(bytes.fromhex("00A40000023F00")) == bytes.fromhex("6207 820138 83023F00") + SW_OK


@pytest.mark.parametrize("apdu, status", [
    (create(0x0101, 4)[:-1], SW_WRONG_LENGTH),                          # Lc says one byte more
    (bytes.fromhex("00E0000003") + bytes.fromhex("620180"), SW_WRONG_DATA),
    (bytes.fromhex("00E0000005") + bytes.fromhex("6303800104"), SW_WRONG_DATA),   # not an FCP template
    (bytes.fromhex("00E0000007") + bytes.fromhex("6205 83020101 00"), SW_WRONG_DATA),  # no size
    (bytes.fromhex("00E0000006") + bytes.fromhex("6204 80020010"), SW_WRONG_DATA),     # no file id
    (create(0x3F00, 4), SW_WRONG_DATA), (create(0xFFFF, 4), SW_WRONG_DATA),           # ids ISO keeps
    (create(0x0101, 4, descriptor=0x38), SW_WRONG_DATA),                # a DF: a blank's EFs live under the MF
    (bytes.fromhex("00E0010000"), SW_WRONG_P1P2),
])
def test_a_create_file_it_cannot_do_is_refused_and_makes_nothing(card, apdu, status):
    assert card.transmit(apdu) == status
    assert card.files == {}


def test_a_file_created_twice_is_6a89(card):
    assert card.transmit(create(0x0101, 4)) == SW_OK
    assert card.transmit(create(0x0101, 8)) == SW_FILE_EXISTS
    assert len(card.files[0x0101]) == 4


# -- capacity -------------------------------------------------------------------------------------------


def test_a_blank_holds_what_an_e_ktp_chip_holds_and_not_a_byte_more(card):
    assert card.capacity == BLANK_CAPACITY == 8 * 1024
    assert card.transmit(create(0x0101, 5000)) == SW_OK
    assert card.transmit(create(0x0102, 3193)) == SW_NOT_ENOUGH_MEMORY   # one byte over: 6A 84, nothing made
    assert card.transmit(create(0x0102, 3192)) == SW_OK                  # exactly full
    assert card.transmit(create(0x0103, 1)) == SW_NOT_ENOUGH_MEMORY
    assert card.transmit(create(0x0103, 0)) == SW_OK                     # an empty file takes no room
    assert card.used() == card.capacity and set(card.files) == {0x0101, 0x0102, 0x0103}


def test_a_file_larger_than_an_offset_can_reach_is_6a84():
    card = SimChipCard(uid=UID, capacity=80 * 1024)
    assert card.transmit(create(0x0101, MAX_FILE_SIZE + 1)) == SW_NOT_ENOUGH_MEMORY
    assert card.transmit(create(0x0101, MAX_FILE_SIZE)) == SW_OK
    assert card.transmit(update(0x7FFF, b"z")) == SW_OK
    assert card.transmit(bytes([0x00, 0xD6, 0x81, 0x00, 0x01, 0x7A])) == SW_WRONG_P1P2   # a short EF id: not kept


# -- the rest of the command set --------------------------------------------------------------------------


def test_get_uid(card):
    assert card.transmit(bytes.fromhex("FFCA000000")) == UID + SW_OK
    assert card.transmit(bytes.fromhex("FFCA010000")) == SW_WRONG_P1P2
    assert card.uid_hex == "04A1B2C3D4E5F6"


def test_a_card_without_a_given_uid_makes_a_7_byte_nxp_style_one():
    uids = {SimChipCard().uid for _ in range(5)}
    assert len(uids) == 5 and all(len(uid) == 7 and uid[0] == 0x04 for uid in uids)


@pytest.mark.parametrize("apdu", [
    bytes([0x00, 0xA4, 0x02, 0x0C, 0x01, 0x01]),         # Lc 1
    bytes([0x00, 0xA4, 0x02, 0x0C]),                     # no body
    bytes([0x00, 0xA4, 0x01, 0x0C, 0x02, 0x01, 0x01]),   # a DF under the current one: a blank has none
    bytes([0x00, 0xA4, 0x02, 0x08, 0x02, 0x01, 0x01]),   # P2 asking for something else than FCP or nothing
])
def test_bad_select(card, apdu):
    card.transmit(create(0x0101, 1))
    assert card.transmit(apdu) == SW_WRONG_P1P2


@pytest.mark.parametrize("apdu", [
    b"", b"\x00", b"\x00\xA4", b"\x00\xA4\x02",        # shorter than a header
    bytes([0x00, 0xD6, 0, 0, 5]) + b"abc",             # Lc says 5, 3 bytes follow
    bytes([0x00, 0xD6, 0, 0, 2]) + b"abc",             # Lc says 2, 3 bytes follow
    bytes([0x00, 0xD6, 0, 0]),                         # no Lc
])
def test_wrong_length(card, apdu):
    card.transmit(create(0x0101, 4))
    assert card.transmit(apdu) == SW_WRONG_LENGTH
    assert bytes(card.files[0x0101]) == bytes(4)


@pytest.mark.parametrize("apdu, status", [
    (bytes([0x00, 0x20, 0, 0, 0]), SW_INS_NOT_SUPPORTED),   # VERIFY
    (bytes([0x00, 0x84, 0, 0, 8]), SW_INS_NOT_SUPPORTED),   # GET CHALLENGE
    (bytes([0x00, 0xCA, 0, 0, 0]), SW_INS_NOT_SUPPORTED),   # GET DATA with the ISO class
    (bytes([0x80, 0xA4, 0x02, 0x0C, 0x02, 1, 1]), SW_CLA_NOT_SUPPORTED),
    (bytes([0x0C, 0xB0, 0, 0, 4]), SW_CLA_NOT_SUPPORTED),   # secure messaging
    (bytes([0xFF, 0xB0, 0, 0, 4]), SW_CLA_NOT_SUPPORTED),   # the reader's class, not GET UID
])
def test_unknown_ins_or_cla(card, apdu, status):
    assert card.transmit(apdu) == status


def test_fail_writes_refuses_the_next_write_commands_create_file_included(card):
    card.fail_writes = 2
    assert card.transmit(create(0x0101, 2)) == SW_SECURITY          # the chip stays untouched
    assert card.files_sha256() is None
    assert card.transmit(create(0x0101, 2)) == SW_SECURITY
    assert card.transmit(create(0x0101, 2)) == SW_OK
    card.fail_writes = 1
    assert card.transmit(update(0, b"a")) == SW_SECURITY
    assert card.transmit(update(0, b"ab")) == SW_OK
    assert bytes(card.files[0x0101]) == b"ab"


def test_power_off_forgets_the_selected_file_not_the_files(card):
    card.transmit(create(0x0101, 2))
    card.power_off()
    assert card.selected is None and card.transmit(read(0, 2)) == SW_NO_FILE_SELECTED
    assert card.transmit(select(0x0101)) == SW_OK
