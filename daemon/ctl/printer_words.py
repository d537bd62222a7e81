"""The words of ``kartuctl printer`` and ``kartuctl clean`` in Bahasa Indonesia and English."""

from __future__ import annotations

# key: (Bahasa Indonesia, English); merged into kartuctl's catalog (words.MESSAGES).
PRINTER_MESSAGES: dict[str, tuple[str, str]] = {
    "p_title": ("Printer", "Printer"),
    "p_link": ("Sambungan", "Link"), "p_model": ("Model", "Model"), "p_serial": ("Nomor seri", "Serial number"),
    "p_firmware": ("Firmware", "Firmware"), "p_ribbon": ("Pita", "Ribbon"),
    "p_printed": ("Kartu dimasukkan", "Cards fed"), "p_panels": ("Panel tercetak", "Panels printed"),
    "p_cleanings": ("Pembersihan", "Cleanings"), "p_cleaning": ("Sampai pembersihan", "Until cleaning"),
    "p_ribbon_words": ("{type}, {left} cetakan lagi", "{type}, {left} prints left"),
    "p_cleaning_printer": ("{n} kartu (hitungan printer)", "{n} cards (the printer's count)"),
    "p_cleaning_ledger": ("{n} kartu (hitungan kartud, printer tidak memberi hitungannya)",
                          "{n} cards (kartud's count; the printer does not give its own)"),
    "p_cleaning_due": ("SEKARANG: masukkan kartu pembersih ke feeder lalu jalankan: kartuctl clean",
                       "NOW: put a cleaning card in the feeder, then run: kartuctl clean"),
    "p_not_running": ("kartud tidak berjalan: yang dikatakan printer tentang dirinya hanya diketahui saat kartud "
                      "berjalan", "kartud is not running: what the printer says about itself is known only while "
                      "kartud runs"),
    "p_not_said": ("tidak disebut printer", "not given by the printer"),
    "clean_done": ("Siklus pembersihan printer selesai dan printer menyatakan bersih; pembersihan dicatat. {n} kartu "
                   "lagi sampai pembersihan berikutnya.", "The printer's cleaning cycle ran and the printer says it is "
                   "clean; the cleaning is recorded. {n} cards until the next one."),
    "clean_unknown": ("Siklus pembersihan printer selesai (printer ini tidak melaporkan keadaan bersihnya); "
                      "pembersihan dicatat.", "The printer's cleaning cycle ran (this printer does not report "
                      "whether it is clean); the cleaning is recorded."),
    "clean_not_done": ("Pembersihan TIDAK dicatat: {why}", "The cleaning is NOT recorded: {why}"),
}

