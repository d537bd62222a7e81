"""The daily and monthly blank reports as plain text for the terminal and as CSV for a spreadsheet."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..ctl.words import Texts
from ..ledger.monthly_report import FIGURES, OUTCOMES, shown_card_types, spoiled_by_type

ROW_LABELS = {"opening": "r_opening", "received": "r_received", "printed": "r_printed", "spoiled": "r_spoiled",
              "adjusted": "r_adjusted", "closing": "r_closing"}
COLUMN_LABELS = {"opening": "c_opening", "received": "c_received", "printed": "c_printed", "spoiled": "c_spoiled",
                 "adjusted": "c_adjusted", "closing": "c_closing"}


def local_time(stamp: str, tz: ZoneInfo) -> datetime:
    """A stored RFC 3339 instant in the station's time zone."""
    return datetime.fromisoformat(stamp).astimezone(tz)


def reason_words(texts: Texts, reason: str | None) -> str:
    return texts.optional("reason_", reason or "unknown")


def blank_rows(texts: Texts, report: dict[str, Any], card_types: list[str]) -> list[list[str]]:
    """The blank table, one row per figure, with a sub-row per reason under "spoiled": the table the text
    and the PDF both print. A month's table is its totals."""
    blanks = report["totals"]["blanks"] if "totals" in report else report["blanks"]
    rows = []
    for figure in FIGURES:
        rows.append([texts(ROW_LABELS[figure]), *(str(blanks[t][figure]) for t in card_types)])
        if figure == "spoiled":
            rows += [["  - " + label, *counts] for label, *counts in reason_rows(texts, report, card_types)]
    return rows


def reason_rows(texts: Texts, report: dict[str, Any], card_types: list[str]) -> list[list[str]]:
    """Spoiled blanks by reason (in words) and card type."""
    return [[reason_words(texts, reason), *(str(counts.get(t, 0)) for t in card_types)]
            for reason, counts in spoiled_by_type(report["spoiled_cards"]).items()]


def spoiled_rows(texts: Texts, report: dict[str, Any], tz: ZoneInfo) -> list[list[str]]:
    """The berita acara list of spoiled cards: number, local time, type, job, batch, reason."""
    monthly = "month" in report
    rows = []
    for n, card in enumerate(report["spoiled_cards"], 1):
        when = local_time(card["at"], tz)
        rows.append([str(n), when.strftime("%d-%m %H:%M" if monthly else "%H:%M"), card["card_type"],
                     card["job_id"] or "-", card["batch_id"] or "-", reason_words(texts, card["reason"])])
    return rows


def spoiled_header(texts: Texts) -> list[str]:
    return [texts(key) for key in ("s_no", "s_time", "s_type", "s_job", "s_batch", "s_reason")]


def outcome_line(texts: Texts, report: dict[str, Any]) -> str:
    figures = report["totals"] if "totals" in report else report
    return texts("r_jobs", **{outcome: figures[outcome] for outcome in OUTCOMES})


def period_line(texts: Texts, report: dict[str, Any]) -> tuple[str, str]:
    """("Tanggal", "Jumat, 27 November 2026") or ("Bulan", "November 2026: 1 ... s.d. 27 ...")."""
    if "month" in report:
        first, last = date.fromisoformat(report["from"]), date.fromisoformat(report["to"])
        days = texts("r_days", first=first.day, last=last.day, n=len(report["days"]))
        return texts("r_month"), f"{texts.month(first.year, first.month)}, {days}"
    return texts("r_date"), texts.day(date.fromisoformat(report["date"]))


