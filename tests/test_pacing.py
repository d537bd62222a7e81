"""Quality before speed: the scheduler over random histories and clocks, restarts and wall-clock jumps."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from store_fixtures import TEST_KEY

from kartud.rules.calendar import WorkingCalendar
from kartud.rules.clock import ManualClock
from kartud.rules.jobs import NewJob
from kartud.rules.scheduler import Facts, decide
from kartud.ledger.station_facts import gather
from kartud.ledger.store import Store

JAKARTA = ZoneInfo("Asia/Jakarta")


def new_job(serial: int) -> NewJob:
    nik = f"99{serial:014d}"
    return NewJob(f"j-{serial}", f"r-{serial}", "KIA", nik, b"png", None, None, 0, None, None,
                  hashlib.sha256(nik.encode()).hexdigest())


class Station:
    """The scheduler driven by a real store and a manual clock, as the daemon drives it."""

    def __init__(self, directory: str, clock: ManualClock, daily: int, hours: list[str], pacing: str,
                 holidays: list[str] = (), tz=JAKARTA):
        self.directory, self.clock, self.daily, self.pacing, self.tz = directory, clock, daily, pacing, tz
        self.calendar = WorkingCalendar(hours, list(holidays), tz)
        self.store = self._open()
        self.store.receive_blanks("B", "KIA", 100000, None)
        self.serial = 0
        self.starts: list[datetime] = []
        self.monos: list[float] = []               # when each card started on the monotonic clock
        self.decisions: list[tuple] = []

    def _open(self) -> Store:
        store = Store(f"{self.directory}/k.db", self.clock, key=TEST_KEY)
        store.open()
        return store

    def restart(self) -> None:
        """What a crash and restart leaves: the database, nothing else."""
        self.store.close()
        self.store = self._open()

    def decide(self):
        now = self.clock.now().astimezone(self.tz)
        ledger = gather(self.store, now, self.tz, self.clock.monotonic(), self.clock.boot_id)
        facts = Facts(now=now, paused=False, printer_faults=(), encoder_fault=False, queued_by_type={"KIA": 1},
                      in_doubt=0, in_stock={"KIA": 1}, started_today=ledger.started_today, daily_limit=self.daily,
                      calendar=self.calendar, pacing=self.pacing, last_start=ledger.last_start,
                      clock_behind=ledger.clock_behind, day_ends_at=ledger.day_ends_at)
        return decide(facts)

    def run_until(self, end: datetime, card_s: float) -> None:
        while self.clock.now() < end:
            decision = self.decide()
            self.decisions.append((self.clock.now(), decision.mode, decision.reason))
            if decision.may_start:
                self.serial += 1
                job = new_job(self.serial)
                self.store.submit_job(job)
                self.store.claim(job.job_id)
                self.starts.append(self.clock.now().astimezone(self.tz))
                self.monos.append(self.clock.monotonic())
                self.clock.advance(card_s)
                self.store.mark_printed(job.job_id, None)
            else:
                wake = min(decision.next_print_at or self.clock.now() + timedelta(minutes=10), end)
                self.clock.advance(max(1.0, (wake - self.clock.now()).total_seconds()))


spans = st.lists(st.tuples(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
                           st.integers(0, 20), st.integers(1, 4)), min_size=1, max_size=4)


def to_hours(raw) -> list[str]:
    hours, used = [], set()
    for day, start, length in raw:
        if day in used:
            continue
        used.add(day)
        hours.append(f"{day} {start:02d}:00-{min(24, start + length):02d}:00")
    return hours


@settings(max_examples=25, deadline=None)
@given(daily=st.integers(1, 40), raw_hours=spans, pacing=st.sampled_from(["even", "none"]),
       card_s=st.integers(15, 120), start_offset_h=st.integers(0, 24 * 7), restart_every=st.integers(0, 9))
def test_random_histories_keep_every_limit(daily, raw_hours, pacing, card_s, start_offset_h, restart_every):
    hours = to_hours(raw_hours)
    start = datetime(2026, 11, 23, tzinfo=JAKARTA) + timedelta(hours=start_offset_h)
    directory = tempfile.mkdtemp()
    try:
        clock = ManualClock(start)
        station = Station(directory, clock, daily, hours, pacing)
        end = start + timedelta(days=3)
        steps = 0
        while clock.now() < end:
            station.run_until(min(end, clock.now() + timedelta(hours=5)), card_s)
            steps += 1
            if restart_every and steps % restart_every == 0:
                station.restart()
        per_day: dict[date, list[datetime]] = {}
        for moment in station.starts:
            per_day.setdefault(moment.date(), []).append(moment)
            assert station.calendar.is_working(moment), f"{moment} is outside {hours}"
        for day, day_starts in per_day.items():
            assert len(day_starts) <= daily
            if pacing == "even":
                for index in range(1, len(day_starts)):
                    gap = (day_starts[index] - day_starts[index - 1]).total_seconds()
                    remaining = station.calendar.remaining_today(day_starts[index])
                    # The rule: a start waits until gap x cards-still-allowed >= working time left. The
                    # ledger keeps times to the second, so each gap may be up to a second short.
                    allowed = daily - index
                    assert (gap + 1.0) * allowed >= remaining - 1e-6, (day, index, gap, remaining)
    finally:
        shutil.rmtree(directory)


def test_restarts_at_any_instant_change_no_decision(tmp_path):
    runs = []
    for restart in (False, True):
        directory = tmp_path / str(restart)
        directory.mkdir()
        clock = ManualClock(datetime(2026, 11, 23, 7, 0, tzinfo=JAKARTA))
        station = Station(str(directory), clock, 20, ["mon-fri 08:00-14:00"], "even")
        for _ in range(40):
            station.run_until(clock.now() + timedelta(minutes=47), 15)
            if restart:
                station.restart()
        runs.append(station.starts)
    assert runs[0] == runs[1] and len(runs[0]) > 20


def test_two_hundred_cards_over_a_six_hour_day_start_about_every_108_seconds(tmp_path, manual_clock):
    clock = manual_clock
    clock.set_wall(datetime(2026, 11, 23, 7, 0, tzinfo=JAKARTA))
    station = Station(str(tmp_path), clock, 200, ["mon-fri 08:00-14:00"], "even")
    station.run_until(datetime(2026, 11, 23, 15, 0, tzinfo=JAKARTA), 15)
    starts = station.starts
    assert len(starts) == 200 and starts[0].hour == 8 and starts[-1] < datetime(2026, 11, 23, 14, 0, tzinfo=JAKARTA)
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
    assert 100 <= sum(gaps) / len(gaps) <= 109 and min(gaps) >= 100


def test_a_late_start_catches_up_without_bursting(tmp_path, manual_clock):
    clock = manual_clock
    clock.set_wall(datetime(2026, 11, 23, 13, 0, tzinfo=JAKARTA))   # the box was off until 13:00
    station = Station(str(tmp_path), clock, 200, ["mon-fri 08:00-14:00"], "even")
    station.run_until(datetime(2026, 11, 23, 14, 0, tzinfo=JAKARTA), 15)
    gaps = [(b - a).total_seconds() for a, b in zip(station.starts, station.starts[1:])]
    assert min(gaps) >= 15 and len(station.starts) >= 200 * 0 + 100     # printer pace, most of the hour used
    assert len(station.starts) <= 200


def test_a_wall_clock_jumping_forward_opens_no_new_day(tmp_path, manual_clock):
    clock = manual_clock
    clock.set_wall(datetime(2026, 11, 23, 8, 0, tzinfo=JAKARTA))        # where the test starts, before any reading
    station = Station(str(tmp_path), clock, 10, ["mon-sun 00:00-24:00"], "none")
    station.run_until(datetime(2026, 11, 23, 10, 0, tzinfo=JAKARTA), 15)
    assert len(station.starts) == 10
    clock.set_wall(datetime(2026, 11, 24, 10, 0, tzinfo=JAKARTA))       # NTP says it is tomorrow already
    decision = station.decide()
    assert (decision.mode, decision.reason) == ("waiting", "daily_limit_reached")
    clock.advance(14 * 3600)                                            # the real next day comes
    assert station.decide().may_start


def test_a_forward_jump_late_in_a_long_working_day_reopens_no_limit(tmp_path, manual_clock):
    # Issue 13: with hours that start early, a jump forward in the afternoon reopened the limit.
    clock = manual_clock
    clock.set_wall(datetime(2026, 11, 23, 6, 0, tzinfo=JAKARTA))
    station = Station(str(tmp_path), clock, 200, ["mon-sun 06:00-18:00"], "even")
    station.run_until(datetime(2026, 11, 23, 17, 0, tzinfo=JAKARTA), 15)
    assert 170 <= len(station.starts) < 200
    clock.set_wall(datetime(2026, 11, 24, 7, 0, tzinfo=JAKARTA))        # +14 h at 17:00: "tomorrow morning"
    station.run_until(datetime(2026, 11, 24, 14, 0, tzinfo=JAKARTA), 15)   # the rest of the real day
    assert len(station.starts) <= 200                                   # 237 before issue 13
    clock.advance(60)                                                   # the real next day has come
    assert station.decide().may_start


def test_a_limit_held_by_the_day_before_a_jump_says_when_that_day_ends(tmp_path, manual_clock):
    clock = manual_clock
    clock.set_wall(datetime(2026, 11, 23, 6, 0, tzinfo=JAKARTA))
    station = Station(str(tmp_path), clock, 10, ["mon-sun 06:00-18:00"], "none")
    station.run_until(datetime(2026, 11, 23, 8, 0, tzinfo=JAKARTA), 15)
    clock.set_wall(datetime(2026, 11, 24, 1, 0, tzinfo=JAKARTA))        # +17 h at 08:00
    decision = station.decide()
    assert (decision.mode, decision.reason) == ("waiting", "daily_limit_reached")
    # The day of those ten cards ends at its midnight, 16 h from now: 17:00 by the clock as it now reads,
    # inside working hours; not tomorrow's opening by the new clock.
    assert decision.next_print_at == datetime(2026, 11, 24, 17, 0, tzinfo=JAKARTA)
    clock.advance(16 * 3600)
    assert station.decide().may_start


@example(daily=1, raw_hours=[("mon", 0, 1), ("tue", 0, 1)], pacing="even", start_offset_h=0, jumps=[(1, 1)])
@settings(max_examples=25, deadline=None)
@given(daily=st.integers(1, 30), raw_hours=spans, pacing=st.sampled_from(["even", "none"]),
       start_offset_h=st.integers(0, 24 * 7), jumps=st.lists(st.tuples(st.integers(1, 40), st.integers(1, 60 * 72)),
                                                           min_size=1, max_size=3))
def test_forward_jumps_within_a_boot_never_print_past_the_limit_in_a_real_day(daily, raw_hours, pacing,
                                                                             start_offset_h, jumps):
    hours = to_hours(raw_hours)
    start = datetime(2026, 11, 23, tzinfo=JAKARTA) + timedelta(hours=start_offset_h)
    directory = tempfile.mkdtemp()
    try:
        clock = ManualClock(start)
        station = Station(directory, clock, daily, hours, pacing)
        for run_h, jump_min in jumps:                   # run a while, then the wall clock leaps ahead
            station.run_until(clock.now() + timedelta(hours=run_h), 30)
            clock.set_wall(clock.now() + timedelta(minutes=jump_min))
        station.run_until(clock.now() + timedelta(hours=30), 30)
        # Whichever wall clock was right, no day of it in which a card was started by it got more: a
        # "frame" is a wall clock between two jumps, wall time minus monotonic time.
        frame_of = [round(wall.timestamp() - mono) for wall, mono in zip(station.starts, station.monos)]
        for offset in set(frame_of):
            per_day: dict[date, int] = {}
            for mono in station.monos:
                day = datetime.fromtimestamp(mono + offset, JAKARTA).date()
                per_day[day] = per_day.get(day, 0) + 1
            for mono in (m for m, frame in zip(station.monos, frame_of) if frame == offset):
                assert per_day[datetime.fromtimestamp(mono + offset, JAKARTA).date()] <= daily, (offset, per_day)
    finally:
        shutil.rmtree(directory)


def test_a_wall_clock_back_in_1970_stops_the_station(tmp_path, manual_clock):
    clock = manual_clock
    clock.set_wall(datetime(2026, 11, 23, 8, 0, tzinfo=JAKARTA))        # where the test starts, before any reading
    station = Station(str(tmp_path), clock, 10, ["mon-sun 00:00-24:00"], "none")
    station.run_until(datetime(2026, 11, 23, 9, 0, tzinfo=JAKARTA), 15)
    clock.set_wall(datetime(1970, 1, 1, 0, 0, 30, tzinfo=timezone.utc))  # an RTC-less Pi just booted
    station.restart()
    decision = station.decide()
    assert (decision.mode, decision.reason) == ("fault", "clock_not_set")


def test_holidays_and_weekends_are_outside_working_hours(tmp_path):
    (tmp_path / "h").mkdir()
    clock = ManualClock(datetime(2026, 12, 24, 12, 0, tzinfo=JAKARTA))   # a Thursday
    station = Station(str(tmp_path), clock, 10, ["mon-fri 08:00-14:00"], "even", holidays=["2026-12-25"])
    station.run_until(datetime(2026, 12, 29, 0, 0, tzinfo=JAKARTA), 15)
    days = sorted({s.date().isoformat() for s in station.starts})
    assert days == ["2026-12-24", "2026-12-28"]                          # not Christmas, not the weekend
    # After Thursday's ten, the station says it waits for the limit until Monday's opening...
    assert ("waiting", "daily_limit_reached") in [d[1:] for d in station.decisions]
    # ...and on the holiday itself, with cards to spare, it says it is outside working hours.
    holiday = Station(str(tmp_path / "h"), ManualClock(datetime(2026, 12, 25, 9, 0, tzinfo=JAKARTA)), 10,
                      ["mon-fri 08:00-14:00"], "even", holidays=["2026-12-25"])
    decision = holiday.decide()
    assert (decision.mode, decision.reason) == ("waiting", "outside_working_hours")
    assert decision.next_print_at == datetime(2026, 12, 28, 8, 0, tzinfo=JAKARTA)


def test_a_station_in_a_zone_with_daylight_saving_keeps_its_hours_across_the_change(tmp_path, manual_clock):
    berlin = ZoneInfo("Europe/Berlin")
    clock = manual_clock
    clock.set_wall(datetime(2026, 3, 28, 0, 0, tzinfo=berlin))      # clocks go forward on 29 March
    station = Station(str(tmp_path), clock, 4, ["mon-sun 01:00-05:00"], "even", tz=berlin)
    station.run_until(datetime(2026, 3, 31, 0, 0, tzinfo=berlin), 60)
    per_day: dict[str, list[datetime]] = {}
    for moment in station.starts:
        per_day.setdefault(moment.date().isoformat(), []).append(moment)
    assert sorted(per_day) == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert all(len(v) == 4 for v in per_day.values())
    for moment in per_day["2026-03-29"]:                                 # a 23-hour day: 01:00-05:00 is 3 hours
        assert station.calendar.is_working(moment) and moment.hour in (1, 3, 4)
    assert station.calendar.working_seconds(date(2026, 3, 29)) == 3 * 3600


def test_a_claim_taken_back_because_nothing_was_fed_does_not_count_against_the_day(tmp_path, manual_clock):
    clock = manual_clock
    clock.set_wall(datetime(2026, 11, 23, 9, 0, tzinfo=JAKARTA))
    station = Station(str(tmp_path), clock, 2, ["mon-sun 00:00-24:00"], "none")
    job = new_job(1)
    station.store.submit_job(job)
    station.store.claim(job.job_id)
    station.store.release_claim(job.job_id, "head_cooling")      # the printer refused the feed
    ledger = gather(station.store, clock.now(), JAKARTA, clock.monotonic(), clock.boot_id)
    assert ledger.started_today == 0 and station.store.cards_since_cleaning() == 0
    station.run_until(datetime(2026, 11, 23, 10, 0, tzinfo=JAKARTA), 15)
    assert len(station.starts) == 2                                  # the whole limit is still there
