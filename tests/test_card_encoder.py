"""The contract's chip files hash, and the encoder creating, writing and verifying files through a channel."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from card_on_table import CardOnTable
from chip_apdus import create, select, update

from kartud.hw.encoder import EncodeError, Encoder
from kartud.hw.sim.card import RESERVED_IDS, SW_OK, SW_SECURITY, SimChipCard, files_sha256

UID = bytes.fromhex("04A1B2C3D4E5F6")


@pytest.fixture
def card():
    return SimChipCard(uid=UID)


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
    card.transmit(select(0x0102))                     # absent: a SELECT makes no file
    assert card.files_sha256() is None
    card.transmit(create(0x0102, 3))
    assert card.files_sha256() == _by_hand({0x0102: bytes(3)})    # created, not yet written: a file all the same
    card.transmit(update(0, b"two"))
    card.transmit(create(0x0101, 3))
    card.transmit(update(0, b"one"))
    assert card.files_sha256() == _by_hand({0x0101: b"one", 0x0102: b"two"})


# -- the encoder ------------------------------------------------------------------------------------


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
    # The UID comes first, then the MF; every file is created (of its size) before any is written, and
    # written before any is read back; ids in ascending order.
    assert channel.apdus[:2] == [bytes.fromhex("FFCA000000"), bytes.fromhex("00A4000C023F00")]
    kinds = [a[1] for a in channel.apdus]
    assert max(i for i, k in enumerate(kinds) if k == 0xE0) < min(i for i, k in enumerate(kinds) if k == 0xD6)
    assert max(i for i, k in enumerate(kinds) if k == 0xD6) < min(i for i, k in enumerate(kinds) if k == 0xB0)
    assert [a for a in channel.apdus if a[1] == 0xE0] == [create(0x0101, 0xE0), create(0x0102, 1000), create(0x0103, 1)]
    selects = [(a[5] << 8) | a[6] for a in channel.apdus if a[1] == 0xA4]
    assert selects == [0x3F00] + [0x0101, 0x0102, 0x0103] * 2
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
@given(files=st.dictionaries(st.integers(0, 0xFFFF).filter(lambda i: i not in RESERVED_IDS),
                             st.binary(max_size=700), min_size=1, max_size=4),
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


class RefusesThirdWrite(CardOnTable):
    """A channel whose card refuses the third UPDATE BINARY (69 82)."""

    def transmit(self, apdu: bytes) -> bytes:
        if apdu[1] == 0xD6 and sum(a[1] == 0xD6 for a in self.apdus) == 2:
            self.card.fail_writes = 1
        return super().transmit(apdu)


def test_a_refused_later_chunk_is_write_refused_too():
    channel = RefusesThirdWrite(SimChipCard(uid=UID))
    with pytest.raises(EncodeError) as caught:
        Encoder(channel, chunk=0xE0).encode({0x0101: bytes(1000)})
    assert caught.value.kind == "write_refused" and "write file 0101" in str(caught.value)
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
