"""The simulated chip at the contactless station: vpcd's wire protocol, chip faults armed in the simulator, its control socket."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys

import pytest

from kartud.hw.encoder import EncodeError, Encoder
from kartud.hw.printer import protocol
from kartud.hw.sim.card import CONTACTLESS_ATR, SW_OK, SW_SECURITY, CardLeftField, SimChipCard
from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings
from kartud.hw.sim.sim_control import ControlServer, send_command
from kartud.hw.sim.station import SimStationChannel
from kartud.hw.sim.vpcd_link import VpcdLink, parse_address

UPDATE = bytes([0x00, 0xD6, 0x00, 0x00, 0x01, 0x41])
CREATE = bytes.fromhex("00E000000D 620B 820101 83020101 80020001")   # a 1-byte EF 0101, selected once made


class FakeVpcd:
    """vpcd's side of the wire, played by the test: accepts the card's connection and sends it messages."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(5)

    def send(self, payload: bytes) -> None:
        self.conn.sendall(struct.pack(">H", len(payload)))    # vpcd writes the length and the payload apart
        self.conn.sendall(payload)

    def receive(self) -> bytes:
        (length,) = struct.unpack(">H", self._exactly(2))
        return self._exactly(length)

    def closed_by_card(self) -> bool:
        return self.conn.recv(1) == b""

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.conn.recv(count - len(data))
            assert chunk, "the card hung up"
            data += chunk
        return data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


@pytest.fixture
def vpcd():
    server = FakeVpcd()
    yield server
    server.close()


def test_the_link_speaks_vpcd_while_a_card_is_parked_and_hangs_up_when_it_leaves(vpcd):
    card = SimChipCard(uid=bytes.fromhex("04A1B2C3D4E5F6"))
    link = VpcdLink("127.0.0.1", vpcd.port)
    try:
        link(card)                                  # the printer parked the card: put it on the reader
        vpcd.accept()
        vpcd.send(b"\x04")                          # send the ATR
        assert vpcd.receive() == CONTACTLESS_ATR
        vpcd.send(b"\x01")                          # power on: no answer, the next message is answered next
        vpcd.send(bytes.fromhex("FFCA000000"))
        assert vpcd.receive() == bytes.fromhex("04A1B2C3D4E5F6") + SW_OK
        vpcd.send(CREATE)
        assert vpcd.receive() == SW_OK
        vpcd.send(b"\x00")                          # power off: the selection is gone, the files stay
        vpcd.send(UPDATE)
        assert vpcd.receive() == bytes.fromhex("6986")
        link(None)                                  # the card moved on: taken off the reader
        assert vpcd.closed_by_card()
        assert not link.connected
    finally:
        link.close()


def test_the_link_presents_a_parked_card_again_when_vpcd_drops_it(vpcd):
    link = VpcdLink("127.0.0.1", vpcd.port)
    try:
        link.present(SimChipCard())
        vpcd.accept()
        vpcd.conn.close()                           # pcscd restarted: vpcd's end of the connection is gone
        vpcd.accept()                               # the card is still parked, so it comes back
        vpcd.send(b"\x04")
        assert vpcd.receive() == CONTACTLESS_ATR
    finally:
        link.close()


def test_a_card_leaving_the_field_mid_command_hangs_up_without_an_answer_and_stays_away(vpcd):
    card = SimChipCard()
    card.leave_field_at_write = 1
    link = VpcdLink("127.0.0.1", vpcd.port)
    try:
        link.present(card)
        vpcd.accept()
        vpcd.send(CREATE)
        assert vpcd.receive() == SW_OK
        vpcd.send(UPDATE)
        assert vpcd.closed_by_card()
        with pytest.raises(socket.timeout):
            vpcd.listener.settimeout(0.3)           # bounded: proves the absence of a second connection
            vpcd.listener.accept()
    finally:
        link.close()
    assert card.left_field
    with pytest.raises(CardLeftField):
        card.transmit(bytes.fromhex("FFCA000000"))


@pytest.mark.parametrize("text, expected", [("127.0.0.1:35963", ("127.0.0.1", 35963)),
                                            ("localhost:1", ("localhost", 1)), ("[::1]:40000", ("::1", 40000))])
def test_vpcd_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["35963", "host:", ":35963", "host:0", "host:65536", "host:port"])
def test_vpcd_address_refused(text):
    with pytest.raises(ValueError):
        parse_address(text)


def test_kartud_sim_printer_refuses_a_bad_vpcd_address(tmp_path):
    result = subprocess.run([sys.executable, "-m", "kartud.room.cli", "printer", "--pty", str(tmp_path / "tty"),
                             "--vpcd", "nowhere"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "HOST:PORT" in result.stderr


# -- chip faults armed in the simulated printer --------------------------------------------------------


@pytest.fixture
def parked_sim(manual_clock) -> EvolisSim:
    return EvolisSim(manual_clock, None, SimSettings(seconds_per_card=0.0))


def park(sim: EvolisSim) -> SimChipCard:
    assert sim.feed(protocol.encode("Sic")) == b"OK\r"
    return sim.card_at_station()


def test_an_armed_chip_write_refusal_hits_the_next_card_only(parked_sim):
    sim = parked_sim
    seen = []
    sim.station_listeners.append(lambda card: seen.append(card and card.fail_writes))
    sim.arm("encode", "chip_write_refused")
    first = park(sim)
    assert first.transmit(CREATE) == SW_SECURITY  # the first write command: the chip stays blank
    assert seen == [1]                          # armed before any listener (a vpcd link) saw the card
    assert sim.feed(protocol.encode("Ser")) == b"OK\r"
    second = park(sim)
    assert second.transmit(CREATE) == SW_OK
    assert second.transmit(UPDATE) == SW_OK


def test_a_chip_leaving_the_field_fails_the_in_process_encode_as_no_card(parked_sim):
    sim = parked_sim
    sim.arm("encode", "chip_leaves_field")
    card = park(sim)
    with pytest.raises(EncodeError) as caught:
        Encoder(SimStationChannel(sim)).encode({0x0101: b"data"})
    assert caught.value.kind == "no_card" and bytes(card.files[0x0101]) == bytes(4)   # created, never written


def test_a_chip_fault_cleared_before_the_encode_does_not_happen(parked_sim):
    sim = parked_sim
    sim.arm("encode", "chip_write_refused")
    card = park(sim)
    sim.clear("chip_write_refused")
    assert Encoder(SimStationChannel(sim)).encode({0x0101: b"data"}) == card.uid_hex


def test_the_control_socket_arms_injects_and_says_what_it_did_not_understand(tmp_path, parked_sim):
    sim = parked_sim
    path = str(tmp_path / "control.sock")
    server = ControlServer(sim, path)
    try:
        assert send_command(path, "arm encode chip_write_refused") == "ok"
        assert sim.armed == {"encode": "chip_write_refused"}
        assert send_command(path, "inject cover_open") == "ok" and sim.cover_open
        assert send_command(path, "clear cover_open") == "ok" and not sim.cover_open
        assert send_command(path, "arm nowhere card_jam").startswith("error: step must be one of")
        assert send_command(path, "inject no_such_fault").startswith("error: no such fault")
        assert send_command(path, "print a card").startswith("error: commands:")
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    finally:
        server.close()
    assert not os.path.exists(path)
