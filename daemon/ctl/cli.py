"""``kartuctl``: the operator's tool on the box, over the control socket, in Bahasa Indonesia or English."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

from ..rules.calendar import parse_day as iso_day
from ..rules.card_types import CARD_TYPES
from ..rules.config import ConfigError, load
from ..ctl.client import ControlClient, DatabaseUnreadable, Refused, Unreachable
from ..ctl.words import LANGUAGES, Texts, language_from_argv
from ..rules.errors import CommandError

DEFAULT_CONFIG = "/etc/kartud/kartud.toml"
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
READ_ONLY = ("status/get", "job/list", "job/get", "report/daily", "quarantine/list")
STATES = ("queued", "printing", "printed", "failed", "cancelled", "expired", "in_doubt")
TODAY_WORDS = {"today": 0, "hari-ini": 0, "yesterday": 1, "kemarin": 1}


# -- the command line ---------------------------------------------------------------------------

def build_parser(texts: Texts) -> argparse.ArgumentParser:
    """Every command and option of kartuctl (docs/kartuctl.md documents each; a test keeps it so)."""
    p = texts.pick
    common = argparse.ArgumentParser(add_help=False)
    # Accepted before or after the command; SUPPRESS keeps a later position from resetting an earlier one.
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help=p(f"berkas konfigurasi (bawaan: {DEFAULT_CONFIG})",
                               f"config file (default: {DEFAULT_CONFIG})"))
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help=p("cetak data jawaban sebagai JSON, untuk skrip",
                               "print the response's data as JSON, for scripts"))
    common.add_argument("--lang", choices=LANGUAGES, default=argparse.SUPPRESS,
                        help=p("bahasa keluaran (bawaan: dari LANG/LC_ALL; id_ID -> id)",
                               "output language (default: from LANG/LC_ALL; id_ID -> id)"))
    parser = argparse.ArgumentParser(
        prog="kartuctl", parents=[common],
        description=p("Alat petugas untuk kartud, pengendali printer KTP-el/KIA. Bekerja lewat soket kontrol, "
                      "juga saat broker MQTT mati.", "The operator's tool for kartud, the KTP-el/KIA printer "
                      "controller. Works over the control socket, also while the MQTT broker is down."),
        epilog=p("Status keluar: 0 berhasil, 1 kartud menolak (atau verify menemukan kerusakan), 2 salah pakai "
                 "atau salah konfigurasi, 3 kartud tidak terjangkau. Panduan: docs/kartuctl.md",
                 "Exit status: 0 ok, 1 kartud refused (or verify found damage), 2 usage or config error, "
                 "3 kartud is not reachable. Guide: docs/kartuctl.md"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_id: str, help_en: str, parent=sub) -> argparse.ArgumentParser:
        return parent.add_parser(name, parents=[common], help=p(help_id, help_en), description=p(help_id, help_en))

    command("status", "satu layar: keadaan dan sebabnya, hitungan hari ini, antrean, kartu diragukan, blangko, "
                      "gangguan", "one screen: mode and why, today's count, queue, jobs in doubt, blanks, faults")
    jobs = command("jobs", "daftar pekerjaan, terbaru dulu", "list jobs, newest first")
    jobs.add_argument("--state", choices=STATES, help=p("hanya pekerjaan dalam keadaan ini", "only jobs in this state"))
    jobs.add_argument("--limit", type=_limit, default=100, metavar="N",
                      help=p("paling banyak N pekerjaan (1-1000, bawaan 100)", "at most N jobs (1-1000, default 100)"))
    command("job", "rincian satu pekerjaan", "one job in detail").add_argument("job_id", metavar="JOB_ID")
    command("cancel", "batalkan pekerjaan yang masih antre", "cancel a queued job").add_argument("job_id",
                                                                                                 metavar="JOB_ID")
    resolve = command("resolve", "putuskan pekerjaan yang diragukan setelah melihat kartunya",
                      "settle a job in doubt after looking at its card")
    resolve.add_argument("job_id", metavar="JOB_ID")
    resolve.add_argument("outcome", choices=("printed", "spoiled"),
                         help=p("printed: kartu baik dan final; spoiled: blangko rusak, pekerjaan kembali antre",
                                "printed: the card is good and final; spoiled: the blank is void, the job queues "
                                "again"))
    resolve.add_argument("--note", required=True, metavar="TEXT", help=p("apa yang dilihat petugas (wajib)",
                                                                         "what the operator saw (required)"))
    resolve.add_argument("--attempts", type=int, metavar="N", help=p(
        "Percobaan yang tampil di `kartuctl job`: ditolak bila pekerjaan sudah dicoba lagi sejak itu",
        "the Attempts `kartuctl job` showed: refused if the job was tried again since"))
    pause = command("pause", "jeda antrean (kartu yang sedang dicetak diselesaikan)",
                    "pause the queue (a card in the printer is finished)")
    pause.add_argument("--reason", metavar="TEXT", help=p("alasan jeda, tampil di status", "why, shown by status"))
    command("resume", "lanjutkan antrean", "resume the queue")
    blanks = command("blanks", "catat blangko masuk atau koreksi stok", "record blanks received or correct the stock")
    blanks_sub = blanks.add_subparsers(dest="blanks_command", required=True, metavar="ACTION")
    receive = command("receive", "catat satu batch blangko yang diterima (batch yang sama dihitung sekali)",
                      "record a batch of blanks received (the same batch counts once)", blanks_sub)
    receive.add_argument("batch_id", metavar="BATCH_ID")
    receive.add_argument("card_type", metavar="CARD_TYPE", choices=CARD_TYPES)
    receive.add_argument("count", metavar="COUNT", type=int)
    receive.add_argument("--note", metavar="TEXT", help=p("catatan, mis. nomor surat",
                                                          "a note, e.g. the delivery note"))
    adjust = command("adjust", "koreksi stok setelah stock opname (+ ditemukan, - hilang/rusak di luar printer)",
                     "correct the stock after a count (+ found, - lost or damaged outside the printer)", blanks_sub)
    adjust.add_argument("card_type", metavar="CARD_TYPE", choices=CARD_TYPES)
    adjust.add_argument("delta", metavar="DELTA", type=int)
    adjust.add_argument("--reason", required=True, metavar="TEXT", help=p("alasan koreksi (wajib)",
                                                                          "why the count changed (required)"))
    cleaned = command("cleaned", "catat bahwa printer sudah dibersihkan", "record that the printer was cleaned")
    cleaned.add_argument("--note", metavar="TEXT", help=p("catatan", "a note"))
    clean = command("clean", "jalankan siklus pembersihan printer (kartu pembersih di feeder); dicatat bila printer "
                             "menyatakan bersih", "run the printer's cleaning cycle (a cleaning card in the feeder); "
                             "recorded when the printer says it is clean")
    clean.add_argument("--note", metavar="TEXT", help=p("catatan", "a note"))
    command("printer", "yang dikatakan printer tentang dirinya: model, nomor seri, firmware, pita, penghitung",
            "what the printer says about itself: model, serial, firmware, ribbon, counters")
    report = command("report", "laporan blangko harian atau bulanan (berita acara)",
                     "the daily or monthly blank report (berita acara)")
    report.add_argument("date", nargs="?", metavar="DATE", help=p("YYYY-MM-DD, today/hari-ini atau yesterday/kemarin",
                                                                  "YYYY-MM-DD, today/hari-ini or yesterday/kemarin"))
    report.add_argument("--month", metavar="YYYY-MM", help=p("rekap satu bulan, per hari", "a month, day by day"))
    report.add_argument("--csv", action="store_true", help=p("keluaran CSV: satu tabel (lihat --table)",
                                                            "output CSV: one table (see --table)"))
    report.add_argument("--table", choices=("blanks", "spoiled", "jobs"), help=p(
        "tabel CSV: blanks (stok blangko, bawaan), spoiled (kartu rusak) atau jobs (hasil pekerjaan); berarti --csv",
        "the CSV table: blanks (the stock, default), spoiled (the spoiled cards) or jobs (job outcomes); implies --csv"))
    report.add_argument("--pdf", metavar="FILE", help=p("tulis juga PDF satu halaman untuk ditandatangani",
                                                        "also write a one-page PDF to sign"))
    command("verify", "periksa rantai audit dan kecocokan stok blangko (dibaca langsung dari basis data)",
            "check the audit chain and the blank ledger (read directly from the database)")
    command("quarantine", "permintaan yang disisihkan karena kesalahan internal, untuk diperiksa (tanpa isinya)",
            "requests set aside after an internal error, for a person to look at (never their content)")
    return parser


def _limit(value: str) -> int:
    number = int(value) if value.isdigit() else 0
    if not 1 <= number <= 1000:
        raise argparse.ArgumentTypeError("1-1000")
    return number


def request_of(args) -> tuple[str, dict[str, Any]]:
    """The MQTT command name and payload a kartuctl command sends."""
    name = args.command if args.command != "blanks" else f"blanks {args.blanks_command}"
    if name in ("status", "printer"):
        return "status/get", {}
    if name == "jobs":
        return "job/list", {"limit": args.limit, **({"state": args.state} if args.state else {})}
    if name in ("job", "cancel"):
        return {"job": "job/get", "cancel": "job/cancel"}[name], {"job_id": args.job_id}
    if name == "resolve":
        return "job/resolve", {"job_id": args.job_id, "outcome": args.outcome, "note": args.note,
                               **({"attempts": args.attempts} if args.attempts is not None else {})}
    if name == "pause":
        return "queue/pause", {"reason": args.reason} if args.reason else {}
    if name == "resume":
        return "queue/resume", {}
    if name == "blanks receive":
        return "blanks/receive", {"batch_id": args.batch_id, "card_type": args.card_type, "count": args.count,
                                  **({"note": args.note} if args.note else {})}
    if name == "blanks adjust":
        # An id of its own, so that the daemon counts this correction once whatever happens on the way.
        return "blanks/adjust", {"card_type": args.card_type, "delta": args.delta, "reason": args.reason,
                                 "request_id": f"kartuctl-{uuid.uuid4().hex}"}
    if name in ("cleaned", "clean"):
        return "maintenance/cleaned", {**({"note": args.note} if args.note else {}),
                                       **({"run_cycle": True} if name == "clean" else {})}
    if name == "quarantine":
        return "quarantine/list", {}
    raise ValueError(name)


# -- talking to the daemon, or to its database when it is down --------------------------------------

class Session:
    """Asks the daemon; for a read-only command whose daemon is down, answers from the database and says so."""

    def __init__(self, config, texts: Texts, err):
        self.config = config
        self.texts = texts
        self.err = err
        self.client = ControlClient(config.control.socket)
        self.offline = None

    def ask(self, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The response's ``data``; raises :class:`Refused`, :class:`Unreachable` or :class:`DatabaseUnreadable`."""
        if self.offline is None:
            try:
                response = self.client.request(command, payload)
            except Unreachable as exc:
                if exc.why != "not_running" or command not in READ_ONLY:
                    raise
                self._go_offline()
            else:
                if response.get("status") == "ok":
                    return response.get("data")
                raise Refused(response.get("error") or {})
        try:
            return self.offline.answer(command, payload)
        except CommandError as error:
            raise Refused(error.as_error()) from None
        except Exception as exc:            # sqlite3.Error and kin: a damaged or foreign file
            raise DatabaseUnreadable(str(exc), daemon_down=True) from None

    def _go_offline(self) -> None:
        from ..ctl.offline import OfflineAnswers
        from ..ledger.read_only import OfflineStore, daemon_holds_lock

        path = self.config.store.path
        try:
            store = OfflineStore(path)
        except Exception as exc:            # missing file, no permission, not a database
            raise DatabaseUnreadable(str(exc), daemon_down=True) from None
        self.offline = OfflineAnswers(self.config, store)
        note = "offline_note_locked" if daemon_holds_lock(path) else "offline_note"
        print(self.texts(note, path=self.config.control.socket, db=path), file=self.err)

    def close(self) -> None:
        self.client.close()
        if self.offline is not None:
            self.offline.store.conn.close()


