"""Each fact has one owner: the daemon and kartuctl without it read the day's cards through the same code."""

from __future__ import annotations

from datetime import datetime, timezone

from store_fixtures import TEST_KEY, key_file
from test_pacing import new_job

from kartud.ctl.offline import OfflineAnswers
from kartud.ledger.read_only import OfflineStore
from kartud.ledger.station_facts import gather
from kartud.ledger.store import Store
from kartud.rules.clock import ManualClock
from kartud.rules.config import from_dict
from kartud.service.commands import CommandsHost
from kartud.service.control_socket import ControlHost
from kartud.service.daemon import Daemon
from kartud.service.intake import IntakeHost
from kartud.service.press import PressHost


def test_a_claim_taken_back_is_no_card_started_for_the_daemon_nor_for_kartuctl(tmp_path):
    path = str(tmp_path / "kartud.db")
    config = from_dict({"station": {"id": "s-1", "card_types": ["KIA"]}, "store": {"path": path}})
    clock = ManualClock(datetime(2026, 11, 23, 2, tzinfo=timezone.utc))        # 09:00 in Jakarta
    store = Store(path, clock, key=TEST_KEY)
    store.open()
    store.receive_blanks("B", "KIA", 10, None)
    job = new_job(1)
    store.submit_job(job)
    store.claim(job.job_id)
    store.release_claim(job.job_id, "head_cooling")      # the feed was refused: no card moved
    daemon_says = gather(store, clock.now(), config.tz, clock.monotonic(), clock.boot_id).started_today
    offline_says = OfflineAnswers(config, OfflineStore(path), now=clock.now()).status()["today"]["started"]
    assert daemon_says == offline_says == 0


def test_the_daemon_is_the_host_every_part_names(tmp_path):
    config = from_dict({"station": {"id": "s-1"}, "store": {"path": str(tmp_path / "kartud.db"),
                                                             "key_file": key_file(tmp_path)},
                        "printer": {"transport": "sim"}, "encoder": {"backend": "sim"}})
    daemon = Daemon(config, ManualClock(datetime(2026, 11, 23, 2, tzinfo=timezone.utc)))
    for host in (PressHost, CommandsHost, IntakeHost, ControlHost):
        assert isinstance(daemon, host), f"the daemon lacks part of {host.__name__}"
