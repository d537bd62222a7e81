"""The daemon's store: the ledger opened with the station's NIK key, and a crash point between its two commits."""

from __future__ import annotations

from ..ledger.station_key import KeyFileProblem, key_path, read_key
from ..ledger.store import Store
from ..rules.clock import Clock
from ..rules.errors import StorageError
from ..service.crashpoints import crash_point


class StationStore(Store):
    """A :class:`Store` that reads the key from ``store.key_file`` (or systemd's credential) as it opens:
    without it kartud does not start (``kartud run`` says so first, with status 2, see
    :mod:`kartud.service.cli`)."""

    def __init__(self, config, clock: Clock):
        super().__init__(config.store.path, clock)
        self.key_file, self.config_path = config.store.key_file, config.path
        # Tests kill the daemon once the personal-data file has committed and the ledger has not
        # (KARTUD_CRASH_AT=personal_committed[@jobs|@erasure]).
        self.on_personal_commit = lambda what: crash_point("personal_committed", what)

    def open(self) -> None:
        try:
            self.key = read_key(key_path(self.key_file), self.config_path)
        except KeyFileProblem as problem:
            raise StorageError(str(problem)) from None
        super().open()