# -- commands -----------------------------------------------------------------------------------

def print_json(data: Any, out) -> None:
    out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def run_command(args, config, texts: Texts, session: Session, out, err) -> int:
    from ..ctl.screens import confirmation, job_view, jobs_table, quarantine_table, status_screen

    from ..ctl.printer_screen import clean_words, printer_screen

    command, payload = request_of(args)
    if args.command == "clean":     # the cycle takes as long as a card move, and the daemon answers after it
        session.client.timeout = max(session.client.timeout, config.printer.move_timeout_s + 30)
    data = session.ask(command, payload)
    if args.command == "clean":     # recorded only when the printer agrees (or cannot say): else exit 1
        words, recorded = clean_words(texts, data)
        print_json(data, out) if args.json else (out if recorded else err).write(words)
        return EXIT_OK if recorded else EXIT_REFUSED
    if args.json:
        print_json(data, out)
    elif args.command == "printer":
        out.write(printer_screen(texts, data))
    elif command == "status/get":
        out.write(status_screen(texts, data, config.tz, config.blanks.low_threshold))
    elif command == "job/list":
        out.write(jobs_table(texts, data["jobs"], config.tz))
    elif command == "job/get":
        out.write(job_view(texts, data, config.tz))
    elif command == "quarantine/list":
        out.write(quarantine_table(texts, data["quarantined"], config.tz))
    else:
        out.write(confirmation(texts, command, data, payload))
    return EXIT_OK


