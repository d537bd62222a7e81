"""The blank report as a one-page A4 PDF to print, sign ("Petugas" / "Mengetahui") and hand in.

Written with fpdf2 (imported only when a PDF is asked for): it measures text in the font it sets, so
columns line up and nothing overflows, which hand-written PDF operators would have to redo with
copied font metrics. The font is DejaVu Sans from Debian's fonts-dejavu-core (scripts/install and
scripts/bootstrap install it), embedded as a subset, so the file shows the same in any viewer and
years later (PDF/A asks for every font embedded; the core fonts would be the viewer's own).
"""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..ctl.words import Texts
from ..ledger.monthly_report import FIGURES
from ..ctl.report_text import (COLUMN_LABELS, blank_rows, outcome_line, period_line, reason_rows, shown_card_types,
                          spoiled_header, spoiled_rows)

MARGIN = 15.0                   # mm on every side
WIDTH = 210.0 - 2 * MARGIN      # A4 portrait
SIGNATURE_HEIGHT = 48.0         # place and date, two titles, room to sign, names, ids
FOOTER_HEIGHT = 8.0
FONT_DIR = "/usr/share/fonts/truetype/dejavu"            # Debian's fonts-dejavu-core
# fonts-dejavu-core has no oblique: the few italic lines are set upright.
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
FONT = "DejaVuSans"


class PdfMissing(Exception):
    """fpdf2 or the font is not installed: ``key`` and ``fields`` are the message in words.py."""

    def __init__(self, key: str = "pdf_missing", **fields: str):
        super().__init__(key)
        self.key, self.fields = key, fields


def _latin1(text: str) -> str:
    # Station ids, job ids and our own words are Latin-1, which DejaVu Sans covers: a safety net, so that a
    # character the font lacks is a "?" and never an empty box.
    return text.encode("latin-1", "replace").decode("latin-1")


class _Page:
    """A thin layer over FPDF: text lines and ruled tables in the report's few styles."""

    def __init__(self, title: str):
        try:
            from fpdf import FPDF
        except ImportError:
            raise PdfMissing() from None
        pdf = FPDF(orientation="P", unit="mm", format="A4")
        for style, name in FONT_FILES.items():
            path = os.path.join(FONT_DIR, name)
            if not os.path.isfile(path):
                raise PdfMissing("pdf_font_missing", path=path)
            pdf.add_font(FONT, style, path)
        pdf.set_margins(MARGIN, MARGIN, MARGIN)
        pdf.set_auto_page_break(True, margin=MARGIN + FOOTER_HEIGHT)
        pdf.set_title(_latin1(title))
        pdf.set_creator("kartuctl")
        pdf.add_page()
        self.pdf = pdf

    def line(self, text: str, size: float = 10, style: str = "", align: str = "L", height: float = 5.5) -> None:
        self.pdf.set_font(FONT, style.replace("I", ""), size)
        self.pdf.multi_cell(WIDTH, height, _latin1(text), align=align, new_x="LMARGIN", new_y="NEXT")

    def gap(self, mm: float) -> None:
        self.pdf.ln(mm)

    def grid(self, rows: list[list[str]], widths: list[float], header: list[str] | None = None,
             left: int = 1, size: float = 9.5, height: float = 5.5, bold_last: bool = False,
             groups: list[tuple[str, float]] | None = None) -> None:
        """A ruled table; the first ``left`` columns flush left, numbers flush right. ``groups`` is an extra
        header row of titles spanning several columns (a card type over its six figures)."""
        pdf = self.pdf
        pdf.set_fill_color(230, 230, 230)
        if groups:
            for text, width in groups:
                self._cell(text, width, height, "B", size, "C", fill=bool(text))
            pdf.ln(height)
        if header:
            for i, (cell, width) in enumerate(zip(header, widths)):
                self._cell(cell, width, height, "B", size, "L" if i < left else "R", fill=True)
            pdf.ln(height)
        for n, row in enumerate(rows):
            style = "B" if bold_last and n == len(rows) - 1 else ""
            for i, (cell, width) in enumerate(zip(row, widths)):
                self._cell(cell, width, height, style, size, "L" if i < left else "R")
            pdf.ln(height)

    def _cell(self, text: str, width: float, height: float, style: str, size: float, align: str,
              fill: bool = False) -> None:
        """One bordered cell; a text too wide for it is set smaller (down to 6 pt), never over the rule."""
        pdf, text = self.pdf, _latin1(text)
        pdf.set_font(FONT, style, size)
        while size > 6 and pdf.get_string_width(text) > width - 2 * pdf.c_margin:
            size -= 0.5
            pdf.set_font(FONT, style, size)
        pdf.cell(width, height, text, border=1 if text or fill else "LR", align=align, fill=fill)

    def room_left(self) -> float:
        return self.pdf.h - MARGIN - FOOTER_HEIGHT - self.pdf.get_y()

    def signatures(self, texts: Texts, day: date) -> None:
        """Place and date (the signer writes the town), "Petugas" left and "Mengetahui" right, room to sign."""
        pdf = self.pdf
        if self.room_left() < SIGNATURE_HEIGHT:
            pdf.add_page()
        half = WIDTH / 2
        pdf.set_font(FONT, "", 10)
        pdf.set_x(MARGIN + half)
        pdf.cell(half, 6, _latin1(texts("sign_place", date=texts.day(day))), align="C")
        pdf.ln(6)
        for key in ("sign_operator", "sign_witness"):
            pdf.cell(half, 6, _latin1(texts(key)), align="C")
        pdf.ln(24)
        for key in ("sign_name", "sign_id"):
            pdf.cell(half, 6, _latin1(texts(key)), align="C")
            pdf.cell(half, 6, _latin1(texts(key)), align="C")
            pdf.ln(6)

    def footer(self, text: str) -> None:
        pdf = self.pdf
        pdf.set_auto_page_break(False)
        pdf.set_y(pdf.h - MARGIN - FOOTER_HEIGHT + 2)
        pdf.set_font(FONT, "", 7)
        pdf.cell(WIDTH, 4, _latin1(text), align="C")

    def save(self, path: str) -> int:
        """Write the file; return its page count."""
        self.pdf.output(path)
        return self.pdf.pages_count


