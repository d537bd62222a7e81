"""kartuctl's words in Bahasa Indonesia and English: the language from --lang or the locale, and every message."""

from __future__ import annotations

from datetime import date, datetime
from typing import Mapping

from ..ctl.printer_words import PRINTER_MESSAGES
from ..ctl.report_words import REPORT_MESSAGES

LANGUAGES = ("id", "en")

# key: (Bahasa Indonesia, English). Placeholders are str.format fields.
MESSAGES: dict[str, tuple[str, str]] = {
    # -- reaching the daemon --------------------------------------------------------------------
    "offline_note": ("kartud tidak berjalan (tidak ada yang menjawab di {path}); angka di bawah dibaca langsung "
                     "dari basis data {db}.",
                     "kartud is not running (nothing answers at {path}); the figures below were read directly "
                     "from the database {db}."),
    "offline_note_locked": ("soket kontrol {path} tidak menjawab, padahal kartud tampaknya berjalan; angka di "
                            "bawah dibaca langsung dari basis data {db}.",
                            "the control socket {path} does not answer although kartud seems to run; the figures "
                            "below were read directly from the database {db}."),
    "not_running": ("kartud tidak berjalan (tidak ada yang menjawab di {path}), jadi perintah ini tidak dijalankan. "
                    "Jalankan kartud dulu: sudo systemctl start kartud",
                    "kartud is not running (nothing answers at {path}), so nothing was done. Start it first: "
                    "sudo systemctl start kartud"),
    "denied": ("Anda tidak boleh membuka soket kontrol {path}. Minta administrator menambahkan Anda ke grup "
               "kartud (usermod -aG kartud NAMA_ANDA), lalu login ulang.",
               "you may not open the control socket {path}. Ask an administrator to add you to group kartud "
               "(usermod -aG kartud YOUR_NAME), then log in again."),
    "timeout": ("kartud tidak menjawab dalam waktu yang wajar ({detail}). Periksa: systemctl status kartud; "
                "journalctl -u kartud -n 50",
                "kartud did not answer in time ({detail}). Check: systemctl status kartud; journalctl -u kartud -n 50"),
    "closed": ("kartud memutus sambungan tanpa menjawab ({detail}). Periksa: journalctl -u kartud -n 50",
               "kartud hung up without answering ({detail}). Check: journalctl -u kartud -n 50"),
    "down_and_unreadable": ("kartud tidak berjalan (tidak ada yang menjawab di {path}) dan basis data {db} tidak "
                            "dapat dibaca: {detail}",
                            "kartud is not running (nothing answers at {path}) and the database {db} cannot be "
                            "read: {detail}"),
    "db_unreadable": ("basis data {db} tidak dapat dibaca: {detail}", "the database {db} cannot be read: {detail}"),
    "config_problem": ("konfigurasi {path}: {key}: {problem}", "configuration {path}: {key}: {problem}"),
    "internal": ("kartuctl gagal secara tak terduga ({detail}); laporkan pesan ini beserta perintahnya.",
                 "kartuctl failed unexpectedly ({detail}); please report this message with the command."),
    "refused": ("Ditolak oleh kartud ({code}): {message}", "Refused by kartud ({code}): {message}"),
    "pdf_missing": ("membuat PDF memerlukan paket fpdf2 (pip install 'fpdf2>=2.8,<3')",
                    "writing a PDF needs the fpdf2 package (pip install 'fpdf2>=2.8,<3')"),
    "pdf_font_missing": ("membuat PDF memerlukan font {path} (apt-get install fonts-dejavu-core)",
                         "writing a PDF needs the font {path} (apt-get install fonts-dejavu-core)"),
    "pdf_written": ("PDF ditulis ke {path} ({pages} halaman).", "PDF written to {path} ({pages} page(s))."),
    "file_unwritable": ("tidak dapat menulis {path}: {detail}", "cannot write {path}: {detail}"),
    "bad_date": ("tanggal harus YYYY-MM-DD, 'today' atau 'yesterday', bukan {value!r}",
                 "a date must be YYYY-MM-DD, 'today' or 'yesterday', not {value!r}"),
    "bad_month": ("bulan harus YYYY-MM, bukan {value!r}", "a month must be YYYY-MM, not {value!r}"),
    "report_which": ("sebutkan tepat satu: DATE atau --month YYYY-MM", "give exactly one of DATE or --month YYYY-MM"),
    "csv_json": ("--csv (atau --table) dan --json tidak bisa dipakai bersama",
                 "--csv (or --table) and --json cannot be used together"),
    # -- status ------------------------------------------------------------------------------------
    "station_line": ("Stasiun {station} | kartud {version} | {when}", "Station {station} | kartud {version} | {when}"),
    "l_mode": ("Keadaan", "Mode"), "l_today": ("Hari ini", "Today"), "l_next": ("Kartu berikut", "Next card"),
    "l_queue": ("Antrean", "Queue"), "l_doubt": ("Diragukan", "In doubt"), "l_blanks": ("Blangko", "Blanks"),
    "l_printer": ("Printer", "Printer"), "l_encoder": ("Encoder", "Encoder"), "l_faults": ("Gangguan", "Faults"),
    "l_paused": ("Dijeda karena", "Paused because"), "l_office": ("Kantor (MQTT)", "Office (MQTT)"),
    "link_up": ("terhubung ke {broker} sejak {since}", "connected to {broker} since {since}"),
    "link_down": ("TIDAK TERHUBUNG sejak {since}: {error}", "NOT CONNECTED since {since}: {error}"),
    "link_trying": ("belum terhubung (mencoba {broker} sejak {since})",
                    "not connected yet (trying {broker} since {since})"),
    "link_unknown": ("tidak diketahui: kartud tidak berjalan, hanya kartud yang tahu",
                     "unknown: kartud is not running, and only kartud knows"),
    "today_line": ("{used} dari batas {limit} ({printed} tercetak, {spoiled} rusak); sisa {left} hari ini",
                   "{used} of the limit of {limit} ({printed} printed, {spoiled} spoiled); {left} left today"),
    "next_at": ("pukul {time}", "at {time}"), "next_none": ("belum dijadwalkan", "not scheduled"),
    "queue_line": ("{queued} menunggu, {in_doubt} diragukan", "{queued} waiting, {in_doubt} in doubt"),
    "doubt_hint": ("Kartu-kartu ini hilang jejaknya di tengah pencetakan dan TIDAK akan dicetak ulang otomatis. "
                   "Periksa kartunya (hopper keluaran atau kotak tolak), lalu untuk setiap pekerjaan jalankan:",
                   "These cards lost track mid-print and will NOT be reprinted by themselves. Look at the card "
                   "(output hopper or reject box), then for each job run:"),
    "doubt_good": ("kartu ada dan baik", "the card is there and good"),
    "doubt_bad": ("kartu rusak atau tidak ada", "the card is damaged or missing"),
    "doubt_more": ("... dan {n} lagi: kartuctl jobs --state in_doubt",
                   "... and {n} more: kartuctl jobs --state in_doubt"),
    "blank_low": ("SEDIKIT (di bawah {threshold})", "LOW (below {threshold})"), "blank_out": ("HABIS", "OUT"),
    "connected": ("terhubung", "connected"), "disconnected": ("TIDAK TERHUBUNG", "NOT CONNECTED"),
    "printer_detail": ("{model} SN {serial}; pita {ribbon} cetakan lagi; {cleaning} kartu lagi sampai pembersihan",
                       "{model} SN {serial}; ribbon {ribbon} prints left; {cleaning} cards until cleaning"),
    "cleaning_left": ("{cleaning} kartu lagi sampai pembersihan", "{cleaning} cards until cleaning"),
    "no_faults": ("tidak ada", "none"), "since": ("sejak {time}", "since {time}"),
    "unknown": ("tidak diketahui", "unknown"),
    "interrupted": ("{n} kartu sedang dicetak saat kartud berhenti; begitu kartud jalan lagi, pekerjaannya "
                    "menjadi diragukan dan menunggu keputusan Anda (kartuctl status)",
                    "{n} card(s) were being printed when kartud stopped; once kartud runs again their jobs are in "
                    "doubt and wait for your decision (kartuctl status)"),
    "daemon_down": ("kartud TIDAK BERJALAN: tidak ada yang dicetak. Jalankan: sudo systemctl start kartud",
                    "kartud is NOT RUNNING: nothing prints. Start it: sudo systemctl start kartud"),
    # modes and reasons, as the state document names them
    "mode_printing": ("MENCETAK", "PRINTING"), "mode_waiting": ("MENUNGGU", "WAITING"),
    "mode_idle": ("SIAGA", "IDLE"), "mode_paused": ("DIJEDA", "PAUSED"), "mode_fault": ("GANGGUAN", "FAULT"),
    "why_queue_empty": ("tidak ada pekerjaan dalam antrean", "no job is queued"),
    "why_daily_limit_reached": ("batas harian tercapai; mencetak lagi besok", "the daily limit is reached; printing "
                                "resumes tomorrow"),
    "why_outside_working_hours": ("di luar jam kerja; mencetak lagi saat jam kerja mulai", "outside working hours; "
                                  "printing resumes when they begin"),
    "why_pacing": ("jeda antarkartu, agar batas harian tersebar merata sepanjang jam kerja (menjaga mutu)",
                   "pausing between cards so the daily limit spreads evenly over the working hours (quality)"),
    "why_cleaning_due": ("printer harus dibersihkan: masukkan kartu pembersih ke feeder lalu jalankan: kartuctl "
                         "clean (atau bersihkan dengan tangan, lalu: kartuctl cleaned)",
                         "the printer is due for cleaning: put a cleaning card in the feeder and run: kartuctl clean "
                         "(or clean it by hand, then: kartuctl cleaned)"),
    "why_out_of_blanks": ("blangko habis; isi printer dan catat: kartuctl blanks receive BATCH JENIS JUMLAH",
                          "out of blanks; load the printer and record them: kartuctl blanks receive BATCH TYPE COUNT"),
    "why_paused_by_operator": ("dijeda oleh petugas; lanjutkan dengan: kartuctl resume",
                               "paused by an operator; carry on with: kartuctl resume"),
    "why_printer_fault": ("printer perlu ditangani (lihat Gangguan)", "the printer needs a person (see Faults)"),
    "why_encoder_fault": ("encoder chip tidak dapat dipakai (lihat Gangguan)", "the chip encoder cannot be used "
                          "(see Faults)"),
    "why_in_doubt_jobs": ("ada kartu diragukan yang menunggu keputusan petugas", "cards in doubt wait for an "
                          "operator's decision"),
    # faults: what happened and what to do
    "fault_printer_disconnected": ("printer tidak menjawab: periksa kabel USB/serial dan dayanya",
                                   "the printer does not answer: check its USB/serial cable and power"),
    "fault_feeder_empty": ("tempat blangko di printer kosong: isi blangko",
                           "the printer's feeder is empty: load blanks"),
    "fault_cover_open": ("tutup printer terbuka: tutup kembali", "the printer's cover is open: close it"),
    "fault_no_ribbon": ("tidak ada pita di printer: pasang pita", "no ribbon in the printer: fit one"),
    "fault_ribbon_ended": ("pita habis: pasang pita baru", "the ribbon is used up: fit a new one"),
    "fault_card_jam": ("kartu macet di printer: keluarkan kartunya, lalu periksa pekerjaan yang diragukan",
                       "a card is jammed: take it out, then check the jobs in doubt"),
    "fault_reject_box_full": ("kotak tolak penuh: kosongkan (kartu rusak disimpan untuk berita acara)",
                              "the reject box is full: empty it (keep spoiled cards for the report)"),
    "fault_hopper_full": ("hopper keluaran penuh: ambil kartu yang sudah jadi", "the output hopper is full: take "
                          "the finished cards out"),
    "fault_head_cooling": ("kepala cetak sedang didinginkan; mencetak lagi dengan sendirinya", "the print head is "
                           "cooling down; printing resumes by itself"),
    "fault_cleaning_required": ("printer minta dibersihkan: masukkan kartu pembersih ke feeder lalu jalankan "
                                "kartuctl clean", "the printer asks to be cleaned: put a cleaning card in the "
                                "feeder, then run kartuctl clean"),
    "fault_wrong_blank": ("blangko di feeder bukan jenis kartu pekerjaan ini: isi blangko yang benar, lalu "
                          "kartuctl resume", "the feeder holds blanks of another card type than the job: load the "
                          "right blanks, then kartuctl resume"),
    "fault_encoder_disconnected": ("encoder chip tidak terjangkau: periksa pembaca kartu dan pcscd",
                                   "the chip encoder is unreachable: check the card reader and pcscd"),
    "fault_storage_error": ("basis data tidak dapat ditulis (disk penuh atau rusak?): lihat journalctl -u kartud",
                            "the database cannot be written (disk full or failing?): see journalctl -u kartud"),
    # -- jobs ----------------------------------------------------------------------------------------
    "state_queued": ("antre", "queued"), "state_printing": ("sedang dicetak", "printing"),
    "state_printed": ("tercetak", "printed"), "state_failed": ("gagal", "failed"),
    "state_cancelled": ("dibatalkan", "cancelled"), "state_expired": ("kedaluwarsa", "expired"),
    "state_in_doubt": ("DIRAGUKAN", "IN DOUBT"),
    "step_feeding": ("mengambil blangko", "feeding"), "step_encoding": ("menulis chip", "encoding"),
    "step_printing": ("mencetak", "printing"), "step_ejecting": ("mengeluarkan kartu", "ejecting"),
    "h_job": ("PEKERJAAN", "JOB"), "h_state": ("KEADAAN", "STATE"), "h_type": ("JENIS", "TYPE"),
    "h_nik": ("NIK", "NIK"), "h_tries": ("COBA", "TRIES"), "h_updated": ("DIPERBARUI", "UPDATED"),
    "h_reason": ("ALASAN", "REASON"),
    "no_jobs": ("Tidak ada pekerjaan.", "No jobs."),
    "jobs_shown": ("{n} pekerjaan ditampilkan (terbaru dulu; --limit untuk lebih banyak).",
                   "{n} job(s) shown (newest first; --limit for more)."),
    "f_job_id": ("Pekerjaan", "Job"), "f_record_id": ("Rekam cetak", "Record"),
    "f_card_type": ("Jenis kartu", "Card type"),
    "f_nik_masked": ("NIK", "NIK"), "f_state": ("Keadaan", "State"), "f_step": ("Langkah", "Step"),
    "f_reason": ("Alasan", "Reason"), "f_attempts": ("Percobaan", "Attempts"), "f_priority": ("Prioritas", "Priority"),
    "f_created_at": ("Diterima", "Received"), "f_updated_at": ("Diperbarui", "Updated"),
    "f_in_doubt_since": ("Diragukan sejak", "In doubt since"),
    "f_in_doubt_step": ("Kartu sampai di", "Card had reached"),
    "f_printed_at": ("Dicetak", "Printed"), "f_card_uid": ("UID chip", "Chip UID"), "f_batch_id": ("Batch blangko",
                                                                                                 "Blank batch"),
    "cancelled": ("Pekerjaan {job} dibatalkan; tidak akan dicetak.", "Job {job} is cancelled; it will not print."),
    "resolved_printed": ("Pekerjaan {job} diselesaikan: kartu dianggap TERCETAK dan final.",
                         "Job {job} is resolved: the card counts as PRINTED and is final."),
    "resolved_spoiled": ("Pekerjaan {job} diselesaikan: blangkonya RUSAK; pekerjaan {state}.",
                         "Job {job} is resolved: its blank is SPOILED; the job is {state}."),
    "paused": ("Antrean dijeda. Kartu yang sedang dicetak diselesaikan dulu; lanjutkan dengan: kartuctl resume",
               "The queue is paused. A card in the printer is finished first; carry on with: kartuctl resume"),
    "resumed": ("Antrean dilanjutkan.", "The queue is running again."),
    "received": ("Batch {batch}: blangko {type} diterima. Stok {type} sekarang {stock}.",
                 "Batch {batch}: {type} blanks received. {type} stock is now {stock}."),
    "adjusted": ("Stok {type} dikoreksi {delta:+d}. Stok sekarang {stock}.",
                 "{type} stock corrected by {delta:+d}. Stock is now {stock}."),
    "cleaned": ("Pembersihan printer dicatat; {cleaning} kartu lagi sampai pembersihan berikutnya.",
                "The cleaning is recorded; {cleaning} cards until the next one."),
    "mode_now": ("Keadaan sekarang: {mode}{why}", "Mode now: {mode}{why}"),
    # -- quarantine ----------------------------------------------------------------------------------
    "q_none": ("Tidak ada permintaan yang disisihkan.", "Nothing has been set aside."),
    "h_seq": ("NO", "NO"), "h_when": ("WAKTU", "WHEN"), "h_command": ("PERINTAH", "COMMAND"),
    "h_bytes": ("BITA", "BYTES"), "h_sha256": ("SHA256", "SHA256"), "h_why": ("SEBAB", "WHY"),
    "q_defect": ("kesalahan internal ({name})", "an internal error ({name})"),
    "q_died_twice": ("kartud berhenti dua kali saat menanganinya", "kartud stopped twice while handling it"),
    "q_shown": ("{n} permintaan disisihkan: sudah dijawab internal_error dan tidak akan ditangani lagi. Isinya "
                "tidak ditampilkan (bisa memuat data pribadi). Kirim nomor, waktu dan SHA256 ini kepada pengelola "
                "kartud bersama journalctl -u kartud di sekitar waktu itu.",
                "{n} request(s) set aside: each was answered internal_error and will not be handled again. Their "
                "content is not shown (it may hold personal data). Send these numbers, times and SHA256 to kartud's "
                "maintainers with journalctl -u kartud around those times."),
    # -- verify --------------------------------------------------------------------------------------
    "chain_ok": ("Rantai audit utuh: {rows} baris diperiksa.", "The audit chain is intact: {rows} rows checked."),
    "chain_broken": ("RANTAI AUDIT RUSAK: {detail}. Catatan sejak baris itu tidak dapat dipercaya; simpan salinan "
                     "basis data dan laporkan.",
                     "THE AUDIT CHAIN IS BROKEN: {detail}. Records from that row on cannot be trusted; keep a copy of "
                     "the database and report it."),
    "actors_ok": ("Setiap baris audit menyebut pelakunya ({named} baris{legacy}).",
                  "Every audit row names who did it ({named} rows{legacy})."),
    "actors_legacy": (", {n} baris lama dari sebelum pelaku dicatat",
                      ", {n} older rows from before actors were recorded"),
    "actors_bad": ("{n} BARIS AUDIT TIDAK MENYEBUT PELAKUNYA (baris {rows}); simpan salinan basis data dan laporkan.",
                   "{n} AUDIT ROWS DO NOT NAME WHO DID IT (rows {rows}); keep a copy of the database and report it."),
    "erasure_ok": ("Penghapusan data pribadi tercatat: {jobs} pekerjaan dalam {runs} kali penghapusan.",
                   "Erasure of personal data is on record: {jobs} jobs in {runs} erasure runs."),
    "erasure_bad": ("PENGHAPUSAN TIDAK TERCATAT: {jobs} pekerjaan dihapus data pribadinya, {counted} tercatat di "
                    "audit{which}; simpan salinan basis data dan laporkan.",
                    "ERASURE NOT ON RECORD: {jobs} jobs had their personal data erased, the audit counts {counted}"
                    "{which}; keep a copy of the database and report it."),
    "ledger_ok": ("Stok blangko {type} cocok dengan semua mutasinya.", "{type} blank stock matches all its movements."),
    "ledger_bad": ("Stok blangko {type} TIDAK cocok dengan mutasinya: {field} {stock} menurut stok, {moved} "
                   "menurut mutasi.",
                   "{type} blank stock does NOT match its movements: {field} is {stock} by the stock, {moved} by "
                   "the movements."),
}

