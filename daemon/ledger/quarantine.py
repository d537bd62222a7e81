"""Requests set aside for a person, and the marks that tell which request was in hand when the process died.

A request is *taken in hand* (a row in ``requests_handling``, keyed by the sha256 of its topic and
payload) before it is handled, and *released* once it is answered. A submission's mark is released in the
transaction that commits its job (:func:`commit_releasing`): a death after that commit is answered
from the ledger when the message comes back. A row still in hand at start-up
names a message that was being handled when the process died: it counts a death. A message back
after one death is handled alone (so that a batch it came with cannot die with it twice); after a
second death it is *quarantined* and never handled again. A request that met a defect (an exception
nobody expected) is quarantined at once. Quarantined payloads may hold personal data: they are kept
in the personal-data file (:mod:`kartud.ledger.personal`), erased with the jobs' personal data
(``store.pii_retention_days``), and only their fingerprint is ever shown.

The marks need to outlive the process, not a power cut (a power cut is nothing a message did), so
they are committed without the fsync (``synchronous=NORMAL`` in WAL mode: durable against a crash
of the process); a quarantine is committed in full.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable

from ..rules.clock import rfc3339
from .light_commit import light_transaction

if TYPE_CHECKING:
    from ..ledger.store import Store

DIED_TWICE = "died twice with the process while being handled"
DEATHS_BEFORE_QUARANTINE = 2

# What take_in_hand says of each message.
GO = "go"                # in hand now: handle it with the others
ALONE = "alone"          # it died with the process once: handle it by itself (take_in_hand([it]) first)
QUARANTINE = "quarantine"  # it died twice, or is a known killer: quarantine it, answer internal_error


def count_deaths(store: Store, forget_after_s: float) -> list[dict[str, Any]]:
    """At start-up: every message still in hand died with the process that stopped; count it. Marks of
    messages that died once and never came back within ``forget_after_s`` are forgotten. Returns the
    messages that died just now, as ``{message_sha256, command, size, deaths}``."""
    cutoff = rfc3339(store.clock.now() - timedelta(seconds=forget_after_s))
    with store.transaction() as conn:
        died = [dict(row) for row in conn.execute(
            "SELECT message_sha256, command, size, deaths + 1 AS deaths FROM requests_handling WHERE in_hand = 1 "
            "ORDER BY since")]
        conn.execute("UPDATE requests_handling SET deaths = deaths + 1, in_hand = 0 WHERE in_hand = 1")
        conn.execute("DELETE FROM requests_handling WHERE in_hand = 0 AND since < ?", (cutoff,))
    return died


def take_in_hand(store: Store, messages: list[tuple[str, str, int]], alone: bool = False) -> dict[str, str]:
    """Mark ``messages`` (``(sha256, command, size)`` each) as in hand, in one transaction; returns a
    verdict per sha256: :data:`GO`, :data:`ALONE` (not marked: handle it by itself, calling this again
    with ``alone=True``) or :data:`QUARANTINE` (not marked). The messages after the first :data:`ALONE`
    get no verdict and no mark yet: they must not be in hand while it is (call again after it)."""
    verdicts: dict[str, str] = {}
    now = store.now()
    with light_transaction(store) as conn:
        for sha, command, size in messages:
            if sha in verdicts:
                continue
            row = conn.execute("SELECT deaths FROM requests_handling WHERE message_sha256 = ?", (sha,)).fetchone()
            deaths = row[0] if row else 0
            killer = conn.execute("SELECT 1 FROM quarantine WHERE message_sha256 = ? AND why = ? LIMIT 1",
                                  (sha, DIED_TWICE)).fetchone()
            if killer or deaths >= DEATHS_BEFORE_QUARANTINE:
                verdicts[sha] = QUARANTINE
            elif deaths and not alone:
                verdicts[sha] = ALONE
                break
            else:
                conn.execute("INSERT INTO requests_handling (message_sha256, command, size, deaths, in_hand, since) "
                             "VALUES (?, ?, ?, 0, 1, ?) ON CONFLICT (message_sha256) DO UPDATE SET in_hand = 1",
                             (sha, command[:200], size, now))
                verdicts[sha] = GO
    return verdicts


def release(store: Store, shas: list[str]) -> None:
    """The messages were answered: forget their marks (and any death they had), in one transaction."""
    if not shas:
        return
    with light_transaction(store) as conn:
        conn.executemany("DELETE FROM requests_handling WHERE message_sha256 = ?", [(sha,) for sha in set(shas)])


def commit_releasing(store: Store, commit: Callable[[list], list], jobs: list, shas: list[str]) -> list:
    """``commit(jobs)`` (the store's ``submit_jobs``) and the release of ``shas``' marks, in ONE transaction.

    For submissions only, and only when their answers are sent right after: a message that comes back
    after a death between this commit and its answer is answered from the ledger (its request memory,
    or the same ``job_id`` with the same content) and changes nothing, so its mark has nothing left to
    guard once the commit is made. A commit that raises rolls the release back with it."""
    with store.transaction() as conn:
        results = commit(jobs)
        conn.executemany("DELETE FROM requests_handling WHERE message_sha256 = ?", [(sha,) for sha in set(shas)])
    return results


def handled_in_hand(store: Store, messages: list[tuple[str, str, int]],
                    handle: Callable[[], Any]) -> tuple[dict[str, str], Any]:
    """:func:`take_in_hand` ``messages`` and, when every one may go, ``handle()`` in the same store call,
    after the marks' commit: ``(verdicts, what handle returned)``, or ``(verdicts, None)`` when some
    message may not go with the others (``handle`` did not run). Saves a thread hop and a wake-up of the
    loop; the promise is the same: nothing reads a message before its mark is committed."""
    verdicts = take_in_hand(store, messages)
    if len(verdicts) < len({sha for sha, _, _ in messages}) or any(v != GO for v in verdicts.values()):
        return verdicts, None
    return verdicts, handle()


def put_down(store: Store) -> None:
    """A clean stop: the messages still in hand did not kill anything (they come back and are handled
    again, which every request allows), so their marks go; a death counted earlier stays."""
    with light_transaction(store) as conn:
        conn.execute("DELETE FROM requests_handling WHERE in_hand = 1 AND deaths = 0")
        conn.execute("UPDATE requests_handling SET in_hand = 0 WHERE in_hand = 1")


def quarantine(store: Store, sha: str, command: str, payload: bytes, why: str) -> int:
    """Set a message aside for a person (its mark goes); returns its ``seq``. ``why`` names a defect's
    class or :data:`DIED_TWICE`, never the content. A message already set aside as a killer keeps its entry."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM requests_handling WHERE message_sha256 = ?", (sha,))
        known = conn.execute("SELECT seq FROM quarantine WHERE message_sha256 = ? AND why = ? LIMIT 1",
                             (sha, DIED_TWICE)).fetchone() if why == DIED_TWICE else None
        if known:
            return known[0]                     # a known killer sent again: set aside once is enough
        seq = conn.execute("INSERT INTO quarantine (message_sha256, command, size, why, payload_kept, at) "
                           "VALUES (?, ?, ?, ?, 1, ?)", (sha, command[:200], len(payload), why[:200], store.now())).lastrowid
        store._keep_payload(seq, payload)
        store._audit(conn, "request_quarantined", None, {"seq": seq, "message_sha256": sha,
                                                         "command": command[:200], "size": len(payload),
                                                         "why": why[:200]})
    return seq


def quarantined(conn: sqlite3.Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """The quarantined messages, newest first, without their payloads: ``{seq, at, command, size,
    message_sha256, why, payload_erased}``. Works on a read-only connection."""
    cursor = conn.execute("SELECT seq, at, command, size, message_sha256, why, payload_kept = 0 AS payload_erased "
                          "FROM quarantine ORDER BY seq DESC LIMIT ?", (limit,))
    names = [column[0] for column in cursor.description]
    return [{**dict(zip(names, row)), "payload_erased": bool(row[6])} for row in cursor]
