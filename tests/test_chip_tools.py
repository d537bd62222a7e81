"""Third-party PC/SC tools (opensc-tool, pcsc_scan) see the simulated chip through pcscd and vpcd as a blank ISO 14443-4 card."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest
from smartcard import scard

from kartud.hw.encoder import Encoder
from kartud.hw.pcsc import PcscChannel
from kartud.hw.sim.card import SimChipCard
from kartud.hw.sim.vpcd_link import VpcdLink

from pcsc_fixtures import READER

MIFARE_CLASSIC_1K_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")    # the chip's ATR before
SMARTCARD_LIST = "/usr/share/pcsc/smartcard_list.txt"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.skipif(not (shutil.which("opensc-tool") and shutil.which("pcsc_scan")),
                                reason="opensc and pcsc-tools are not installed (scripts/bootstrap installs them)")


@pytest.fixture
def reader(pcscd, tmp_path):
    """Put a card on the private pcscd's vpcd reader: ``reader(card)``; returns the tools' environment."""
    link = VpcdLink("127.0.0.1", pcscd.port)
    # pcsc_scan's ATR analysis looks cards up in $XDG_CACHE_HOME/smartcard_list.txt, downloading it when
    # missing or older than 10 hours: a fresh copy of the installed list keeps it offline.
    shutil.copy(SMARTCARD_LIST, tmp_path / "smartcard_list.txt")
    env = {**os.environ, **pcscd.env, "XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)}

    def put(card: SimChipCard) -> dict:
        link.withdraw()
        _wait_for_reader(None)                   # the card before is gone for pcscd too
        link.present(card)
        _wait_for_reader(card.atr)
        return env

    yield put
    link.close()
    _wait_for_reader(None)


def _wait_for_reader(atr: bytes | None, timeout_s: float = 5.0) -> None:
    """Wait on pcscd's reader state until it shows a card with ``atr``, or (None) no card."""
    hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hr == scard.SCARD_S_SUCCESS
    try:
        deadline, known = time.monotonic() + timeout_s, scard.SCARD_STATE_UNAWARE
        while True:
            wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            hr, states = scard.SCardGetStatusChange(context, wait_ms, [(READER, known)])
            assert hr == scard.SCARD_S_SUCCESS, f"pcscd did not show {atr and atr.hex()} in {timeout_s} s"
            _, event, shown = states[0]
            present = bool(event & scard.SCARD_STATE_PRESENT)
            if (atr is None and not present) or (present and bytes(shown) == atr):
                return
            known = event & ~scard.SCARD_STATE_CHANGED
    finally:
        scard.SCardReleaseContext(context)


def run(env: dict, *command: str, timeout: float = 20.0) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return ANSI.sub("", done.stdout)


def answers(output: str) -> list[str]:
    """opensc-tool -s's answers, one per APDU: ``6A82``, ``9000 <data hex>``."""
    found = re.findall(r"Received \(SW1=0x([0-9A-F]{2}), SW2=0x([0-9A-F]{2})\):?\n((?:[0-9A-F]{2} )*)", output)
    return [(sw1 + sw2 + " " + data.replace(" ", "")).strip() for sw1, sw2, data in found]


def test_opensc_tool_reads_an_iso_14443_4_atr_and_6a82_for_files_a_blank_does_not_hold(reader):
    card = SimChipCard()
    env = reader(card)
    assert run(env, "opensc-tool", "-r", READER, "--atr").strip() == "3b:88:80:01:80:73:10:21:00:82:90:00:d9"
    output = run(env, "opensc-tool", "-r", READER, "-s", "00 A4 02 0C 02 01 01", "-s", "00 A4 00 0C 02 01 02",
                 "-s", "00 A4 04 00 07 A0 00 00 02 47 10 01", "-s", "FF CA 00 00 00")
    assert answers(output) == ["6A82", "6A82", "6A82", "9000 " + card.uid_hex]
    assert card.files == {}                                  # asking made nothing


def test_what_the_encoder_created_is_what_opensc_tool_reads_back(reader):
    card = SimChipCard()
    env = reader(card)
    channel = PcscChannel(READER)
    try:
        Encoder(channel, timeout_s=5.0, chip_capacity=8192).encode({0x0101: b"CONTOH", 0x0102: bytes(300)})
    finally:
        channel.close()
    output = run(env, "opensc-tool", "-r", READER, "-s", "00 A4 02 04 02 01 01", "-s", "00 B0 00 00 06",
                 "-s", "00 A4 02 0C 02 01 03")
    assert answers(output) == ["9000 620B800200068201018302" + "0101", "9000 " + b"CONTOH".hex().upper(), "6A82"]


def _pcsc_scan(env: dict) -> str:
    """pcsc_scan for about a second: the readers, their cards' ATRs, pcsc-tools' analysis and identification."""
    return run(env, "pcsc_scan", "-t", "1")


def test_pcsc_scan_took_the_old_chip_for_a_mifare_classic_and_sees_an_iso_card_now(reader):
    old = SimChipCard()
    old.atr = MIFARE_CLASSIC_1K_ATR
    assert "MIFARE Classic 1K" in _pcsc_scan(reader(old))      # the finding, as the tool saw it
    output = _pcsc_scan(reader(SimChipCard()))
    assert "ATR: 3B 88 80 01 80 73 10 21 00 82 90 00 D9" in output
    assert "Protocol T = 1" in output and "Category indicator byte: 80 (compact TLV data object)" in output
    assert "DF selection by file identifier" in output and "TCK = D9 (correct checksum)" in output
    assert "MIFARE" not in output.upper() and "Your card is not present in the database." in output
