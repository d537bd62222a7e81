"""``kartuctl printer`` and ``kartuctl clean``: what the printer says about itself, and its cleaning cycle, in words."""

from __future__ import annotations

from typing import Any

from ..ctl.words import Texts


def _labelled(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(label) for label, _ in rows)
    return [f"{label.ljust(width)} : {value}" for label, value in rows]


def printer_screen(texts: Texts, doc: dict[str, Any]) -> str:
    """The state document's ``printer`` object for people: link, model, serial, firmware, ribbon, the
    printer's counters and cards until cleaning (the printer's own count, else kartud's)."""
    printer = doc.get("printer") or {}
    unsaid = texts("p_not_said")
    running = doc.get("daemon") != "not_running"
    if not running:
        link = texts("p_not_running")
    else:
        link = texts("connected") if printer.get("connected") else texts("disconnected")
    rows = [(texts("p_link"), link)]
    if running:
        counters = printer.get("counters") or {}
        ribbon = printer.get("ribbon_type") or unsaid
        if printer.get("ribbon_remaining") is not None:
            ribbon = texts("p_ribbon_words", type=ribbon, left=printer["ribbon_remaining"])
        rows += [(texts("p_model"), printer.get("model") or unsaid), (texts("p_serial"), printer.get("serial") or unsaid),
                 (texts("p_firmware"), printer.get("firmware") or unsaid), (texts("p_ribbon"), ribbon)]
        for key, label in (("cards_inserted", "p_printed"), ("panels_printed", "p_panels"),
                           ("cleanings", "p_cleanings")):
            rows.append((texts(label), str(counters[key]) if key in counters else unsaid))
    until = printer.get("cards_until_cleaning")
    own = running and printer.get("cleaning_count_from") == "printer"
    if until is not None:
        rows.append((texts("p_cleaning"), texts("p_cleaning_printer" if own else "p_cleaning_ledger", n=until)))
    if any(fault.get("code") == "cleaning_required" for fault in doc.get("faults") or ()) or \
            doc.get("reason") == "cleaning_due":
        rows.append(("", texts("p_cleaning_due")))
    return "\n".join([texts("p_title"), ""] + _labelled(rows)) + "\n"


def clean_words(texts: Texts, data: dict[str, Any]) -> tuple[str, bool]:
    """What ``kartuctl clean`` says, and whether the cleaning was recorded."""
    cycle = data.get("cleaning_cycle") or {}
    if cycle.get("ran") and cycle.get("printer_says") == "done":
        n = cycle.get("cards_until_cleaning")
        if n is None:
            n = (data.get("printer") or {}).get("cards_until_cleaning", "?")
        return texts("clean_done", n=n) + "\n", True
    if cycle.get("ran") and cycle.get("printer_says") == "unknown":
        return texts("clean_unknown") + "\n", True
    return texts("clean_not_done", why=cycle.get("why") or "?") + "\n", False
