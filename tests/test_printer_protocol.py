"""The escape-command protocol: frames, replies, fault mapping, the printer-side parser and the simulator's answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from kartud.hw.printer import FAULT_CODES, PrinterFault
from kartud.hw.printer import protocol as p
from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings
from kartud.hw.sim.firmware import PROFILES

ESC, CR = b"\x1b", b"\r"


@pytest.mark.parametrize("frame, wire", [
    (p.start_sequence(), b"Ss"), (p.end_sequence(), b"Se"), (p.front_side(), b"Sr"), (p.back_side(), b"Sv"),
    (p.insert_card(), b"Si"), (p.insert_contactless(), b"Sic"), (p.reject_card(), b"Ser"),
    (p.clean_printer(), b"Scp"), (p.reset_printer(), b"Srs"), (p.set_ribbon("ymcko"), b"Pr;ymcko"),
    (p.set_error_mode(2), b"Pem;2"), (p.fill_panel("o", 255), b"Wcb;o;255"), (p.set_contrast("k", 10), b"Pc;k;=;10"),
    (p.read("Rfv"), b"Rfv"), (p.read("Rsn"), b"Rsn"), (p.read("Rtp"), b"Rtp"), (p.read("Rco", "c"), b"Rco;c"),
    (p.read("Rrt", "count"), b"Rrt;count"), (p.read("Rlr", "p"), b"Rlr;p"), (p.read("Rse", "f"), b"Rse;f"),
    (p.raw_command("Pcim;F"), b"Pcim;F"),
])
def test_each_command_is_framed_esc_text_cr(frame, wire):
    assert frame == ESC + wire + CR


@pytest.mark.parametrize("bits, levels", [(1, 2), (5, 32), (6, 64), (7, 128), (8, 256)])
def test_a_panel_download_carries_its_levels_and_raw_payload(bits, levels):
    payload = bytes([0x0D, 0x1B, 0x00, 0x3B, 0xFF])
    assert p.download_panel("c", bits, payload) == ESC + f"Db;c;{levels};".encode() + payload + CR


@pytest.mark.parametrize("bad", ["Pr\r", "S\x1bs", "Rfv\x00", "Pr;é"])
def test_text_that_would_break_the_framing_is_refused(bad):
    with pytest.raises(ValueError):
        p.encode(*bad.split(";"))


def test_read_builders_only_build_reads():
    with pytest.raises(ValueError):
        p.read("Se")


@pytest.mark.parametrize("reply, code", [
    ("ERR FEEDER EMPTY", "feeder_empty"), ("FEEDER EMPTY", "feeder_empty"), ("ERR COVER OPEN", "cover_open"),
    ("COVER OPEN", "cover_open"), ("ERR NO RIBBON", "no_ribbon"), ("ERR RIB DETECTION", "no_ribbon"),
    ("ERR RIBBON", "no_ribbon"), ("ERR RIBBON ENDED", "ribbon_ended"), ("ERR MECHANICAL", "card_jam"),
    ("ERROR TIME OUT", "card_jam"), ("ERR CARD", "card_jam"), ("ERR REJECT BOX FULL", "reject_box_full"),
    ("ERR HOPPER FULL", "hopper_full"), ("ERR HEAD TEMP", "head_cooling"), ("ERR COOLING", "head_cooling"),
    ("ERR NEED CLEANING", "cleaning_required"), ("ERR SOMETHING NEW", "card_jam"),
])
def test_error_replies_map_to_the_contract_fault_codes(reply, code):
    assert p.fault_for_error(reply) == code


def test_the_simulators_error_texts_map_back_to_their_faults():
    assert {p.fault_for_error(text): code for code, text in p.FAULT_REPLIES.items()} == \
        {code: code for code in p.FAULT_REPLIES}
    assert set(p.FAULT_REPLIES) == set(FAULT_CODES) - {"printer_disconnected"}


def test_check_ok_tells_a_refusal_from_a_protocol_problem():
    p.check_ok("Se", "OK")
    with pytest.raises(PrinterFault) as refused:
        p.check_ok("Sic", "ERR FEEDER EMPTY")
    assert refused.value.code == "feeder_empty" and not isinstance(refused.value, p.ProtocolError)
    for reply, words in (("ERROR CDE", "does not know"), ("5,00 Volts", "unexpected reply")):
        with pytest.raises(p.ProtocolError, match=words) as problem:
            p.check_ok("Sic", reply)
        assert problem.value.code == "printer_disconnected"


@pytest.mark.parametrize("raw, text", [(b"OK", "OK"), (b"\x00\x00OK\r", "OK"), (b"  5,00 Volts ", "5,00 Volts")])
def test_replies_are_trimmed_of_padding(raw, text):
    assert p.decode_reply(raw, "Rse;f") == text


@pytest.mark.parametrize("raw, words", [(b"", "empty"), (b"\r\x00", "empty"), (b"O\xffK", "garbled"),
                                        (b"O\x07K", "garbled")])
def test_empty_or_garbled_replies_are_protocol_errors(raw, words):
    with pytest.raises(p.ProtocolError, match=words):
        p.decode_reply(raw, "Rfv")


@pytest.mark.parametrize("reply, volts", [("0,00 Volts", 0.0), ("4,98 Volts", 4.98), ("5.00 V", 5.0), ("3", 3.0)])
def test_sensor_voltages_use_a_decimal_comma(reply, volts):
    assert p.parse_volts(reply) == volts


@pytest.mark.parametrize("parse, reply", [(p.parse_volts, "hot"), (lambda r: p.parse_count(r, "Rrt;count"), "-1"),
                                          (p.parse_card_position, "MAYBE CARD")])
def test_values_that_are_not_what_a_read_answers_are_protocol_errors(parse, reply):
    with pytest.raises(p.ProtocolError):
        parse(reply)


@pytest.mark.parametrize("reply, position", [("OK", None), ("NO CARD", None), ("CARD", "print"),
                                             ("CONTACTLESS CARD", "contactless"), ("SMART CARD", "smart"),
                                             ("ERR CARD", "inside")])
def test_card_positions(reply, position):
    assert p.parse_card_position(reply) == position


def test_status_words_round_trip_and_name_their_faults():
    words = p.StatusWords(config=0x80000000, information=0x08040000, warning=0x08200000, error=0x01000000)
    assert words.format() == "80000000;08040000;08200000;01000000"
    assert p.StatusWords.parse(words.format()) == words
    assert words.faults() == {"reject_box_full", "head_cooling", "card_jam", "cleaning_required"}
    assert words.card_position() == "contactless"
    assert p.StatusWords(information=0x20000000).card_position() is None   # cards in the feeder are not inside
    for bad in ("1;2;3", "zz;0;0;0", "123456789;0;0;0"):
        with pytest.raises(p.ProtocolError):
            p.StatusWords.parse(bad)


# -- the printer's side: cutting bytes into commands ------------------------------------------------

def _parser(size: int = 10) -> p.FrameParser:
    return p.FrameParser(lambda command: size if command.params[1] == "2" else None)


def test_the_parser_skips_nul_padding_and_takes_commands_without_esc_after_a_cr():
    parsed = _parser().feed(b"\x00\x00\x1bSs\r\x00\x00Sr\r\x1bRlr;p\r" + b"\x00" * 64, 0.0)
    assert [(c.name, c.params) for c in parsed] == [("Ss", []), ("Sr", []), ("Rlr", ["p"])]


def test_a_download_payload_may_hold_cr_esc_and_semicolons():
    payload = b"\r\x1b;\x00\rDb;k\r\xff\x00"
    parsed = _parser(len(payload)).feed(p.download_panel("k", 1, payload) + p.end_sequence(), 0.0)
    assert [(c.name, c.params, c.payload) for c in parsed] == [("Db", ["k", "2"], payload), ("Se", [], None)]
    assert str(parsed[0]) == f"Db;k;2;<{len(payload)} bytes>"   # a payload is never printed or logged


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(min_size=10, max_size=10), cuts=st.lists(st.integers(0, 40), max_size=6))
def test_a_stream_cut_anywhere_parses_the_same(payload, cuts):
    stream = p.start_sequence() + p.download_panel("k", 1, payload) + p.read("Rlr", "p") + p.end_sequence()
    parser, parsed, start = _parser(), [], 0
    for cut in sorted(set(cuts)) + [len(stream)]:
        parsed += parser.feed(stream[start:cut], 0.0)
        start = max(start, cut)
    assert [(c.name, c.payload) for c in parsed] == [("Ss", None), ("Db", payload), ("Rlr", None), ("Se", None)]


def test_garbage_and_unsizable_downloads_are_reported_not_swallowed():
    parser = _parser()
    assert parser.feed(b"\x1bDb;k;3;", 0.0) == ["a download that cannot be sized: Db;k;3"]
    too_long = parser.feed(b"\x1b" + b"x" * 600, 0.0)
    assert too_long == ["a command longer than 512 bytes without CR"]
    assert parser.feed(b"xxx\r", 0.0) == []                 # the rest of the overlong frame, up to its CR
    assert parser.feed(b"\xff\xfe\r", 0.0) == ["a frame of 2 bytes that is not text"]


def test_a_frame_left_half_sent_is_dropped_after_a_pause():
    parser = _parser(10)
    assert parser.feed(b"\x1bDb;k;2;12345", 0.0) == [] and parser.mid_frame
    parsed = parser.feed(p.read("Rfv"), 10.0)             # the host died mid-download and came back
    assert [c.name for c in parsed] == ["Rfv"] and parser.dropped_frames == 1


# -- the simulator answers every command as documented ----------------------------------------------

ANSWERS = [
    ("Ss", "OK"), ("Sr", "OK"), ("Sv", "OK"), ("Srs", "OK"), ("Pr;ymcko", "OK"), ("Pc;k;=;10", "OK"),
    ("Pem;2", "OK"), ("Pcim;F", "OK"), ("Pcrm;D", "OK"), ("Wcb;o;255", "OK"), ("Wcb;x;255", "ERR PARAMETRES"),
    ("Rfv", "kartud-sim 1.0"), ("Rsn", "SIM0001"), ("Rtp", "Evolis Primacy (kartud simulator)"), ("Rem", "0,0"),
    ("Rco;p", "0"), ("Rco;c", "0"), ("Rco;n", "0"), ("Rco;m", "1000"), ("Rco;l", "300"), ("Rco;q", "ERR PARAMETRES"),
    ("Rr", "YMCKO"), ("Rrt;qty", "300"), ("Rrt;count", "300"), ("Rrt;zone", "0"),
    ("Rlr;p", "OK"), ("Rlr;r", "OK"), ("Rlr;h", "NO CARD"), ("Rlr", "ERR PARAMETRES"),
    ("Rse;f", "5,00 Volts"), ("Rse;o", "5,00 Volts"), ("Rse;b", "0,20 Volts"), ("Rse;n", "0,50 Volts"),
    ("Rst", "80000000;20000000;00000000;00000000"), ("Se", "ERR NO CARD"), ("Ser", "ERR NO CARD"),
    ("Scp", "OK"), ("Xyz", "ERROR CDE"), ("Sic", "OK"),
]


@pytest.mark.parametrize("command, answer", ANSWERS)
def test_the_simulator_answers_each_command(command, answer, manual_clock):
    sim = EvolisSim(manual_clock, None, SimSettings())
    assert sim.feed(p.raw_command(command)) == answer.encode() + b"\r"


def test_the_simulator_answers_a_whole_card_and_its_state_reads(manual_clock):
    sim = EvolisSim(manual_clock, None, SimSettings(feeder_cards=3))
    size = 648 * 1016 // 8
    script = [(p.insert_contactless(), "OK"), (p.read("Rlr", "p"), "CONTACTLESS CARD"),
              (p.read("Rst"), "80000000;28000000;00000000;00000000"), (p.start_sequence(), "OK"),
              (p.front_side(), "OK"), (p.download_panel("k", 1, b"\r" * size), "OK"), (p.read("Rlr", "p"), "CARD"),
              (p.download_panel("o", 1, b"\xff" * size), "OK"), (p.end_sequence(), "OK"), (p.read("Rlr", "p"), "OK"),
              (p.read("Rco", "p"), "2"), (p.read("Rco", "c"), "1"), (p.read("Rrt", "count"), "299")]
    for frame, answer in script:
        assert sim.feed(frame) == answer.encode() + b"\r", frame[:12]
    # The whole script at once, as a host that does not wait for answers would send it: the same answers.
    again = EvolisSim(manual_clock, None, SimSettings(feeder_cards=3))
    assert again.feed(b"".join(f for f, _ in script)) == b"".join(a.encode() + b"\r" for _, a in script)


@pytest.mark.parametrize("fault, read, answer", [
    ("feeder_empty", "Rse;f", "0,00 Volts"), ("cover_open", "Rse;o", "0,00 Volts"),
    ("no_ribbon", "Rrt;count", "ERR RIB DETECTION"), ("ribbon_ended", "Rrt;count", "0"),
    ("hopper_full", "Rlr;h", "CARD"), ("cleaning_required", "Rlr;r", "ERR NEED CLEANING"),
    ("reject_box_full", "Rst", "80000000;20000000;08000000;00000000"),
    ("head_cooling", "Rst", "80000000;20000000;00200000;00000000"),
    ("card_jam", "Rst", "80000000;20000000;00000000;01000000"),
])
def test_each_injected_fault_shows_in_the_reads_and_refuses_the_feed(fault, read, answer, manual_clock, firmware):
    sim = EvolisSim(manual_clock, None, SimSettings(firmware_profile=firmware))
    sim.inject(fault)
    if read == "Rlr;r" and "c" in PROFILES[firmware].last_replies:
        read = "Rlr;c"                                          # the VB sample's cleaning read
    if PROFILES[firmware].status_shows(fault):                  # else that firmware has no such read
        assert sim.feed(p.raw_command(read)) == PROFILES[firmware].reply(answer).encode() + b"\r"
    assert p.fault_for_error(sim.feed(p.insert_contactless()).decode().strip()) == fault
    sim.clear(fault)
    assert sim.feed(p.insert_contactless()) == b"OK\r"
