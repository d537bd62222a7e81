"""What the ledger says, read from outside while the daemon runs or after it died, for the storm's invariant checker."""

from __future__ import annotations

from typing import Any

from .read_only import connect_read_only, verify


def ledger_facts(path: str) -> dict[str, Any]:
    """One read transaction over the database at ``path`` (nothing on disk changes).

    Returns ``{"integrity": [rows of PRAGMA integrity_check], "verify": (:func:`~kartud.ledger.read_only.verify`),
    "stock": {card_type: {received, adjusted, in_stock, reserved, printed, spoiled}}, "jobs": {job_id:
    {state, record_id, card_type, attempts}}, "printed_records": [(record_id, job_id)], "in_doubt": {card_type:
    n}, "printing": {card_type: n}}``.
    """
    conn = connect_read_only(path)
    try:
        conn.execute("BEGIN")                    # one snapshot for every query below
        facts: dict[str, Any] = {"integrity": [tuple(r) for r in conn.execute("PRAGMA integrity_check")]}
        facts["verify"] = verify(conn)
        facts["stock"] = {r["card_type"]: {k: r[k] for k in ("received", "adjusted", "in_stock", "reserved",
                                                              "printed", "spoiled")}
                          for r in conn.execute("SELECT * FROM blank_stock")}
        facts["jobs"] = {r["job_id"]: {"state": r["state"], "record_id": r["record_id"], "card_type": r["card_type"],
                                       "attempts": r["attempts"]}
                         for r in conn.execute("SELECT job_id, state, record_id, card_type, attempts FROM jobs")}
        facts["printed_records"] = [tuple(r) for r in conn.execute("SELECT record_id, job_id FROM printed_records")]
        for state in ("in_doubt", "printing"):
            facts[state] = dict(tuple(r) for r in conn.execute(
                "SELECT card_type, COUNT(*) FROM jobs WHERE state = ? GROUP BY card_type", (state,)))
        conn.execute("COMMIT")
        return facts
    finally:
        conn.close()
