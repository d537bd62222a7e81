"""The blank reports as kartuctl gives them: the month from its days, text, CSV, and a PDF read back with poppler."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess

import pytest
from ledger_history import DAYS, JAKARTA, write_history

from kartud.ctl.cli import main
from kartud.ledger.read_only import OfflineStore
from kartud.ctl.words import Texts
from kartud.ledger.daily_report import daily_report
from kartud.ledger.monthly_report import month_report
from kartud.ctl.report_text import report_csv, report_text

needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
                                   reason="poppler-utils (pdftotext, pdftoppm) is not installed")


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    """A stopped station with three days of history: kartuctl reads its database directly."""
    directory = tmp_path_factory.mktemp("station")
    history = write_history(str(directory / "kartud.db"))
    config = directory / "kartud.toml"
    config.write_text(f'[station]\nid = "kota-probolinggo-01"\ncard_types = ["KTP_EL", "KIA"]\n'
                      f'[control]\nsocket = "{directory}/control.sock"\n[store]\npath = "{directory}/kartud.db"\n')

    def run(*argv, lang="en"):
        out, err = io.StringIO(), io.StringIO()
        status = main(["--config", str(config), "--lang", lang, *argv], out=out, err=err, environ={})
        assert status == 0, err.getvalue()
        return out.getvalue()

    history.run, history.dir = run, directory
    return history


@pytest.fixture(scope="module")
def store(station):
    store = OfflineStore(str(station.dir / "kartud.db"))
    yield store
    store.conn.close()


def test_the_month_is_its_days_added_up_and_balances(store, station):
    month = month_report(lambda day: daily_report(store.conn, day, JAKARTA), DAYS)
    previous = {t: 0 for t in month["totals"]["blanks"]}
    for day, report in zip(DAYS, month["days"]):
        for card_type, b in report["blanks"].items():
            assert b["opening"] == previous[card_type]               # each day opens where the last one closed
            for figure in ("received", "printed", "spoiled", "adjusted"):
                assert b[figure] == station.tally[day, card_type][figure]
            previous[card_type] = b["closing"]
    for card_type, b in month["totals"]["blanks"].items():
        assert b["closing"] == b["opening"] + b["received"] - b["printed"] - b["spoiled"] + b["adjusted"]
        assert b["closing"] == previous[card_type]
    assert month["totals"]["blanks"]["KTP_EL"] == {"opening": 0, "received": 50, "printed": 9, "spoiled": 4,
                                                   "adjusted": -2, "closing": 35}
    assert month["totals"]["spoiled"] == {"encode_failed": 2, "card_jam": 1, "in_doubt_spoiled": 1}
    assert [(c["job_id"], c["reason"]) for c in month["spoiled_cards"]] == [(j, r) for _, j, r in station.spoiled]
    for outcome in ("failed", "cancelled", "expired", "in_doubt"):
        assert month["totals"][outcome] == sum(station.outcomes[day][outcome] for day in DAYS)


def test_kartuctl_month_report_gives_the_same_totals(station):
    month = json.loads(station.run("report", "--month", "2026-11", "--json"))
    assert month["month"] == "2026-11" and month["from"] == "2026-11-01"
    assert month["totals"]["blanks"]["KIA"] == {"opening": 0, "received": 20, "printed": 2, "spoiled": 0,
                                                "adjusted": 0, "closing": 18}
    assert month["totals"]["blanks"]["KTP_EL"]["closing"] == 35


def test_the_daily_text_has_the_table_the_spoiled_cards_and_the_job_outcomes(station):
    text = station.run("report", "2026-11-03", lang="id")
    assert "BERITA ACARA HARIAN PEMAKAIAN BLANGKO" in text and "Selasa, 3 November 2026 (Asia/Jakarta)" in text
    assert re.search(r"Stok awal\s+44\s+18\n", text) and re.search(r"Stok akhir\s+36\s+18\n", text)
    assert re.search(r"- kartu macet\s+1\s+0\n", text) and re.search(r"Koreksi stok\s+-2\s+0\n", text)
    assert re.search(r"1\s+08:30\s+KTP_EL\s+j-008\s+B-KTP-1\s+kartu macet", text)
    assert "1 dibatalkan, 1 menjadi diragukan" in text


CSV_HEADERS = {"blanks": ["period", "card_type", "opening", "received", "printed", "spoiled", "adjusted", "closing"],
               "spoiled": ["spoiled_at", "card_type", "job_id", "batch_id", "reason"],
               "jobs": ["period", "printed", "failed", "cancelled", "expired", "in_doubt"]}


def csv_problems(text: str) -> list[str]:
    """What csvkit (csvclean, csvstack) would trip on: one header of unique, non-empty names, then rows of its
    length, no blank line, no second header."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return ["no header"]
    header, problems = rows[0], []
    if len(set(header)) != len(header) or not all(header):
        problems.append(f"header {header} has an empty or repeated name")
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            problems.append(f"row {n} has {len(row)} fields, the header {len(header)}: {row}")
        elif row == header:
            problems.append(f"row {n} is a second header")
    return problems


