"""The words of the blank reports (berita acara) in Bahasa Indonesia and English, for text, CSV notes and PDF."""

from __future__ import annotations

# key: (Bahasa Indonesia, English); merged into kartuctl's catalog (ctl_text.MESSAGES).
REPORT_MESSAGES: dict[str, tuple[str, str]] = {
    "title_daily": ("BERITA ACARA HARIAN PEMAKAIAN BLANGKO KTP-el / KIA", "DAILY BLANK REPORT (KTP-el / KIA)"),
    "title_month": ("REKAPITULASI BULANAN PEMAKAIAN BLANGKO KTP-el / KIA", "MONTHLY BLANK REPORT (KTP-el / KIA)"),
    "r_station": ("Stasiun", "Station"), "r_date": ("Tanggal", "Date"), "r_month": ("Bulan", "Month"),
    "r_days": ("tanggal {first} s.d. {last} ({n} hari)", "days {first} to {last} ({n} days)"),
    "r_blanks": ("Blangko", "Blanks"),
    "r_opening": ("Stok awal", "Opening stock"), "r_received": ("Diterima", "Received"),
    "r_printed": ("Tercetak", "Printed"), "r_spoiled": ("Rusak", "Spoiled"), "r_adjusted": ("Koreksi stok", "Adjusted"),
    "r_closing": ("Stok akhir", "Closing stock"),
    "c_day": ("Tgl", "Day"), "c_opening": ("Awal", "Open"), "c_received": ("Terima", "Recv"),
    "c_printed": ("Cetak", "Print"), "c_spoiled": ("Rusak", "Spoil"), "c_adjusted": ("Koreksi", "Adj"),
    "c_closing": ("Akhir", "Close"), "c_total": ("Jumlah", "Total"),
    "r_by_reason": ("Rusak menurut alasan", "Spoiled by reason"),
    "r_spoiled_list": ("Daftar kartu rusak (blangko untuk dimusnahkan): {n}",
                       "Spoiled cards (blanks to be destroyed): {n}"),
    "r_none": ("tidak ada", "none"),
    "s_no": ("No", "No"), "s_time": ("Waktu", "Time"), "s_type": ("Jenis", "Type"), "s_job": ("Pekerjaan", "Job"),
    "s_batch": ("Batch", "Batch"), "s_reason": ("Alasan", "Reason"),
    "r_jobs": ("Pekerjaan: {failed} gagal, {expired} kedaluwarsa, {cancelled} dibatalkan, {in_doubt} menjadi "
               "diragukan", "Jobs: {failed} failed, {expired} expired, {cancelled} cancelled, {in_doubt} went in "
               "doubt"),
    "r_balance": ("stok akhir = stok awal + diterima - tercetak - rusak + koreksi",
                  "closing = opening + received - printed - spoiled + adjusted"),
    "r_footer": ("Dibuat oleh kartuctl pada {when}. Angka dihitung ulang dari catatan mutasi blangko stasiun.",
                 "Made by kartuctl at {when}. Figures recomputed from the station's record of blank movements."),
    "sign_place": ("................................, {date}", "................................, {date}"),
    "sign_operator": ("Petugas", "Operator (Petugas)"),
    "sign_witness": ("Mengetahui", "Acknowledged by (Mengetahui)"),
    "sign_name": ("( ........................................ )", "( ........................................ )"),
    "sign_id": ("NIP. ...................................", "ID no. ................................"),
    # Why a blank was spoiled: the press's reasons and the printer's fault codes.
    "reason_encode_failed": ("chip gagal ditulis", "chip could not be encoded"),
    "reason_chip_too_large": ("berkas chip melebihi kapasitas chip", "chip files larger than the chip holds"),
    "reason_in_doubt_spoiled": ("diragukan, dinyatakan rusak oleh petugas", "in doubt, declared spoiled"),
    "reason_unprintable_face": ("gambar tidak dapat dicetak", "face could not be printed"),
    "reason_card_jam": ("kartu macet", "card jam"),
    "reason_printer_disconnected": ("printer terputus", "printer disconnected"),
    "reason_cover_open": ("tutup printer dibuka", "cover opened"),
    "reason_ribbon_ended": ("pita habis", "ribbon ended"), "reason_no_ribbon": ("tanpa pita", "no ribbon"),
    "reason_feeder_empty": ("blangko tidak masuk", "feeder empty"),
    "reason_reject_box_full": ("kotak tolak penuh", "reject box full"),
    "reason_hopper_full": ("hopper penuh", "hopper full"),
    "reason_wrong_blank": ("blangko jenis lain di feeder (ditolak tanpa dicetak)",
                           "a blank of another card type in the feeder (rejected unprinted)"),
    "reason_unknown": ("tanpa alasan tercatat", "no reason recorded"),
}
