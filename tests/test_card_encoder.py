"""The simulated chip card, the contract's files hash, and the encoder writing and verifying through a channel."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kartud.hw.encoder import CardChannel, EncodeError, Encoder, EncoderStatus
from kartud.hw.sim.card import (CONTACTLESS_ATR, SW_CLA_NOT_SUPPORTED, SW_FILE_NOT_FOUND, SW_INS_NOT_SUPPORTED,
                                SW_NO_FILE_SELECTED, SW_NOT_ENOUGH_MEMORY, SW_OK, SW_SECURITY, SW_WRONG_LENGTH,
                                SW_WRONG_P1P2, SimChipCard, files_sha256)

UID = bytes.fromhex("04A1B2C3D4E5F6")


def select(file_id: int) -> bytes:
    return bytes([0x00, 0xA4, 0x02, 0x0C, 0x02, file_id >> 8, file_id & 0xFF])


def update(offset: int, data: bytes) -> bytes:
    return bytes([0x00, 0xD6, offset >> 8, offset & 0xFF, len(data)]) + data


def read(offset: int, length: int) -> bytes:
    return bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, length])


@pytest.fixture
def card():
    return SimChipCard(uid=UID)


# -- the card -----------------------------------------------------------------------------------------


def test_get_uid(card):
    assert card.transmit(bytes.fromhex("FFCA000000")) == UID + SW_OK
    assert card.uid_hex == "04A1B2C3D4E5F6"


def test_get_uid_with_other_p1_p2_is_refused(card):
    assert card.transmit(bytes.fromhex("FFCA010000")) == SW_WRONG_P1P2


def test_a_card_without_a_given_uid_makes_a_7_byte_nxp_style_one():
    uids = {SimChipCard().uid for _ in range(5)}
    assert len(uids) == 5
    for uid in uids:
        assert len(uid) == 7 and uid[0] == 0x04


def test_select_update_read_round_trip(card):
    assert card.transmit(select(0x0101)) == SW_OK
    assert card.transmit(update(0, b"hello ")) == SW_OK
    assert card.transmit(update(6, b"world")) == SW_OK
    assert card.transmit(read(0, 11)) == b"hello world" + SW_OK
    assert card.transmit(read(6, 5)) == b"world" + SW_OK
    assert card.transmit(read(6, 100)) == b"world" + SW_OK     # a short read at the end of the file
    assert card.transmit(read(0, 0)) == b"hello world" + SW_OK  # Le 0 means up to 256
    # Overwriting in place keeps the length.
    assert card.transmit(update(0, b"HELLO")) == SW_OK
    assert card.transmit(read(0, 11)) == b"HELLO world" + SW_OK
    # Files are separate.
    assert card.transmit(select(0x0102)) == SW_OK
    assert card.transmit(read(0, 10)) == SW_OK
    assert card.transmit(update(0, b"two")) == SW_OK
    assert card.transmit(select(0x0101)) == SW_OK
    assert card.transmit(read(0, 11)) == b"HELLO world" + SW_OK
    assert {fid: bytes(data) for fid, data in card.files.items()} == {0x0101: b"HELLO world", 0x0102: b"two"}


def test_select_with_p1_00_works_too(card):
    assert card.transmit(bytes([0x00, 0xA4, 0x00, 0x0C, 0x02, 0x01, 0x01])) == SW_OK
    assert card.selected == 0x0101


@pytest.mark.parametrize("apdu", [
    bytes([0x00, 0xA4, 0x04, 0x0C, 0x02, 0x01, 0x01]),   # select by DF name: not supported
    bytes([0x00, 0xA4, 0x02, 0x0C, 0x01, 0x01]),         # Lc 1
    bytes([0x00, 0xA4, 0x02, 0x0C]),                     # no body
])
def test_bad_select(card, apdu):
    assert card.transmit(apdu) == SW_WRONG_P1P2
    assert card.selected is None


def test_read_and_update_need_a_selected_file(card):
    assert card.transmit(read(0, 4)) == SW_NO_FILE_SELECTED
    assert card.transmit(update(0, b"x")) == SW_NO_FILE_SELECTED
    assert card.files == {}


def test_update_may_not_leave_a_hole(card):
    card.transmit(select(0x0101))
    assert card.transmit(update(4, b"x")) == SW_WRONG_P1P2
    assert card.transmit(update(0, b"abcd")) == SW_OK
    assert card.transmit(update(4, b"e")) == SW_OK   # appending right at the end is fine
    assert bytes(card.files[0x0101]) == b"abcde"


@pytest.mark.parametrize("apdu", [
    b"", b"\x00", b"\x00\xA4", b"\x00\xA4\x02",        # shorter than a header
    bytes([0x00, 0xD6, 0, 0, 5]) + b"abc",             # Lc says 5, 3 bytes follow
    bytes([0x00, 0xD6, 0, 0, 2]) + b"abc",             # Lc says 2, 3 bytes follow
    bytes([0x00, 0xD6, 0, 0]),                         # no Lc
])
def test_wrong_length(card, apdu):
    card.transmit(select(0x0101))
    assert card.transmit(apdu) == SW_WRONG_LENGTH
    assert bytes(card.files[0x0101]) == b""


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


def test_every_status_word_is_two_bytes():
    for sw in (SW_OK, SW_WRONG_LENGTH, SW_SECURITY, SW_NO_FILE_SELECTED, SW_FILE_NOT_FOUND, SW_NOT_ENOUGH_MEMORY,
               SW_WRONG_P1P2, SW_INS_NOT_SUPPORTED, SW_CLA_NOT_SUPPORTED):
        assert len(sw) == 2
    assert CONTACTLESS_ATR[0] == 0x3B


def test_max_file_size():
    card = SimChipCard(uid=UID, capacity=10_000, max_file_size=300)
    card.transmit(select(0x0101))
    assert card.transmit(update(0, bytes(200))) == SW_OK
    assert card.transmit(update(200, bytes(100))) == SW_OK           # exactly the maximum
    assert card.transmit(update(300, b"x")) == SW_NOT_ENOUGH_MEMORY  # one byte more
    assert card.transmit(update(250, bytes(51))) == SW_NOT_ENOUGH_MEMORY
    assert len(card.files[0x0101]) == 300


def test_capacity_counts_every_file():
    card = SimChipCard(uid=UID, capacity=500, max_file_size=400)
    card.transmit(select(0x0101))
    assert card.transmit(update(0, bytes(200))) == SW_OK
    card.transmit(select(0x0102))
    assert card.transmit(update(0, bytes(200))) == SW_OK
    assert card.transmit(update(200, bytes(100))) == SW_OK             # 500 in all: full
    assert card.transmit(update(300, b"x")) == SW_NOT_ENOUGH_MEMORY
    card.transmit(select(0x0103))
    assert card.transmit(update(0, b"x")) == SW_NOT_ENOUGH_MEMORY
    # Overwriting what is already there needs no room.
    card.transmit(select(0x0101))
    assert card.transmit(update(0, b"\xff" * 200)) == SW_OK
    assert sum(len(d) for d in card.files.values()) == 500


def test_fail_writes_refuses_the_next_updates_only():
    card = SimChipCard(uid=UID)
    card.fail_writes = 2
    card.transmit(select(0x0101))
    assert card.transmit(update(0, b"a")) == SW_SECURITY
    assert card.transmit(update(0, b"a")) == SW_SECURITY
    assert card.transmit(update(0, b"a")) == SW_OK
    assert bytes(card.files[0x0101]) == b"a"


# -- files_sha256 -------------------------------------------------------------------------------------


def _by_hand(files: dict[int, bytes]) -> str:
    """The contract: for each file in ascending id order, id as 2 bytes big-endian, length as 4 bytes
    big-endian, then the bytes; SHA-256 of it all."""
    blob = b""
    for file_id in sorted(files):
        data = files[file_id]
        blob += file_id.to_bytes(2, "big") + len(data).to_bytes(4, "big") + data
    return hashlib.sha256(blob).hexdigest()


def test_files_sha256_known_value():
    files = {0x0102: b"BB", 0x0101: b"A"}
    expected = hashlib.sha256(bytes.fromhex("0101" "00000001") + b"A" + bytes.fromhex("0102" "00000002") + b"BB")
    assert files_sha256(files) == expected.hexdigest()
    assert files_sha256({}) == hashlib.sha256(b"").hexdigest()


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=300), max_size=6))
def test_files_sha256_matches_the_contract(files):
    assert files_sha256(files) == _by_hand(files)
    assert files_sha256(dict(reversed(list(files.items())))) == _by_hand(files)


def test_files_sha256_tells_a_moved_byte_from_the_original():
    """The length prefix keeps file boundaries: moving a byte from one file to the next changes the hash."""
    assert files_sha256({1: b"ab", 2: b"c"}) != files_sha256({1: b"a", 2: b"bc"})
    assert files_sha256({1: b"", 2: b"x"}) != files_sha256({2: b"x"})


def test_card_files_sha256(card):
    assert card.files_sha256() is None
    card.transmit(select(0x0102))                     # selected, never written: not a file yet
    assert card.files_sha256() is None
    card.transmit(update(0, b"two"))
    card.transmit(select(0x0101))
    card.transmit(update(0, b"one"))
    assert card.files_sha256() == _by_hand({0x0101: b"one", 0x0102: b"two"})


# -- the encoder ------------------------------------------------------------------------------------


class CardOnTable(CardChannel):
    """A channel to one simulated card (or none), recording what was sent and whether the card was let go."""

    def __init__(self, card: SimChipCard | None, corrupt_read_at: int | None = None):
        self.card = card
        self.corrupt_read_at = corrupt_read_at   # flip a byte of the n-th READ BINARY answer's data
        self.apdus: list[bytes] = []
        self.reads = 0
        self.connected = False
        self.released = 0

    def wait_for_card(self, timeout_s: float) -> None:
        if self.card is None:
            raise EncodeError("no_card", "no chip card at the station")
        self.connected = True

    def transmit(self, apdu: bytes) -> bytes:
        assert self.connected, "transmit before wait_for_card or after release"
        self.apdus.append(apdu)
        response = self.card.transmit(apdu)
        if apdu[1] == 0xB0 and response[-2:] == SW_OK:
            self.reads += 1
            if self.reads == self.corrupt_read_at and len(response) > 2:
                data = bytearray(response[:-2])
                data[len(data) // 2] ^= 0x01
                response = bytes(data) + response[-2:]
        return response

    def release(self) -> None:
        self.connected = False
        self.released += 1

    def status(self) -> EncoderStatus:
        return EncoderStatus(connected=self.card is not None, reader="test table")


def test_encode_writes_multi_chunk_files_verifies_and_returns_the_uid():
    card = SimChipCard(uid=UID)
    channel = CardOnTable(card)
    rng = random.Random(3)
    files = {0x0102: rng.randbytes(1000), 0x0101: rng.randbytes(0xE0), 0x0103: b"z"}
    uid = Encoder(channel, chunk=0xE0).encode(files)
    assert uid == "04A1B2C3D4E5F6"
    assert {fid: bytes(card.files[fid]) for fid in files} == files
    assert card.files_sha256() == files_sha256(files)
    writes = [a for a in channel.apdus if a[1] == 0xD6]
    # 1000 bytes in 0xE0 chunks is 5 writes (4 x 224 + 104), 224 bytes one, 1 byte one.
    assert len(writes) == 5 + 1 + 1
    assert max(a[4] for a in writes) == 0xE0
    # The UID comes first; every file is written before any is read back; ids in ascending order.
    assert channel.apdus[0] == bytes.fromhex("FFCA000000")
    kinds = [a[1] for a in channel.apdus]
    assert max(i for i, k in enumerate(kinds) if k == 0xD6) < min(i for i, k in enumerate(kinds) if k == 0xB0)
    selects = [(a[5] << 8) | a[6] for a in channel.apdus if a[1] == 0xA4]
    assert selects == [0x0101, 0x0102, 0x0103] * 2
    assert channel.released == 1 and not channel.connected


def test_encode_writes_each_chunk_at_its_offset():
    card = SimChipCard(uid=UID)
    channel = CardOnTable(card)
    data = bytes(range(256)) * 4   # 1024 bytes
    Encoder(channel, chunk=100).encode({0x0101: data})
    writes = [a for a in channel.apdus if a[1] == 0xD6]
    assert [(a[2] << 8) | a[3] for a in writes] == list(range(0, 1024, 100))
    assert [a[4] for a in writes] == [100] * 10 + [24]
    reads = [a for a in channel.apdus if a[1] == 0xB0]
    assert [((a[2] << 8) | a[3], a[4]) for a in reads] == [(o, min(100, 1024 - o)) for o in range(0, 1024, 100)]


@settings(max_examples=30, deadline=None)
@given(files=st.dictionaries(st.integers(1, 0xFFFF), st.binary(min_size=1, max_size=700), min_size=1, max_size=4),
       chunk=st.integers(1, 0xFF))
def test_encode_round_trips_any_files(files, chunk):
    card = SimChipCard(uid=UID)
    assert Encoder(CardOnTable(card), chunk=chunk).encode(files) == "04A1B2C3D4E5F6"
    assert card.files_sha256() == files_sha256(files)


def test_a_refused_write_is_write_refused_and_the_card_is_released():
    card = SimChipCard(uid=UID)
    card.fail_writes = 1
    channel = CardOnTable(card)
    with pytest.raises(EncodeError) as caught:
        Encoder(channel).encode({0x0101: b"x" * 10})
    assert caught.value.kind == "write_refused"
    assert "6982" in str(caught.value)
    assert channel.released == 1 and not channel.connected


def test_a_refused_later_chunk_is_write_refused_too():
    card = SimChipCard(uid=UID, capacity=300)
    channel = CardOnTable(card)
    with pytest.raises(EncodeError) as caught:
        Encoder(channel, chunk=0xE0).encode({0x0101: bytes(1000)})
    assert caught.value.kind == "write_refused"
    assert channel.released == 1


@pytest.mark.parametrize("which", [1, 2, 5, 7])
def test_a_wrong_read_back_byte_is_verify_mismatch(which):
    card = SimChipCard(uid=UID)
    channel = CardOnTable(card, corrupt_read_at=which)
    rng = random.Random(which)
    files = {0x0101: rng.randbytes(300), 0x0102: rng.randbytes(1000)}   # 2 + 5 reads of 0xE0
    with pytest.raises(EncodeError) as caught:
        Encoder(channel, chunk=0xE0).encode(files)
    assert caught.value.kind == "verify_mismatch"
    assert ("0101" if which <= 2 else "0102") in str(caught.value)
    assert channel.released == 1 and not channel.connected


def test_no_card_is_no_card_and_nothing_is_sent():
    channel = CardOnTable(None)
    with pytest.raises(EncodeError) as caught:
        Encoder(channel, timeout_s=0.01).encode({0x0101: b"x"})
    assert caught.value.kind == "no_card"
    assert channel.apdus == []
    assert channel.released == 1


class Answers(CardOnTable):
    """A channel that answers GET UID with a fixed response."""

    def __init__(self, uid_response: bytes):
        super().__init__(SimChipCard(uid=UID))
        self.uid_response = uid_response

    def transmit(self, apdu: bytes) -> bytes:
        if apdu == bytes.fromhex("FFCA000000"):
            self.apdus.append(apdu)
            return self.uid_response
        return super().transmit(apdu)


@pytest.mark.parametrize("uid_response", [SW_OK, b"", b"\x90", bytes.fromhex("6A81"), UID + SW_SECURITY])
def test_a_card_with_no_usable_uid_is_wrong_card(uid_response):
    channel = Answers(uid_response)
    with pytest.raises(EncodeError) as caught:
        Encoder(channel).encode({0x0101: b"x"})
    assert caught.value.kind == "wrong_card"
    assert channel.released == 1
    assert not any(a[1] == 0xD6 for a in channel.apdus)


class Broken(CardOnTable):
    """A channel whose transmit raises, as a reader pulled out mid-card would."""

    def transmit(self, apdu: bytes) -> bytes:
        if apdu[1] == 0xD6:
            raise EncodeError("reader_gone", "the reader went away")
        return super().transmit(apdu)


def test_the_card_is_released_when_the_channel_fails():
    channel = Broken(SimChipCard(uid=UID))
    with pytest.raises(EncodeError) as caught:
        Encoder(channel).encode({0x0101: b"x"})
    assert caught.value.kind == "reader_gone"
    assert channel.released == 1


def test_encoder_status_comes_from_the_channel():
    status = Encoder(CardOnTable(SimChipCard(uid=UID))).status()
    assert status.as_dict() == {"connected": True, "reader": "test table"}
