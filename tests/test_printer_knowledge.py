"""The printer's facts live in hw/printer/knowledge.py: the configuration, the driver and the simulator agree with it."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from kartud.hw.printer import knowledge as K
from kartud.hw.printer import protocol as p
from kartud.hw.printer.evolis import EvolisSettings
from kartud.hw.printer.panels import FACE_SIZES, PanelSettings
from kartud.hw.sim.evolis_sim import SimSettings
from kartud.rules import jobs
from kartud.rules.config import SCHEMA, ConfigError, from_dict


def test_the_configuration_the_driver_and_the_simulator_share_the_defaults():
    printer = SCHEMA["printer"]
    assert printer["setup_commands"].default == list(K.SETUP_COMMANDS) == ["Pcim;F", "Pcrm;D"]
    assert printer["status_command"].default == K.STATUS_COMMAND == EvolisSettings().status_command == \
        SimSettings().status_command == "Rst"
    assert EvolisSettings().setup_commands == K.SETUP_COMMANDS
    assert (printer["panel_width"].default, printer["panel_height"].default) == \
        (PanelSettings().width, PanelSettings().height) == (648, 1016)
    assert FACE_SIZES == K.FACE_SIZES == jobs.CARD_SIZES == ((1016, 648), (648, 1016))


def problem(key: str, value) -> str:
    try:
        from_dict({"station": {"id": "s-1"}, "printer": {key: value}})
    except ConfigError as error:
        [(where, what)] = error.problems
        assert where == f"printer.{key}"
        return what
    raise AssertionError("accepted")


def test_the_configuration_says_what_the_printer_knowledge_says():
    assert problem("setup_commands", ["Pem;2", "pcim"]) == K.command_problem("pcim")
    assert problem("status_command", "Pcim;F") == K.command_problem("Pcim;F", read=True)
    assert problem("panel_width", 1032) == K.panel_width_problem(1032)
    assert problem("overlay_no_varnish", [1000, 0, 20, 20]) == K.card_rectangle_problem([1000, 0, 20, 20]) == \
        "must be a non-empty rectangle inside the 1016x648 landscape card"


TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=";"), max_size=8)


@given(name=st.from_regex(r"[A-Z][a-z]{1,4}", fullmatch=True), params=st.lists(TEXT, max_size=3))
def test_a_command_the_grammar_accepts_is_one_frame_the_printer_reads_back(name, params):
    text = ";".join([name, *params])
    assert K.command_problem(text) is None
    assert (K.command_problem(text, read=True) is None) == name.startswith("R")
    if name in p.BINARY_AFTER:
        return                                  # a panel download: its last parameter is raw bytes
    [command] = p.FrameParser(lambda c: None).feed(p.raw_command(text), 0.0)
    assert (command.name, command.params) == (name, params)


def test_the_rules_load_the_printer_knowledge_without_pillow_or_a_device_library():
    code = ("import sys, kartud.rules.config, kartud.rules.jobs, kartud.rules.scheduler, kartud.rules.signing\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'PIL', 'usb', 'serial', 'smartcard', 'sqlite3',"
            " 'paho'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