def write_report_pdf(path: str, texts: Texts, report: dict[str, Any], station: str, tz: ZoneInfo,
                     station_types, made_at: datetime) -> int:
    """Write the daily or monthly report to ``path``; return the number of pages (1 unless a single day
    spoiled more cards than a page holds: the berita acara list is never cut short).

    A month's page holds the day-by-day table per card type and the totals; its itemized list of
    spoiled cards is printed when it fits, else the counts by reason stand and the list is in the
    daily reports (and in ``--csv --table spoiled``).
    """
    monthly = "month" in report
    title = texts("title_month" if monthly else "title_daily")
    page = _Page(title)
    blanks = report["totals"]["blanks"] if monthly else report["blanks"]
    card_types = shown_card_types(blanks, station_types)
    label, period = period_line(texts, report)
    page.line(title, size=13, style="B", align="C", height=7)
    page.gap(2)
    page.line(f"{texts('r_station')}: {station}")
    page.line(f"{label}: {period} ({tz.key})")
    page.gap(3)
    if monthly:
        _month_table(page, texts, report, card_types)
        reasons = reason_rows(texts, report, card_types)
        if reasons:
            page.grid(reasons, [WIDTH - 28.0 * len(card_types)] + [28.0] * len(card_types),
                      [texts("r_by_reason"), *card_types], size=8.5, height=4.5)
    else:
        page.grid(blank_rows(texts, report, card_types), [WIDTH - 28.0 * len(card_types)] + [28.0] * len(card_types),
                  [texts("r_blanks"), *card_types])
        page.line(f"({texts('r_balance')})", size=7.5, style="I", height=4.5)
    page.gap(2)
    page.line(outcome_line(texts, report), size=9.5)
    page.gap(2)
    _spoiled_list(page, texts, report, tz, fit_only=monthly)
    page.gap(4)
    page.signatures(texts, date.fromisoformat(report["to"] if monthly else report["date"]))
    page.footer(texts("r_footer", when=texts.moment(made_at.astimezone(tz))))
    return page.save(path)


def _month_table(page: _Page, texts: Texts, report: dict[str, Any], card_types: list[str]) -> None:
    """One row per day: the six figures of each card type side by side under the type's name, then totals."""
    columns = 6 * len(card_types)
    day_width = 14.0
    width = (WIDTH - day_width) / columns
    size = 8.5 if len(card_types) == 1 else 7.5
    header = [texts("c_day")] + [texts(COLUMN_LABELS[f]) for _ in card_types for f in FIGURES]
    rows = [[date.fromisoformat(day["date"]).strftime("%d-%m")]
            + [str(day["blanks"][t][f]) for t in card_types for f in FIGURES] for day in report["days"]]
    totals = report["totals"]["blanks"]
    rows.append([texts("c_total")] + [str(totals[t][f]) for t in card_types for f in FIGURES])
    page.grid(rows, [day_width] + [width] * columns, header, size=size, height=4.0, bold_last=True,
              groups=[("", day_width)] + [(t, 6 * width) for t in card_types])
    page.line(f"({texts('r_balance')})", size=7.5, style="I", height=4.5)
    page.gap(2)


def _spoiled_list(page: _Page, texts: Texts, report: dict[str, Any], tz: ZoneInfo, fit_only: bool) -> None:
    rows = spoiled_rows(texts, report, tz)
    page.line(texts("r_spoiled_list", n=len(rows)), size=10, style="B")
    if not rows:
        page.line(texts("r_none"), size=9.5)
        return
    height = 5.0
    needed = height * (len(rows) + 1) + SIGNATURE_HEIGHT + 6
    if fit_only and needed > page.room_left():
        page.line(texts.pick("Rincian per kartu ada di berita acara harian dan di --csv --table spoiled.",
                             "The card-by-card list is in the daily reports and in --csv --table spoiled."), size=9)
        return
    time_width = 24.0 if "month" in report else 16.0
    widths = [9.0, time_width, 18.0, 45.0, 30.0]
    page.grid(rows, widths + [WIDTH - sum(widths)], spoiled_header(texts), left=6, size=9, height=height)