def parse_day(value: str, today: date, texts: Texts) -> date:
    if value.lower() in TODAY_WORDS:
        return today - timedelta(days=TODAY_WORDS[value.lower()])
    day = iso_day(value)            # YYYY-MM-DD only, as report/daily takes it
    if day is None:
        raise UsageError(texts("bad_date", value=value))
    return day


def parse_month(value: str, texts: Texts) -> tuple[int, int]:
    first = iso_day(value + "-01") if len(value) == 7 else None
    if first is None:
        raise UsageError(texts("bad_month", value=value))
    return first.year, first.month


class UsageError(Exception):
    """A command line that parses but makes no sense; exit status 2."""


def run_report(args, config, texts: Texts, session: Session, out, err) -> int:
    from ..ledger.monthly_report import month_days, month_report
    from ..ctl.report_text import report_csv, report_text

    if (args.date is None) == (args.month is None):
        raise UsageError(texts("report_which"))
    args.csv = args.csv or args.table is not None
    if args.csv and args.json:
        raise UsageError(texts("csv_json"))
    now = datetime.now(timezone.utc)
    today = now.astimezone(config.tz).date()
    if args.month:
        year, month = parse_month(args.month, texts)
        days = month_days(year, month, today)
        if not days:
            raise UsageError(texts("bad_month", value=args.month))
        data = month_report(lambda day: session.ask("report/daily", {"date": day.isoformat()}), days)
    else:
        data = session.ask("report/daily", {"date": parse_day(args.date, today, texts).isoformat()})
    if args.pdf:
        write_pdf(args.pdf, texts, data, config, now, err)
    if args.json:
        print_json(data, out)
    elif args.csv:
        out.write(report_csv(data, config.tz, args.table or "blanks"))
    else:
        out.write(report_text(texts, data, config.station.id, config.tz, config.station.card_types))
    return EXIT_OK


