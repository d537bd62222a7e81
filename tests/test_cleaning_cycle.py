"""maintenance/cleaned with run_cycle: the printer's own cycle runs, and the ledger's count restarts only on its word."""

from __future__ import annotations

import types
from datetime import datetime, timezone

from command_desk import Desk
from printer_fixtures import link
from store_fixtures import key_file

from kartud.hw.sim.evolis_sim import SimSettings
from kartud.rules.clock import ManualClock
from kartud.rules.config import from_dict
from kartud.service.cleaning_cycle import CleaningHost
from kartud.service.daemon import Daemon


class CleaningDesk(Desk):
    """The commands on a real store, with a real driver on a simulated printer (device calls run at once)."""

    def __init__(self, store, printer):
        super().__init__(store)
        self.printer = printer
        self.press = types.SimpleNamespace(current_job=None)

    async def device(self, fn, *args):
        return fn(*args)


def cleanings(store) -> int:
    return store.conn.execute("SELECT COUNT(*) FROM cleanings").fetchone()[0]


def test_the_cycle_runs_and_is_recorded_when_the_printer_says_it_is_clean(store, tmp_path, manual_clock):
    with link("usb", tmp_path, manual_clock, sim_settings=SimSettings(cleaning_every=5)) as joined:
        joined.sim.inject("cleaning_required")
        desk = CleaningDesk(store, joined.printer)
        answer = desk.ask("maintenance/cleaned", {"run_cycle": True, "note": "kartu pembersih"})
        assert answer["status"] == "ok"
        assert answer["data"]["cleaning_cycle"] == {"ran": True, "printer_says": "done", "cards_until_cleaning": 5}
        assert joined.sim.counters["cleanings"] == 1 and joined.sim.cards_since_cleaning == 0   # the printer's own
        assert cleanings(store) == 1


def test_a_cycle_the_printer_does_not_confirm_is_not_recorded(store, tmp_path, manual_clock):
    with link("usb", tmp_path, manual_clock, firmware="dll") as joined:
        joined.sim.inject("cleaning_required")
        desk = CleaningDesk(store, joined.printer)
        assert joined.printer.status().connected
        joined.sim.reply_overrides.extend([b"OK\r", b"NEED CLEANING\r"])       # Scp, then Rlr;c read back
        answer = desk.ask("maintenance/cleaned", {"run_cycle": True})
        cycle = answer["data"]["cleaning_cycle"]
        assert cycle["ran"] and cycle["printer_says"] == "still_due" and "cleaning card" in cycle["why"]
        assert cleanings(store) == 0


def test_no_cycle_while_a_card_is_on_its_way_and_nothing_recorded(store, tmp_path, manual_clock):
    with link("usb", tmp_path, manual_clock) as joined:
        desk = CleaningDesk(store, joined.printer)
        desk.press.current_job = "j-0001"
        cycle = desk.ask("maintenance/cleaned", {"run_cycle": True})["data"]["cleaning_cycle"]
        assert cycle["ran"] is False and "j-0001" in cycle["why"] and "pause" in cycle["why"]
        assert joined.sim.counters["cleanings"] == 0 and cleanings(store) == 0


def test_a_cycle_the_printer_refuses_names_the_fault(store, tmp_path, manual_clock):
    with link("usb", tmp_path, manual_clock) as joined:
        joined.printer.insert_card(True)                # a card inside: the printer refuses to clean
        desk = CleaningDesk(store, joined.printer)
        cycle = desk.ask("maintenance/cleaned", {"run_cycle": True})["data"]["cleaning_cycle"]
        assert cycle["ran"] is False and cycle["fault"] == "card_jam" and cleanings(store) == 0
        joined.printer.reject()


def test_run_cycle_must_be_a_boolean(store):
    answer = Desk(store).ask("maintenance/cleaned", {"run_cycle": "yes"})
    assert answer["status"] == "error" and answer["error"]["code"] == "invalid_payload"
    assert answer["error"]["details"]["problems"][0]["field"] == "run_cycle"


def test_without_run_cycle_nothing_changes_for_the_operators_word(store):
    answer = Desk(store).ask("maintenance/cleaned", {"note": "by hand"})
    assert answer["status"] == "ok" and "cleaning_cycle" not in answer["data"] and cleanings(store) == 1


def test_a_desk_without_a_printer_says_so(store):
    cycle = Desk(store).ask("maintenance/cleaned", {"run_cycle": True})["data"]["cleaning_cycle"]
    assert cycle == {"ran": False, "printer_says": "unknown", "why": "this station has no printer to clean"}
    assert cleanings(store) == 0


def test_the_daemon_is_a_cleaning_host(tmp_path):
    config = from_dict({"station": {"id": "s-1"}, "store": {"path": str(tmp_path / "kartud.db"),
                                                             "key_file": key_file(tmp_path)},
                        "printer": {"transport": "sim"}, "encoder": {"backend": "sim"}})
    daemon = Daemon(config, ManualClock(datetime(2026, 11, 23, 2, tzinfo=timezone.utc)))
    assert isinstance(daemon, CleaningHost) and daemon.press.current_job is None
