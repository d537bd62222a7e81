"""The storm's invariant checker: the ledger against the cards that left the printer and what the office was told."""

from __future__ import annotations

import json
import os
from collections import Counter

from ..ledger.storm_facts import ledger_facts
from .storm_office import Office


def read_cards(path: str) -> list[dict]:
    """Every card that left the printer, from the simulator's fsynced ``cards.jsonl``."""
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def check(db_path: str, cards_path: str, office: Office, final: bool = False) -> tuple[list[str], dict]:
    """Every promise, checked from outside while the daemon runs (or after it stopped, with ``final``).

    What the office was told is taken first, then the printer's record is read before and after the ledger (one
    read transaction): a card in the output before the ledger was read
    must be accounted for by it, and a card the ledger calls printed must be in the output read after it.
    Returns the problems found (none when all holds) and a few counts for the log.
    """
    # What the office was told is taken first: an answer or event that arrives after the ledger was read
    # may tell of a change the ledger read did not see yet.
    told = office.told
    acknowledged, cancelled = dict(told.acknowledged), set(told.cancelled)
    printed_told, resolved = set(told.printed), dict(told.resolved)
    before = read_cards(cards_path)
    facts = ledger_facts(db_path)
    after = read_cards(cards_path)
    jobs = facts["jobs"]
    problems: list[str] = []

    if facts["integrity"] != [("ok",)]:
        problems.append(f"integrity_check: {facts['integrity'][:3]}")
    verified = facts["verify"]
    if verified["audit_broken_at"]:
        problems.append(f"the audit chain does not verify: {verified['audit_broken_at']}")
    if verified["ledger"]:
        problems.append(f"blank stock disagrees with its movements: {verified['ledger'][:3]}")
    for card_type, s in facts["stock"].items():
        if s["received"] + s["adjusted"] != s["in_stock"] + s["reserved"] + s["printed"] + s["spoiled"]:
            problems.append(f"the blank equation fails for {card_type}: {s}")
        if min(s[k] for k in ("received", "in_stock", "reserved", "printed", "spoiled")) < 0:
            problems.append(f"a negative count for {card_type}: {s}")
        held = facts["in_doubt"].get(card_type, 0) + facts["printing"].get(card_type, 0)
        if s["reserved"] > held or (final and s["reserved"] != facts["in_doubt"].get(card_type, 0)):
            problems.append(f"{s['reserved']} {card_type} blanks reserved, but {held} jobs in doubt or printing")
    printed_jobs = {j for j, v in jobs.items() if v["state"] == "printed"}
    if {job for _, job in facts["printed_records"]} != printed_jobs:
        problems.append("printed_records and the jobs in state printed differ")

    def owner(card: dict) -> dict | None:
        return office.sent_jobs.get(card.get("chip_files_sha256"))

    out_after = [c for c in after if c["destination"] == "output"]
    per_record = Counter(owner(c)["record_id"] for c in out_after if owner(c) is not None)
    problems += [f"record {r} has {n} cards in the output hopper" for r, n in per_record.items() if n > 1]
    problems += [f"card seq {c['seq']} in the output carries chip data no job sent (sha {c['chip_files_sha256']})"
                 for c in out_after if owner(c) is None]
    out_jobs = Counter(owner(c)["job_id"] for c in out_after if owner(c) is not None)
    problems += [f"job {j} is printed in the ledger but not in the output hopper" for j in printed_jobs
                 if out_jobs[j] != 1]
    for card in before:
        job = owner(card)
        if card["destination"] != "output" or job is None:
            continue
        state = jobs.get(job["job_id"], {}).get("state")
        if state not in ("printed", "in_doubt", "printing"):
            problems.append(f"card seq {card['seq']} of job {job['job_id']} is in the output but the job is {state}")
    # Over every card type: a wrong blank (a chip blank read as one without) is spoiled as the type it seemed.
    charged = sum(s["printed"] + s["spoiled"] + s["reserved"] for s in facts["stock"].values())
    if len(before) > charged:
        problems.append(f"{len(before)} cards left the printer but the ledger charged only {charged} blanks")

    problems += [f"job {j} was acknowledged but is not in the ledger" for j in acknowledged if j not in jobs]
    for job_id in cancelled:
        state = jobs.get(job_id, {}).get("state")
        if state != "cancelled":
            problems.append(f"job {job_id} was answered cancelled but the ledger has {state}")
        if out_jobs[job_id]:
            problems.append(f"job {job_id} was answered cancelled but its card is in the output hopper")
    for job_id in printed_told:
        if job_id in jobs and jobs[job_id]["state"] != "printed":
            problems.append(f"job {job_id} was told printed but the ledger has {jobs[job_id]['state']}")
    if final:
        problems += [f"op {r.op}: {r.command} was never answered" for r in office.unanswered()]
        left = Counter(v["state"] for v in jobs.values() if v["state"] in ("queued", "printing", "in_doubt"))
        if left:
            problems.append(f"jobs left unsettled: {dict(left)}")
    problems += office.problems
    counts = {"jobs": len(jobs), "acknowledged": len(acknowledged), "printed": len(printed_jobs),
              "in_doubt": sum(facts["in_doubt"].values()), "output": len(out_after),
              "reject": sum(1 for c in after if c["destination"] == "reject"), "resolved": len(resolved)}
    return problems, counts
