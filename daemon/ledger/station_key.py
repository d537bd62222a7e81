"""The station's NIK key: in its own file (under systemd, the credential ``nik-key``), never in the database.

The one-card-per-NIK rule outlives the erased NIK through a keyed hash (HMAC-SHA256) of it. Anyone
holding the key and the hashes can try every NIK of a region in minutes, so the key is kept apart from
the databases: a copy of ``/var/lib/kartud`` alone recovers nothing. ``scripts/install`` makes it with
``kartud make-key`` (root:root 0600 in ``/etc/kartud``); the unit hands it to kartud as a systemd
credential (``LoadCredential=nik-key:...``), readable by the service user only.

A database made by an older kartud holds its key in the ``settings`` table: ``make-key`` writes that
key to the file, and the daemon, finding the same key in both, deletes the database's copy at its next
start (see :meth:`Store.open <kartud.ledger.store.Store.open>`).

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "nik.key")
>>> make_key(path, os.path.join(os.path.dirname(path), "none.db")).startswith("wrote a new key")
True
>>> len(read_key(path)), oct(os.stat(path).st_mode & 0o777)
(32, '0o600')
"""

from __future__ import annotations

import os

from ..ledger.read_only import connect_read_only
from ..ledger.store import KEY_BYTES, OLD_KEY_SETTING

CREDENTIAL = "nik-key"


class KeyFileProblem(Exception):
    """The key file is missing or unusable; the message says what to do, in plain words."""


def key_path(configured: str) -> str:
    """Where to read the key: systemd's credential when the unit passed one, else ``store.key_file``."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory and os.path.exists(os.path.join(directory, CREDENTIAL)):
        return os.path.join(directory, CREDENTIAL)
    return configured


def how_to_make(config_path: str | None) -> str:
    return (f"create it with `kartud make-key --config {config_path or '/etc/kartud/kartud.toml'}` as root "
            "(scripts/install does this)")


def read_key(path: str, config_path: str | None = None) -> bytes:
    """The key in ``path`` (64 hex digits). Raises :class:`KeyFileProblem` saying how to fix it."""
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        raise KeyFileProblem(f"the station's NIK key file {path} does not exist: {how_to_make(config_path)}. If a "
                             "key file existed and was lost, a new one lets kartud print again, but the "
                             "one-card-per-NIK check then no longer knows the cards printed before "
                             "(docs/operating.md, \"The station key\")") from None
    except PermissionError:
        raise KeyFileProblem(f"the station's NIK key file {path} is not readable by this user; under systemd the "
                             f"unit passes it as the credential {CREDENTIAL} (LoadCredential=)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileProblem(f"the station's NIK key file {path} cannot be read: {exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyFileProblem(f"the station's NIK key file {path} must hold {KEY_BYTES * 2} hex digits; it was not "
                             "written by kartud make-key")
    return key


def make_key(path: str, db_path: str) -> str:
    """Write the key file (mode 0600, made atomically, never over an existing one): the key the database at
    ``db_path`` holds, if an older kartud kept one there, else a new random one. Returns what was done."""
    if os.path.exists(path):
        return f"kept the existing key file {path} (it is never replaced; delete it first only if it is lost)"
    old = _database_key(db_path)
    key = bytes.fromhex(old) if old else os.urandom(KEY_BYTES)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)             # fails if another make-key won the race: nothing is replaced
    finally:
        os.unlink(temporary)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    if old:
        return (f"wrote {path} with the key the database {db_path} held; kartud deletes the database's copy at "
                "its next start")
    return f"wrote a new key to {path}"


def _database_key(db_path: str) -> str | None:
    """The key an older kartud kept in the database, read without changing the file; None if none."""
    if not os.path.exists(db_path):
        return None
    conn = connect_read_only(db_path)
    try:
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settings'").fetchone()
        row = conn.execute("SELECT value FROM settings WHERE key = ?", (OLD_KEY_SETTING,)).fetchone() if exists else None
        return row[0] if row else None
    finally:
        conn.close()
