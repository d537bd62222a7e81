"""Notes and reasons are text the database holds: line breaks yes; NUL, other control characters, lone surrogates no."""

from __future__ import annotations

import pytest
from command_desk import Desk

FIELDS = [("queue/pause", {}, "reason"),
          ("blanks/receive", {"batch_id": "B1", "card_type": "KTP_EL", "count": 1}, "note"),
          ("blanks/adjust", {"card_type": "KTP_EL", "delta": 1, "request_id": "a-1"}, "reason"),
          ("maintenance/cleaned", {}, "note")]


@pytest.mark.parametrize("command, body, field", FIELDS)
@pytest.mark.parametrize("text", ["a\x00b", "bell\x07", "\ud800 lone", "esc\x1b[31m"])
def test_text_the_database_cannot_hold_is_refused_naming_the_field(store, command, body, field, text):
    desk = Desk(store)
    before = desk.dump()
    answer = desk.ask(command, {**body, field: text})
    assert answer["status"] == "error" and answer["error"]["code"] == "invalid_payload"
    assert [p["field"] for p in answer["error"]["details"]["problems"]] == [field]
    assert desk.dump() == before


@pytest.mark.parametrize("command, body, field", FIELDS)
def test_lines_of_any_script_are_kept(store, command, body, field):
    answer = Desk(store).ask(command, {**body, field: "stok opname\r\nbaris dua\tkolom — ꦗꦮ"})
    assert answer["status"] == "ok", answer
