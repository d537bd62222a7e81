"""kartuctl printer and kartuctl clean on the real daemon and its simulated printer; the state document's printer object."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

CONTRACT_FIELDS = {"connected", "model", "serial", "ribbon_remaining", "cards_until_cleaning"}


def kartuctl(room, *argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kartud.ctl.cli", "--config", room.config_path, "--lang", "en",
                           *argv], capture_output=True, text=True, timeout=60, env={**os.environ, "LANG": "C.UTF-8"})


def test_the_printer_says_who_it_is_and_cleans_itself_when_due(room):
    room.overrides.update({"printer.sim.cleaning_every": "2", "limits.cleaning_every": "3"})
    room.start()
    room.receive_blanks(10)
    for _ in range(2):
        job = room.job()
        room.submit(job)
        room.wait_state(job["job_id"], "printed")

    # The printer's own count says cleaning is due after 2 cards (the ledger's would wait for 3).
    state = room.office.wait_state(lambda s: s["printer"]["cards_until_cleaning"] == 0
                                   and any(f["code"] == "cleaning_required" for f in s["faults"]))
    printer = state["printer"]
    assert CONTRACT_FIELDS <= set(printer) and printer["connected"] is True
    assert printer["model"].startswith("Evolis") and printer["serial"] == "SIM0001"
    assert printer["firmware"] == "kartud-sim 1.0" and printer["ribbon_type"] == "YMCKO"
    assert printer["counters"]["cards_inserted"] == 2 and printer["cleaning_count_from"] == "printer"
    assert printer["ribbon_remaining"] == 298

    shown = kartuctl(room, "printer")
    assert shown.returncode == 0, shown.stderr
    for text in ("connected", "SIM0001", "kartud-sim 1.0", "YMCKO, 298 prints left",
                 "0 cards (the printer's count)", "kartuctl clean"):
        assert text in shown.stdout, (text, shown.stdout)
    assert re.search(r"^Cards fed +: 2$", shown.stdout, re.M), shown.stdout
    assert json.loads(kartuctl(room, "printer", "--json").stdout)["printer"]["serial"] == "SIM0001"

    cleaned = kartuctl(room, "clean", "--note", "cleaning card")
    assert cleaned.returncode == 0, cleaned.stderr
    assert "the printer says it is clean" in cleaned.stdout and "2 cards until the next one" in cleaned.stdout
    after = room.office.wait_state(lambda s: not s["faults"] and s["printer"]["counters"].get("cleanings") == 1)
    assert after["printer"]["cards_until_cleaning"] == 2
    assert [c["destination"] for c in room.cards()] == ["output", "output"]      # no card used by the cycle
    job = room.job()
    room.submit(job)
    room.wait_state(job["job_id"], "printed")

    assert room.stop() == 0
    down = kartuctl(room, "printer")
    assert down.returncode == 0 and "kartud is not running" in down.stdout
    assert "2 cards (kartud's count" in down.stdout
