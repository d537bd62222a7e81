"""Every command and option of kartuctl and kartud is in --help and in the docs (sqlite-utils keeps its docs so)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from kartud.service.cli import main as kartud_main
from kartud.ctl.cli import build_parser
from kartud.ctl.words import Texts

DOCS = Path(__file__).resolve().parent.parent / "docs"


def commands_and_options(parser: argparse.ArgumentParser, prefix: str = "") -> tuple[set[str], set[str]]:
    """Every (sub)command as "blanks receive" and every long option, walking the parser itself."""
    commands, options = set(), set()
    for action in parser._actions:
        options.update(o for o in action.option_strings if o.startswith("--") and o != "--help")
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands.add(f"{prefix}{name}")
                more_commands, more_options = commands_and_options(sub, f"{prefix}{name} ")
                commands |= more_commands
                options |= more_options
    return commands, options


def test_every_kartuctl_command_and_option_is_in_docs_kartuctl_md():
    doc = (DOCS / "kartuctl.md").read_text(encoding="utf-8")
    commands, options = commands_and_options(build_parser(Texts("en")))
    assert {"status", "jobs", "job", "cancel", "resolve", "pause", "resume", "blanks receive", "blanks adjust",
            "cleaned", "report", "verify"} <= commands
    missing = [c for c in sorted(commands) if f"`kartuctl {c}" not in doc] + \
              [o for o in sorted(options) if f"`{o}" not in doc]
    assert not missing, f"not documented in docs/kartuctl.md: {missing}"


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_kartuctl_command_has_help_in_both_languages(lang):
    parser = build_parser(Texts(lang))
    text = parser.format_help()
    commands, _ = commands_and_options(parser)
    for command in (c for c in commands if " " not in c):
        assert re.search(rf"^\s+{command}\s+\S", text, re.M), f"{command} has no help line"


def test_every_kartud_command_and_option_is_in_help_and_in_the_docs(capsys):
    with pytest.raises(SystemExit):
        kartud_main(["--help"])
    listed = re.search(r"\{([a-z,-]+)\}", capsys.readouterr().out).group(1).split(",")
    docs = "\n".join(path.read_text(encoding="utf-8") for path in DOCS.glob("*.md"))
    assert {"run", "check-config"} <= set(listed)
    for command in listed:
        assert f"kartud {command}" in docs, f"kartud {command} is not documented"
        with pytest.raises(SystemExit):
            kartud_main([command, "--help"])
        for option in re.findall(r"(--[a-z-]+)", capsys.readouterr().out):
            assert option == "--help" or f"{option}" in docs, f"kartud {command} {option} is not documented"