MESSAGES.update(REPORT_MESSAGES)
MESSAGES.update(PRINTER_MESSAGES)

MONTHS = {"id": ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
                 "November", "Desember"),
          "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December")}
WEEKDAYS = {"id": ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"),
            "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")}


def language_from_environment(environ: Mapping[str, str]) -> str:
    """``id`` when the locale that decides messages names Indonesian (``id_ID.UTF-8``, ``id``), else ``en``.
    POSIX order: LC_ALL, then LC_MESSAGES, then LANG; the first one set decides."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return "id" if value.split(".")[0].split("_")[0].lower() in ("id", "in") else "en"
    return "en"


def language_from_argv(argv: list[str], environ: Mapping[str, str]) -> str:
    """``--lang`` from the command line if given (before parsing, so that --help is in that language too)."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--lang=") else argv[i + 1] if arg == "--lang" and \
            i + 1 < len(argv) else None
        if value in LANGUAGES:
            return value
    return language_from_environment(environ)


class Texts:
    """The messages of one language: ``texts("received", batch="B-1", type="KTP_EL", stock=40)``."""

    def __init__(self, lang: str):
        self.lang = lang if lang in LANGUAGES else "en"
        self._index = LANGUAGES.index(self.lang)

    def __call__(self, key: str, /, **fields) -> str:
        return MESSAGES[key][self._index].format(**fields)

    def pick(self, indonesian: str, english: str) -> str:
        """One of two texts given inline, for help strings used once."""
        return indonesian if self.lang == "id" else english

    def optional(self, prefix: str, code: str | None, default: str | None = None) -> str:
        """The words for ``prefix + code`` (a mode, reason, state or fault), or ``default``/the code itself."""
        if code is None:
            return default or ""
        entry = MESSAGES.get(prefix + code)
        return entry[self._index] if entry else (default if default is not None else code)

    def day(self, when: date) -> str:
        """``Jumat, 27 November 2026`` / ``Friday 27 November 2026``."""
        text = f"{when.day} {MONTHS[self.lang][when.month - 1]} {when.year}"
        return f"{WEEKDAYS[self.lang][when.weekday()]}{',' if self.lang == 'id' else ''} {text}"

    def month(self, year: int, month: int) -> str:
        return f"{MONTHS[self.lang][month - 1]} {year}"

    def moment(self, when: datetime) -> str:
        """A local time for people: ``27-11-2026 09:14 WIB`` / ``2026-11-27 09:14 WIB``."""
        stamp = when.strftime("%d-%m-%Y %H:%M" if self.lang == "id" else "%Y-%m-%d %H:%M")
        return f"{stamp} {when.tzname() or ''}".strip()
