"""The PC/SC encoder against a real pcscd, the simulated card presented through vpcd, and what goes wrong around it."""

from __future__ import annotations

import random
import threading
import time

import pytest

from kartud.hw.encoder import EncodeError, Encoder
from kartud.hw.pcsc import PcscChannel
from kartud.hw.sim.card import SimChipCard, files_sha256
from kartud.hw.sim.vpcd_link import VpcdLink

from pcsc_fixtures import FRIENDLY_NAME, READER

FILES = {0x0101: random.Random(1).randbytes(3000), 0x0102: random.Random(2).randbytes(480), 0x0103: b"\x01"}


@pytest.fixture
def rig(pcscd):
    """An encoder on the private pcscd's vpcd reader, and the link that puts simulated cards on it."""
    channel = PcscChannel(READER)
    link = VpcdLink("127.0.0.1", pcscd.port)
    yield Encoder(channel, timeout_s=5.0), link
    link.close()
    channel.close()


def encode_expecting(encoder: Encoder, kind: str, files=FILES) -> EncodeError:
    with pytest.raises(EncodeError) as caught:
        encoder.encode(files)
    assert caught.value.kind == kind, caught.value
    return caught.value


def test_a_card_is_encoded_verified_and_its_uid_returned(rig):
    encoder, link = rig
    for _ in range(2):                          # two cards in a row: the second is found too
        card = SimChipCard()
        link.present(card)
        assert encoder.encode(FILES) == card.uid_hex
        assert card.files_sha256() == files_sha256(FILES)
        link.withdraw()


def test_the_card_may_arrive_while_the_encoder_waits(rig):
    encoder, link = rig
    card = SimChipCard()
    result: list = []
    worker = threading.Thread(target=lambda: result.append(encoder.encode(FILES)))
    worker.start()                              # waiting on pcscd's reader state before the card is there
    link.present(card)
    worker.join(10)
    assert result == [card.uid_hex]


@pytest.mark.parametrize("wanted, expected", [("", f"{FRIENDLY_NAME} 00 00"), ("VPCD 00 01", f"{FRIENDLY_NAME} 00 01"),
                                              ("no such reader", None)])
def test_the_reader_is_found_by_a_substring_of_its_name_or_the_first(pcscd, wanted, expected):
    channel = PcscChannel(wanted)
    try:
        status = channel.status()
        assert status.connected == (expected is not None)
        assert status.reader == (expected or "")
        if expected is None:
            with pytest.raises(EncodeError) as caught:
                channel.wait_for_card(1.0)
            assert caught.value.kind == "reader_gone" and "no such reader" in str(caught.value)
    finally:
        channel.close()


def test_no_card_is_no_card_after_the_timeout(rig):
    encoder, _ = rig
    encoder.timeout_s = 0.5
    started = time.monotonic()
    error = encode_expecting(encoder, "no_card")
    assert 0.5 <= time.monotonic() - started < 1.5
    assert "0.5 s" in str(error)


def test_a_write_the_card_refuses_is_write_refused(rig):
    encoder, link = rig
    card = SimChipCard()
    card.fail_writes = 1
    link.present(card)
    encode_expecting(encoder, "write_refused")
    assert card.files_sha256() is None


def test_a_card_pulled_mid_write_is_no_card(rig):
    encoder, link = rig
    card = SimChipCard()
    card.leave_field_at_write = 3               # after two chunks of the first file
    link.present(card)
    started = time.monotonic()
    error = encode_expecting(encoder, "no_card")
    assert "mid-command" in str(error)
    assert time.monotonic() - started < 3.0


def test_the_card_encoded_before_is_never_taken_for_the_next(rig):
    """The printer did not move the last card on: the next card's files must not land on it."""
    encoder, link = rig
    card = SimChipCard()
    link.present(card)
    encoder.encode(FILES)
    encoder.timeout_s = 0.5
    error = encode_expecting(encoder, "no_card", {0x0101: b"someone else"})
    assert "encoded before" in str(error)
    assert card.files_sha256() == files_sha256(FILES)


def test_pcscd_gone_is_service_gone_and_the_encoder_comes_back_with_it(rig, pcscd):
    encoder, link = rig
    assert encoder.status().connected
    pcscd.kill()
    assert not encoder.status().connected
    link.present(SimChipCard())                 # the link keeps trying to reach vpcd meanwhile
    started = time.monotonic()
    encode_expecting(encoder, "service_gone")
    assert time.monotonic() - started < 0.5     # no waiting for a service that is not there
    pcscd.start()
    assert encoder.status().connected           # a new PC/SC context, without a new encoder
    card = SimChipCard()
    link.present(card)
    assert encoder.encode(FILES) == card.uid_hex


def test_pcscd_killed_mid_write_is_service_gone_and_the_parked_card_is_presented_again(rig, pcscd):
    encoder, link = rig
    card = SimChipCard()
    answer = card.transmit

    def dies_at_the_second_write(apdu: bytes) -> bytes:
        if apdu[1] == 0xD6 and apdu[2:4] != b"\x00\x00":
            card.transmit = answer
            pcscd.kill()
        return answer(apdu)

    card.transmit = dies_at_the_second_write
    link.present(card)
    encode_expecting(encoder, "service_gone")
    assert not encoder.status().connected
    pcscd.start()
    # The card never left the station: once vpcd listens again the link puts it back on the reader, and
    # for a new pcscd it is a new insertion, so the encoder reaches it; its chip holds the files created
    # before pcscd died, so it is no blank any more and is refused (the daemon would have rejected it).
    error = encode_expecting(encoder, "wrong_card")
    assert "not blank" in str(error) and set(card.files) == set(FILES)


def test_no_reader_is_reader_gone_until_the_reader_appears(rig, pcscd):
    encoder, link = rig
    pcscd.ensure(reader=False)
    status = encoder.status()
    assert not status.connected and status.reader == ""
    encode_expecting(encoder, "reader_gone")
    pcscd.ensure(reader=True)                   # plugged in (for vpcd: pcscd started with it)
    assert encoder.status().reader == READER
    card = SimChipCard()
    link.present(card)
    assert encoder.encode(FILES) == card.uid_hex


def test_the_link_is_connected_only_while_a_card_is_parked(rig):
    encoder, link = rig
    assert not link.connected
    link.present(SimChipCard())
    encoder.channel.wait_for_card(5.0)           # pcscd saw the card: the link is connected
    assert link.connected
    encoder.channel.release()
    link.withdraw()
    assert not link.connected