def table(rows: list[list[str]], header: list[str] | None = None, right: set[int] | None = None) -> list[str]:
    """Columns padded to their widest cell; those in ``right`` (default: all but the first) flush right."""
    every = ([header] if header else []) + rows
    widths = [max(len(row[i]) for row in every) for i in range(len(every[0]))]
    right = set(range(1, len(widths))) if right is None else right
    return ["  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            .rstrip() for row in every]


def report_text(texts: Texts, report: dict[str, Any], station: str, tz: ZoneInfo, station_types) -> str:
    """The whole report for a terminal: heading, blank table (and for a month, the day-by-day table per
    card type), spoiled cards, job outcomes."""
    blanks = report["totals"]["blanks"] if "totals" in report else report["blanks"]
    card_types = shown_card_types(blanks, station_types)
    label, period = period_line(texts, report)
    lines = [texts("title_month" if "month" in report else "title_daily"),
             f"{texts('r_station')}: {station}", f"{label}: {period} ({tz.key})", ""]
    lines += table(blank_rows(texts, report, card_types), [texts("r_blanks"), *card_types])
    lines += ["", f"({texts('r_balance')})"]
    if "month" in report:
        for card_type in card_types:
            lines += ["", card_type]
            lines += table(day_rows(texts, report, card_type),
                           [texts("c_day"), *(texts(COLUMN_LABELS[f]) for f in FIGURES)])
    lines += ["", texts("r_spoiled_list", n=len(report["spoiled_cards"]))]
    rows = spoiled_rows(texts, report, tz)
    if rows:
        lines += ["  " + line for line in table(rows, spoiled_header(texts), right={0})]
    lines += ["", outcome_line(texts, report)]
    return "\n".join(lines) + "\n"


def day_rows(texts: Texts, report: dict[str, Any], card_type: str) -> list[list[str]]:
    """A month's day-by-day figures of one card type, and its total row."""
    rows = [[date.fromisoformat(day["date"]).strftime("%d-%m"), *(str(day["blanks"][card_type][f]) for f in FIGURES)]
            for day in report["days"]]
    totals = report["totals"]["blanks"][card_type]
    return rows + [[texts("c_total"), *(str(totals[f]) for f in FIGURES)]]


CSV_TABLES = ("blanks", "spoiled", "jobs")


def report_csv(report: dict[str, Any], tz: ZoneInfo, table: str = "blanks") -> str:
    """One table of the report as CSV, one header and rows of its length, as csvkit and spreadsheets want:
    ``blanks`` per period and card type (a month adds a total row per card type), ``spoiled`` the spoiled
    cards, ``jobs`` the job outcomes per period (a month adds a total row). Column names are fixed English
    codes, for spreadsheets and scripts alike.

    >>> report_csv({"date": "2026-11-27", "printed": 3, "failed": 0, "cancelled": 1, "expired": 0, "in_doubt": 0,
    ...             "spoiled_cards": [], "blanks": {}}, ZoneInfo("Asia/Jakarta"), "jobs")
    'period,printed,failed,cancelled,expired,in_doubt\\n2026-11-27,3,0,1,0,0\\n'
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    days = report["days"] if "month" in report else [report]
    if table == "blanks":
        writer.writerow(["period", "card_type", *FIGURES])
        for day in days:
            for card_type, figures in day["blanks"].items():
                writer.writerow([day["date"], card_type, *(figures[f] for f in FIGURES)])
        if "month" in report:
            for card_type, figures in report["totals"]["blanks"].items():
                writer.writerow([report["month"], card_type, *(figures[f] for f in FIGURES)])
    elif table == "spoiled":
        writer.writerow(["spoiled_at", "card_type", "job_id", "batch_id", "reason"])
        for card in report["spoiled_cards"]:
            writer.writerow([local_time(card["at"], tz).isoformat(timespec="seconds"), card["card_type"],
                             card["job_id"] or "", card["batch_id"] or "", card["reason"] or ""])
    elif table == "jobs":
        writer.writerow(["period", "printed", *OUTCOMES])
        for day in days:
            writer.writerow([day["date"], day["printed"], *(day[o] for o in OUTCOMES)])
        if "month" in report:
            writer.writerow([report["month"], report["totals"]["printed"], *(report["totals"][o] for o in OUTCOMES)])
    else:
        raise ValueError(f"no CSV table {table!r}: one of {', '.join(CSV_TABLES)}")
    return out.getvalue()