def write_pdf(path: str, texts: Texts, data, config, now: datetime, err) -> None:
    from ..ctl.report_pdf import PdfMissing, write_report_pdf

    try:
        pages = write_report_pdf(path, texts, data, config.station.id, config.tz, config.station.card_types, now)
    except PdfMissing as missing:
        raise UsageError(texts(missing.key, **missing.fields)) from None
    except OSError as exc:
        raise UsageError(texts("file_unwritable", path=path, detail=exc.strerror or exc)) from None
    print(texts("pdf_written", path=path, pages=pages), file=err)


def run_verify(args, config, texts: Texts, session: Session, out, err) -> int:
    from ..ledger.read_only import connect_read_only, verify

    try:
        conn = connect_read_only(config.store.path)
    except Exception as exc:
        raise DatabaseUnreadable(str(exc)) from None
    try:
        result = verify(conn)
    except Exception as exc:
        raise DatabaseUnreadable(str(exc)) from None
    finally:
        conn.close()
    if args.json:
        print_json(result, out)
    else:
        from ..ctl.screens import verify_screen

        out.write(verify_screen(texts, result))
    return EXIT_OK if result["ok"] else EXIT_REFUSED


RUNNERS: dict[str, Callable[..., int]] = {"report": run_report, "verify": run_verify}


# -- main ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None, out=None, err=None, environ=None) -> int:
    """Run kartuctl; return its exit status. No traceback ever reaches the operator."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out, err = out or sys.stdout, err or sys.stderr
    texts = Texts(language_from_argv(argv, os.environ if environ is None else environ))
    try:
        return _run(argv, texts, out, err)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our output went away (| head): say nothing more, and keep Python quiet at exit.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except Exception as exc:               # a bug: one line, never a traceback
        print(f"kartuctl: {texts('internal', detail=f'{type(exc).__name__}: {exc}')}", file=err)
        return EXIT_REFUSED


def _run(argv: list[str], texts: Texts, out, err) -> int:
    try:
        args = build_parser(texts).parse_args(argv)
    except SystemExit as exit_:           # --help (0) or a usage error (2), already printed by argparse
        return int(exit_.code or 0)
    args.json = getattr(args, "json", False)
    config_path = getattr(args, "config", DEFAULT_CONFIG)
    try:
        config = load(config_path)
    except ConfigError as error:
        for key, problem in error.problems:
            print(f"kartuctl: {texts('config_problem', path=config_path, key=key, problem=problem)}", file=err)
        return EXIT_USAGE
    session = Session(config, texts, err)
    try:
        return RUNNERS.get(args.command, run_command)(args, config, texts, session, out, err)
    except Refused as refused:
        if args.json:
            print_json({"error": refused.error}, out)
        else:
            from ..ctl.screens import refusal

            err.write(refusal(texts, refused.error))
        return EXIT_REFUSED
    except Unreachable as exc:
        print(f"kartuctl: {texts(exc.why, path=exc.path, detail=exc.detail or exc.path)}", file=err)
        return EXIT_UNREACHABLE
    except DatabaseUnreadable as exc:
        key = "down_and_unreadable" if exc.daemon_down else "db_unreadable"
        print(f"kartuctl: {texts(key, path=config.control.socket, db=config.store.path, detail=exc)}", file=err)
        return EXIT_UNREACHABLE
    except UsageError as exc:
        print(f"kartuctl: {exc}", file=err)
        return EXIT_USAGE
    finally:
        session.close()


if __name__ == "__main__":
    sys.exit(main())
