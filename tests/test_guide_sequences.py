"""Issue 15's "Sequences differ": the simulator refuses the old sequences as the guide does; the driver's pass."""

from __future__ import annotations

import logging

import pytest

from kartud.hw.printer import PrinterFault
from kartud.hw.printer import protocol as p
from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings
from card_faces import face_png
from printer_fixtures import link, read_cards

FRONT = face_png()
SIZE = 648 * 1016 // 8
COLOUR = 648 * 1016 * 6 // 8


def old_card(ribbon_first: bool = False) -> list[bytes]:
    """The sequence kartud sent before issue 15: a separate Sic with the card parked, then Pr and Ss, the
    overlay as Wcb;o;255 between Ss and Se (``ribbon_first``: with Pem;2 set first, as its setup did)."""
    frames = [p.set_error_mode(2)] if ribbon_first else []
    frames += [p.insert_contactless(), p.set_ribbon("ymcko"), p.start_sequence(), p.front_side()]
    frames += [p.download_panel(panel, 6, b"\x00" * COLOUR) for panel in "ymc"]
    return frames + [p.download_panel("k", 1, b"\x00" * SIZE), p.fill_panel("o", 255)]


def answers(sim: EvolisSim, frames: list[bytes]) -> list[str]:
    return [sim.feed(frame).decode().strip() for frame in frames]


def test_the_guide_refuses_the_old_overlay_under_pem_0_and_its_printers_refuse_pem_2(manual_clock):
    sim = EvolisSim(manual_clock, None, SimSettings(firmware_profile="guide2003"))
    replies = answers(sim, old_card(ribbon_first=True))
    assert replies[0] == p.BAD_PARAMETERS                      # Pem;2: the old setup only logged this
    assert replies[1:-1] == ["OK"] * (len(replies) - 2)
    assert replies[-1] == p.BAD_PARAMETERS                     # Wcb;o;255 between Ss and Se under Pem;0
    assert sim.parameters["Pem"] == ["0"]


def test_a_ribbon_type_set_after_the_feed_is_for_the_next_card(manual_clock):
    # The printer was left set to a black-only ribbon type; the old order fed the card before Pr.
    sim = EvolisSim(manual_clock, None, SimSettings(ribbon_setting="ko"))
    replies = answers(sim, old_card(ribbon_first=True))
    assert replies[:4] == ["OK"] * 4 and replies[5] == "ERR RIBBON TYPE"     # Db;y on a card fed under "ko"
    assert p.fault_for_error(replies[5]) == "no_ribbon"


@pytest.mark.parametrize("ribbon_setting", ["ymcko", "ko"])
def test_the_driver_sets_the_ribbon_before_the_sequence_and_the_card_leaves_fully_printed(
        ribbon_setting, tmp_path, manual_clock, firmware):
    settings = SimSettings(ribbon_setting=ribbon_setting)
    with link("usb", tmp_path, manual_clock, sim_settings=settings, firmware=firmware) as joined:
        printer = joined.printer
        printer.insert_card(True)
        assert joined.sim.sequence_open and joined.sim.card_ribbon == "ymcko"    # Pr, Ss, then Sic
        printer.print_card(FRONT, None)
        printer.eject()
    cards = read_cards(tmp_path)
    assert [card["destination"] for card in cards] == ["output"]
    assert cards[0]["panels"] == ["y", "m", "c", "k", "o"]                       # the overlay went down as Db;o
    assert (tmp_path / "cards" / "1-front.png").exists()


def test_the_overlay_is_a_download_on_the_guides_printer_even_without_pem_2(tmp_path, manual_clock, caplog):
    caplog.set_level(logging.WARNING, logger="kartud.printer")
    with link("usb", tmp_path, manual_clock, firmware="guide2003") as joined:
        for _ in range(2):
            joined.printer.insert_card(True)
            joined.printer.print_card(FRONT, None)
            joined.printer.eject()
        assert joined.sim.parameters["Pem"] == ["0"]
        assert joined.sim.last_front["o"][1] == b"\xff" * SIZE                  # varnish everywhere
    assert [card["destination"] for card in read_cards(tmp_path)] == ["output", "output"]
    refusals = [r for r in caplog.records if "Pem;2" in r.getMessage()]
    assert len(refusals) == 1                                                   # asked once, logged once


@pytest.mark.parametrize("own_mode", ["0", "1", "3"])
def test_the_printers_own_error_mode_is_put_back_after_each_card(own_mode, tmp_path, manual_clock):
    with link("serial", tmp_path, manual_clock) as joined:
        joined.sim.parameters["Pem"] = [own_mode]
        printer = joined.printer
        assert printer.status().connected
        printer.insert_card(True)
        assert joined.sim.parameters["Pem"] == ["2"]                            # the card runs under Pem;2
        printer.print_card(FRONT, None)
        printer.eject()
        assert joined.sim.parameters["Pem"] == [own_mode]
        printer.insert_card(False)
        assert joined.sim.parameters["Pem"] == ["2"]
        printer.reject()                                                        # a rejected card too
        assert joined.sim.parameters["Pem"] == [own_mode]
    assert [card["destination"] for card in read_cards(tmp_path)] == ["output", "reject"]


