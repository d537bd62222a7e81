"""A print room whose disk loses power: the daemon's files on a power-cut filesystem, the printer its own process.

The daemon's ledger, its personal-data file and the station's key file live on a
:class:`~kartud.room.power_cut_fs.PowerCutFilesystem`; the simulator's record of what physically left
the printer (``cards/``) stays on the real disk, as the printed cards stay in the hopper. A
:meth:`PowerCutRoom.cut` is a power cut of the whole box: the daemon and the printer process die
together (SIGKILL), the disk forgets what was not fsynced, and the printer comes back empty-handed
(a card inside it at the cut was never recorded as leaving: a person finds it in the printer).
"""

from __future__ import annotations

import os
import random
import threading

from pcsc_fixtures import PcscRoom

from kartud.ledger.station_key import make_key
from kartud.room.power_cut_fs import PowerCutFilesystem


class PowerCutRoom(PcscRoom):
    """A :class:`PcscRoom` (printer over a pty, chip through pcscd) whose store is on ``disk``."""

    def __init__(self, directory, broker, pcscd, disk: PowerCutFilesystem):
        super().__init__(directory, broker, pcscd)
        self.disk = disk
        key = os.path.join(disk.mountpoint, "nik.key")
        make_key(key, self.db_path)                          # as `kartud make-key` does on a box: fsynced
        self.overrides.update({"store.path": f'"{self.db_path}"', "store.key_file": f'"{key}"'})
        self.cuts = 0

    @property
    def db_path(self) -> str:
        return os.path.join(self.disk.mountpoint, "kartud.db")

    @property
    def config_path(self) -> str:
        # test_crash's settle() speeds the in-process simulator's clock; this printer is a process in real time.
        self.overrides.pop("sim.clock_speed", None)
        return super().config_path

    def cut(self) -> None:
        """Power off: SIGKILL the daemon and the printer together, and the disk forgets what was not synced."""
        for process in (self.process, self.sim.process if self.sim else None):
            if process is not None and process.poll() is None:
                process.kill()
        for process in (self.process, self.sim.process if self.sim else None):
            if process is not None:
                process.wait(10)
        self.disk.power_cut()
        self.cuts += 1

    def power_on(self, wait_online: bool = False) -> None:
        """The box comes back: the daemon starts while the printer (empty-handed) boots beside it;
        ``wait_online`` waits for this daemon's "online" (not a retained one)."""
        if wait_online:
            office = self.connect()
            with office.state_changed:
                office.availability = None
        self.start(wait_online=False)
        self.start_printer()
        if wait_online:
            self.office.wait_availability("online", timeout=30)

    def files_outside_sqlite(self) -> list[str]:
        """What the daemon keeps on its disk besides what was examined for cuts: the SQLite files, the key file
        (written by make-key: synced, linked, directory synced), the lock file (content-free) and the clean-stop
        note (ledger/clean_stop.py: left synced and renamed, taken away with the directory synced; see
        test_the_clean_stop_note_is_gone_for_good_once_a_start_took_it). Anything else is state a cut could
        tear, not yet examined."""
        sqlite = ("", "-wal", "-shm", "-journal")
        known = {os.path.basename(self.db_path) + suffix for suffix in sqlite}
        known |= {"kartud-personal.db" + suffix for suffix in sqlite}
        known |= {"nik.key", "kartud.db.lock", "kartud.db.clean-stop"}
        return sorted(set(os.listdir(self.disk.mountpoint)) - known)


class Producer:
    """Like an office server, in a thread: send each job until the box answers, then the next, a random while
    later. ``acknowledged`` holds the jobs answered ok, ``refused`` the other answers."""

    def __init__(self, room, rng: random.Random):
        self.room, self.rng = room, rng
        self.acknowledged: dict[str, dict] = {}
        self.refused: list[dict] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopping.is_set():
            job = self.room.job()
            while not self.stopping.is_set():
                try:
                    answer = self.room.office.request("job/submit", job, timeout=1.0)
                except TimeoutError:
                    continue                                 # the box is down: the same job again
                if answer["status"] == "ok":
                    self.acknowledged[job["job_id"]] = job
                else:
                    self.refused.append(answer)
                break
            self.stopping.wait(self.rng.uniform(0.05, 0.3))

    def __enter__(self) -> "Producer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(10)
