"""Replies real firmware sends (issue 15, deliverable 1): bare fault texts, unknown sensors, the guide's ERR CARD."""

from __future__ import annotations

import logging

import pytest

from kartud.hw.printer import PrinterFault
from kartud.hw.printer import protocol as p
from kartud.hw.printer import replies
from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings
from kartud.hw.sim.firmware import PROFILES
from card_faces import face_png
from printer_fixtures import link, read_cards

FRONT = face_png()


@pytest.mark.parametrize("command, reply, code", [("Sic", "FEEDER EMPTY", "feeder_empty"),
                                                  ("Si", "COVER OPEN", "cover_open"),
                                                  ("Sic", "NEED CLEANING", "cleaning_required")])
def test_a_fault_text_without_err_is_the_fault_it_names(command, reply, code):
    with pytest.raises(PrinterFault) as refused:
        p.check_ok(command, reply)
    assert refused.value.code == code and not isinstance(refused.value, p.ProtocolError)


def test_values_stay_values_and_unknown_is_not_a_fault():
    for value in ("OK", "CARD", "NO CARD", "CONTACTLESS CARD", "5,00 Volts", "299", "ERROR CDE", "ERR PARAMETRES"):
        assert replies.fault_named(value) is None, value
    assert p.parse_card_position("ERR CARD") == "inside"           # E1 p.34: a card is present, not a jam


def test_every_line_of_the_table_is_in_docs_printer_md_with_its_source():
    import pathlib
    doc = (pathlib.Path(__file__).parent.parent / "docs" / "printer.md").read_text()
    for text, fault, source in replies.REPLY_TABLE:
        assert f"| `{text}` | `{fault}` | {source} |" in doc, text


@pytest.mark.parametrize("kind", ("serial", "usb"))
@pytest.mark.parametrize("fault, contactless", [("feeder_empty", True), ("cover_open", False)])
def test_sic_and_si_answered_without_err_refuse_with_the_fault(kind, fault, contactless, tmp_path, manual_clock):
    with link(kind, tmp_path, manual_clock, sim_settings=SimSettings(firmware_profile="dll")) as joined:
        printer, sim = joined.printer, joined.sim
        sim.inject(fault)
        assert sim.feed(p.insert_card()).strip() == FAULT_TEXTS[fault].encode()   # the bare text on the wire
        with pytest.raises(PrinterFault) as refused:
            printer.insert_card(contactless)
        assert refused.value.code == fault
        status = printer.status()
        assert status.connected and fault in status.faults and "printer_disconnected" not in status.faults


FAULT_TEXTS = {"feeder_empty": "FEEDER EMPTY", "cover_open": "COVER OPEN"}


def test_need_cleaning_without_err_is_reported(tmp_path, manual_clock):
    with link("usb", tmp_path, manual_clock, sim_settings=SimSettings(firmware_profile="dll")) as joined:
        joined.sim.inject("cleaning_required")
        assert joined.sim.feed(p.read("Rlr", "c")) == b"NEED CLEANING\r"     # the VB sample's read
        assert joined.printer.status().faults == ("cleaning_required",)


def test_a_printer_without_a_feeder_sensor_is_learnt_once_and_stays_connected(tmp_path, manual_clock, caplog):
    caplog.set_level(logging.INFO, logger="kartud.printer")
    with link("serial", tmp_path, manual_clock, sim_settings=SimSettings(firmware_profile="guide2003")) as joined:
        printer, sim = joined.printer, joined.sim
        assert sim.feed(p.read("Rse", "f")) == b"ERR PARAMETRES\r"
        for _ in range(3):
            status = printer.status()
            assert status.connected and status.faults == (), status
        joined.unplug()
        assert not printer.status().connected
        joined.replug()
        assert printer.status().connected                                  # connected again: learnt, not re-logged
        sim.inject("cover_open")
        assert printer.status().faults == ("cover_open",)                  # Rse;o the guide does list
    assert caplog.text.count("this printer has no feeder sensor") == 1


def test_rlr_p_err_card_is_a_card_inside_not_a_jam(tmp_path, manual_clock):
    with link("usb", tmp_path, manual_clock, sim_settings=SimSettings(firmware_profile="guide2003")) as joined:
        printer, sim = joined.printer, joined.sim
        printer.insert_card(True)
        assert sim.feed(p.read("Rlr", "p")) == b"ERR CARD\r"
        status = printer.status()
        assert status.connected and status.card_inside and "card_jam" not in status.faults
        printer.print_card(FRONT, None)
        printer.eject()
        assert not printer.status().card_inside
    assert [c["destination"] for c in read_cards(tmp_path)] == ["output"]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profile_answers_a_whole_card(name, manual_clock):
    sim = EvolisSim(manual_clock, None, SimSettings(firmware_profile=name))
    assert sim.feed(p.insert_contactless()) == b"OK\r"
    inside = sim.feed(p.read("Rlr", "p")).strip().decode()
    assert p.parse_card_position(inside) in ("contactless", "inside")
    assert sim.feed(p.end_sequence()) == b"OK\r"


def test_an_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown firmware profile"):
        SimSettings(firmware_profile="nope")