def test_closing_mid_card_puts_the_printers_mode_back(tmp_path, manual_clock):
    with link("usb", tmp_path, manual_clock) as joined:
        joined.printer.insert_card(True)
        assert joined.sim.parameters["Pem"] == ["2"]
        joined.printer.close()
        assert joined.sim.parameters["Pem"] == ["0"]


def test_cleaning_is_read_as_the_vb_sample_reads_it(tmp_path, manual_clock):
    # The VB sample's printer (dll profile) knows Rlr;c, not Rlr;r: the old Rlr;r read never saw cleaning due.
    with link("usb", tmp_path, manual_clock, sim_settings=SimSettings(cleaning_every=3), firmware="dll") as joined:
        assert joined.sim.feed(p.read("Rlr", "r")) == b"ERR PARAMETRES\r"
        printer = joined.printer
        assert printer.status().cards_until_cleaning == 3
        for _ in range(3):
            printer.insert_card(False)
            printer.print_card(FRONT, None)
            printer.eject()
        status = printer.status()
        assert status.faults == ("cleaning_required",) and status.cards_until_cleaning == 0


def test_the_guides_printer_is_read_with_rlr_r(tmp_path, manual_clock):
    with link("usb", tmp_path, manual_clock, firmware="guide2003") as joined:
        joined.sim.inject("cleaning_required")
        status = joined.printer.status()
        assert status.faults == ("cleaning_required",)
        assert status.cards_until_cleaning is None                              # Rev E's Rco has no r


def test_the_cleaning_cycle_runs_and_only_the_printers_word_says_it_is_done(tmp_path, manual_clock, firmware):
    with link("usb", tmp_path, manual_clock, firmware=firmware) as joined:
        joined.sim.inject("cleaning_required")
        printer = joined.printer
        assert "cleaning_required" in printer.status().faults
        assert printer.clean() is True
        assert joined.sim.counters["cleanings"] == 1 and joined.sim.cards_since_cleaning == 0
        assert "cleaning_required" not in printer.status().faults
        assert printer.status().counters["cleanings"] == 1


def test_a_cleaning_cycle_the_printer_does_not_confirm_is_not_done(tmp_path, manual_clock):
    with link("usb", tmp_path, manual_clock, firmware="dll") as joined:
        joined.sim.inject("cleaning_required")
        assert joined.printer.status().connected
        # Scp answers OK; the read back (Rlr;c) says cleaning is still needed.
        joined.sim.reply_overrides.extend([b"OK\r", b"NEED CLEANING\r"])
        assert joined.printer.clean() is False


def test_what_the_printer_says_about_itself(tmp_path, manual_clock, firmware):
    with link("serial", tmp_path, manual_clock, firmware=firmware) as joined:
        printer = joined.printer
        printer.insert_card(True)
        printer.print_card(FRONT, None)
        printer.eject()
        info = printer.status().as_dict()
    assert info["connected"] is True and info["model"].startswith("Evolis") and info["serial"] == "SIM0001"
    assert info["firmware"] == "kartud-sim 1.0" and info["ribbon_type"] == "YMCKO"
    assert info["counters"] == {"panels_printed": 5, "cards_inserted": 1, "cleanings": 0}
    if firmware == "guide2003":                    # no Rrt and no Rco;r on the 2003 guide's printers
        assert info["ribbon_remaining"] is None and info["cards_until_cleaning"] is None
    else:
        assert info["ribbon_remaining"] == 299 and info["cards_until_cleaning"] == 999


def test_a_refused_feed_puts_the_printers_mode_back(tmp_path, manual_clock, firmware):
    with link("usb", tmp_path, manual_clock, sim_settings=SimSettings(feeder_cards=0), firmware=firmware) as joined:
        with pytest.raises(PrinterFault) as refused:
            joined.printer.insert_card(True)
        assert refused.value.code == "feeder_empty"
        assert joined.sim.parameters["Pem"] == ["0"] and joined.sim.position is None


def test_the_connect_log_names_the_printer_and_its_ribbon(tmp_path, manual_clock, caplog):
    caplog.set_level(logging.INFO, logger="kartud.printer")
    with link("usb", tmp_path, manual_clock) as joined:
        joined.printer.status()
    connected = [r.getMessage() for r in caplog.records if r.getMessage().startswith("printer connected")]
    assert len(connected) == 1 and "serial SIM0001, firmware kartud-sim 1.0, ribbon YMCKO" in connected[0]