def test_the_strict_check_finds_what_csvkit_trips_on():
    assert csv_problems("a,b\n1,2\n") == []
    assert csv_problems("a,b\n1,2\n\nc\n3\n") == ["row 3 has 0 fields, the header 2: []",
                                                     "row 4 has 1 fields, the header 2: ['c']",
                                                     "row 5 has 1 fields, the header 2: ['3']"]
    assert csv_problems("a,a\n1,2\na,a\n") == ["header ['a', 'a'] has an empty or repeated name",
                                                 "row 3 is a second header"]


@pytest.mark.parametrize("period", [("2026-11-03",), ("--month", "2026-11")], ids=["day", "month"])
@pytest.mark.parametrize("table", ["blanks", "spoiled", "jobs"])
def test_each_csv_is_one_table_that_csvkit_and_python_read(station, table, period):
    text = station.run("report", *period, "--csv", "--table", table)
    assert csv_problems(text) == []
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == CSV_HEADERS[table] and len(rows) > 1
    assert station.run("report", *period, "--table", table) == text            # --table alone means CSV


def test_the_csv_tables_hold_the_figures(store, station):
    month = month_report(lambda day: daily_report(store.conn, day, JAKARTA), DAYS)
    blanks, spoiled, jobs = (list(csv.reader(io.StringIO(report_csv(month, JAKARTA, table))))
                             for table in ("blanks", "spoiled", "jobs"))
    assert ["2026-11-03", "KTP_EL", "44", "0", "4", "2", "-2", "36"] in blanks
    assert blanks[-2:] == [["2026-11", "KTP_EL", "0", "50", "9", "4", "-2", "35"],
                           ["2026-11", "KIA", "0", "20", "2", "0", "0", "18"]]
    assert spoiled[1] == ["2026-11-02T09:00:00+07:00", "KTP_EL", "j-001", "B-KTP-1", "encode_failed"]
    assert jobs[-1] == ["2026-11", "11", "1", "1", "1", "2"]
    by_default = list(csv.reader(io.StringIO(station.run("report", "--month", "2026-11", "--csv"))))
    assert by_default[0] == blanks[0] and by_default[-2:] == blanks[-2:]                       # blanks by default


def test_a_station_of_one_card_type_shows_only_it(store):
    report = daily_report(store.conn, DAYS[2], JAKARTA)
    text = report_text(Texts("en"), {**report, "blanks": {**report["blanks"], "KIA": dict.fromkeys(
        report["blanks"]["KIA"], 0)}}, "s-1", JAKARTA, ["KTP_EL"])
    table = text.split("\n\n")[1]
    assert table.splitlines()[0].split() == ["Blanks", "KTP_EL"]


# -- the PDF, read back as a person and a machine would -------------------------------------------

