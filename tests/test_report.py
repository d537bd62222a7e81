"""The daily report balances on every day of a simulated month and chains from one day to the next."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from card_faces import SMALL_FRONT

from kartud.rules.errors import CommandError
from kartud.room.fake_people import fake_job
from kartud.rules.jobs import validate_submission
from kartud.ledger.daily_report import daily_report
from kartud.ledger.store import OutOfBlanks

JAKARTA = ZoneInfo("Asia/Jakarta")


def test_a_month_of_daily_reports_balances_every_day(store, manual_clock):
    rng = random.Random(11)
    start = datetime(2026, 11, 1, 0, 30, tzinfo=JAKARTA)
    clock = manual_clock
    clock.set_wall(start)
    serial = 0
    for day in range(30):
        clock.set_wall(start + timedelta(days=day, hours=7))     # the office opens
        if day % 7 == 0:
            store.receive_blanks(f"B-{day}", "KTP_EL", 150, None)
            store.receive_blanks(f"K-{day}", "KIA", 40, None)
        if day % 10 == 5:
            store.adjust_blanks("KTP_EL", -2, "stocktake: two blanks bent", None)
        for _ in range(rng.randint(0, 25)):
            clock.advance(rng.randint(60, 900))
            serial += 1
            card_type = "KIA" if rng.random() < 0.2 else "KTP_EL"
            job = validate_submission(fake_job(rng, serial, card_type, job_id=f"j-{serial}",
                                               record_id=f"r-{serial}", front_png=SMALL_FRONT), ["KTP_EL", "KIA"])
            try:
                store.submit_job(job)
                store.claim(job.job_id)
            except (OutOfBlanks, CommandError):
                continue
            roll = rng.random()
            if roll < 0.8:
                store.mark_printed(job.job_id, None)
            elif roll < 0.95:
                store.mark_spoiled(job.job_id, rng.choice(["encode_failed", "card_jam"]), 3)
            else:
                store.mark_in_doubt(job.job_id, "interrupted")
                store.resolve_in_doubt(job.job_id, rng.choice(["printed", "spoiled"]), "looked at it", 3)

    previous_closing = {"KTP_EL": 0, "KIA": 0}
    totals = {"KTP_EL": {"received": 0, "printed": 0, "spoiled": 0, "adjusted": 0},
              "KIA": {"received": 0, "printed": 0, "spoiled": 0, "adjusted": 0}}
    for day in range(30):
        report = daily_report(store.conn, date(2026, 11, 1) + timedelta(days=day), JAKARTA)
        for card_type, b in report["blanks"].items():
            assert b["closing"] == b["opening"] + b["received"] - b["printed"] - b["spoiled"] + b["adjusted"]
            assert b["opening"] == previous_closing[card_type]
            previous_closing[card_type] = b["closing"]
            for kind in totals[card_type]:
                totals[card_type][kind] += b[kind]
        assert sum(report["spoiled"].values()) == len(report["spoiled_cards"]) == \
            sum(b["spoiled"] for b in report["blanks"].values())
        # Recomputing gives the same figures: the report is derived, not counted.
        assert daily_report(store.conn, date(2026, 11, 1) + timedelta(days=day), JAKARTA) == report

    stock = store.stock()
    for card_type, sums in totals.items():
        for kind, value in sums.items():
            assert stock[card_type][kind] == value, (card_type, kind)
        assert previous_closing[card_type] == stock[card_type]["in_stock"] + stock[card_type]["reserved"]
    assert totals["KTP_EL"]["printed"] > 100 and totals["KTP_EL"]["spoiled"] > 5


def test_the_local_day_is_the_stations_not_utc(store, manual_clock):
    # 06:30 in Jakarta on the 2nd is 23:30 UTC on the 1st: the card belongs to the 2nd.
    manual_clock.set_wall(datetime(2026, 11, 1, 23, 30, tzinfo=timezone.utc))
    store.receive_blanks("B", "KIA", 5, None)
    job = validate_submission(fake_job(random.Random(1), 1, "KIA", job_id="j", record_id="r", front_png=SMALL_FRONT),
                              ["KIA"])
    store.submit_job(job)
    store.claim("j")
    store.mark_printed("j", None)
    assert daily_report(store.conn, date(2026, 11, 2), JAKARTA)["printed"] == 1
    assert daily_report(store.conn, date(2026, 11, 1), JAKARTA)["printed"] == 0
