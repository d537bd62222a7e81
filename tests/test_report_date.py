"""report/daily takes its date only as YYYY-MM-DD (contract 1.1), and kartuctl report agrees."""

from __future__ import annotations

from datetime import date

import pytest
from command_desk import Desk

from kartud.ctl.cli import UsageError, parse_day
from kartud.ctl.words import Texts

OTHER_FORMS = ["20261202", "2026-W49-3", "2026-336", "2026-12-02T00:00:00", "2026-1-2", " 2026-12-02", "2026-12-02 ",
               "\uff12\uff10\uff12\uff16-12-02", "2026-12-32", "", None, 20261202,
               "0001-01-01", "9999-12-31"]     # their local day's bounds do not fit a datetime in every zone


@pytest.mark.parametrize("value", OTHER_FORMS)
def test_any_other_form_is_refused_naming_date(store, value):
    answer = Desk(store).ask("report/daily", {"date": value})
    assert answer["status"] == "error" and answer["error"]["code"] == "invalid_payload"
    assert [p["field"] for p in answer["error"]["details"]["problems"]] == ["date"]
    assert "YYYY-MM-DD" in answer["error"]["message"]


@pytest.mark.parametrize("value", ["2026-12-02", "0001-01-02", "9999-12-30"])
def test_the_one_form_is_answered(store, value):
    answer = Desk(store).ask("report/daily", {"date": value})
    assert answer["status"] == "ok" and answer["data"]["date"] == value


@pytest.mark.parametrize("value", [v for v in OTHER_FORMS if isinstance(v, str) and v])
def test_kartuctl_report_refuses_the_same_forms(value):
    with pytest.raises(UsageError):
        parse_day(value, date(2026, 12, 2), Texts("en"))


@pytest.mark.parametrize("value, day", [("2026-12-02", date(2026, 12, 2)), ("today", date(2026, 12, 2)),
                                        ("kemarin", date(2026, 12, 1))])
def test_kartuctl_report_takes_a_date_today_or_yesterday(value, day):
    assert parse_day(value, date(2026, 12, 2), Texts("en")) == day