def pdf_text(path) -> str:
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"[ \t]+", " ", text)


def pdf_pages(path, tmp_path):
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "page")], check=True)
    return sorted(tmp_path.glob("page*.png"))


@needs_poppler
def test_the_daily_pdf_is_one_signable_page_with_the_figures(station, tmp_path):
    pdf = tmp_path / "harian.pdf"
    station.run("report", "2026-11-03", "--pdf", str(pdf), lang="id")
    text = pdf_text(pdf)
    for words in ("BERITA ACARA HARIAN PEMAKAIAN BLANGKO KTP-el / KIA", "Stasiun: kota-probolinggo-01",
                  "Tanggal: Selasa, 3 November 2026", "Stok awal 44 18", "Tercetak 4 0", "Rusak 2 0",
                  "- kartu macet 1 0", "- diragukan, dinyatakan rusak oleh petugas 1 0", "Koreksi stok -2 0",
                  "Stok akhir 36 18", "j-008", "j-012", "B-KTP-1", "Petugas", "Mengetahui", "NIP."):
        assert words in text, words
    assert "Daftar kartu rusak (blangko untuk dimusnahkan): 2" in text
    pages = pdf_pages(pdf, tmp_path)
    assert len(pages) == 1
    from PIL import Image

    with Image.open(pages[0]) as page:
        assert abs(page.height / page.width - 297 / 210) < 0.01           # A4 portrait
        dark = page.convert("L").histogram()[:128]
    assert sum(dark) > 2000                                                   # ink on the page, not a blank sheet


@needs_poppler
def test_the_monthly_pdf_is_one_page_with_every_day_and_the_totals(station, tmp_path):
    pdf = tmp_path / "month.pdf"
    station.run("report", "--month", "2026-11", "--pdf", str(pdf), lang="en")
    text = pdf_text(pdf)
    assert "MONTHLY BLANK REPORT (KTP-el / KIA)" in text and "Month: November 2026, days 1 to" in text
    assert "03-11 44 0 4 2 -2 36 18 0 0 0 0 18" in text                   # a day: KTP_EL then KIA
    assert "Total 0 50 9 4 -2 35 0 20 2 0 0 18" in text                   # the month
    assert "card jam 1 0" in text and "Jobs: 1 failed, 1 expired, 1 cancelled, 2 went in doubt" in text
    assert "Operator (Petugas)" in text and "Acknowledged by (Mengetahui)" in text
    assert len(pdf_pages(pdf, tmp_path)) == 1


@pytest.mark.skipif(not shutil.which("pdffonts"), reason="poppler-utils (pdffonts) is not installed")
@pytest.mark.parametrize("period", [("2026-11-03",), ("--month", "2026-11")], ids=["day", "month"])
def test_the_pdf_embeds_every_font_it_uses(station, tmp_path, period):
    pdf = tmp_path / "report.pdf"
    station.run("report", *period, "--pdf", str(pdf), lang="id")
    listing = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout.splitlines()
    fonts = [line.split() for line in listing[2:] if line.strip()]       # after the header and its rule
    assert fonts, listing
    # name type... encoding emb sub uni object-number generation: "emb" is the fifth field from the right.
    assert [(font[0], font[-5]) for font in fonts if font[-5] != "yes"] == []
    assert all("DejaVuSans" in font[0] for font in fonts)


def test_a_missing_font_is_a_clear_usage_error(station, tmp_path, monkeypatch):
    from kartud.ctl import report_pdf

    monkeypatch.setattr(report_pdf, "FONT_DIR", str(tmp_path))
    out, err = io.StringIO(), io.StringIO()
    status = main(["--config", str(station.dir / "kartud.toml"), "--lang", "en", "report", "2026-11-03", "--pdf",
                   str(tmp_path / "r.pdf")], out=out, err=err, environ={})
    assert status == 2 and "apt-get install fonts-dejavu-core" in err.getvalue()
    assert not (tmp_path / "r.pdf").exists()
