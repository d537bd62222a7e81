"""``kartud-sim storm``: seeded requests and faults against a real room, checked after every phase, replayed by seed."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time
from typing import Callable, Iterable

from .storm_invariants import check, read_cards
from .storm_office import Office, chip_sha
from .storm_plan import CHIP_FAULTS, PHASE_OPS, PRINTER_FAULTS, Op, plan
from .storm_rig import StormRig, power_cut_problem

FIRST_BATCH = 500                               # blanks received before the first operation
SETTLE_S = 120.0                                # the longest the end may go without a card made or a job settled
HOSTILE_EXPECT = {"unknown_command": {"unknown_command"}, "cancel_unknown": {"not_found"},
                  "resolve_unknown": {"not_found"}}


class Storm:
    """One storm: the room, the office, the seed's operations carried out one by one, and the counts."""

    def __init__(self, seed: int, directory: str, say: Callable[[str], None] = print):
        self.seed, self.say = seed, say
        self.rig = StormRig(directory)
        self.office: Office | None = None
        self.stats = {"ops": 0, "kills": 0, "cuts": 0, "broker": 0, "pcscd": 0, "faults": 0, "unplugs": 0,
                      "clock": 0, "checks": 0}
        self.true_offset = 0
        self.counts: dict[str, int] = {}         # the last check's counts
        self.last_state: dict = {}               # the last state document the settle read

    def start(self) -> None:
        self.rig.start()
        self.office = Office(self.rig.broker.port, self.seed, lambda: self.rig.daemon.kills)
        first = self.office.send(0, 0, "blanks/receive", {"batch_id": f"storm-{self.seed}-b1", "card_type": "KTP_EL",
                                                          "count": FIRST_BATCH}, {"ok"})
        if self.office.wait(first, 30) is None:
            raise RuntimeError(f"the daemon never answered its first request; see {self.rig.dir}/daemon.log")

    # -- the operations ---------------------------------------------------------------------------------

    def carry_out(self, op: Op) -> None:
        a, office, rig = op.args, self.office, self.rig
        kind = op.kind
        if kind in ("submit", "dup_record"):
            # A refusal for a record or NIK another job holds is judged when the answer comes (storm_office.py).
            payload = office.job(a["job"], a.get("record_of"), a.get("priority", 0))
            office.send(op.number, a["client"], "job/submit", payload, {"ok"})
        elif kind == "resubmit":
            office.send(op.number, a["client"], "job/submit", office.job(a["job"]), {"ok", "duplicate_nik",
                                                                                      "duplicate_record"})
        elif kind == "conflict":
            payload = office.job(a["job"])
            payload["priority"] = 7 if payload["priority"] != 7 else 8
            payload.pop("chip")                      # same job_id, other content; no chip so no card can come of it
            office.send(op.number, a["client"], "job/submit", payload, {"job_id_conflict", "invalid_payload"})
        elif kind == "hostile":
            self._hostile(op)
        elif kind == "cancel":
            office.send(op.number, a["client"], "job/cancel", {"job_id": office.job(a["job"])["job_id"]},
                        {"ok", "not_cancellable", "not_found"})
        elif kind == "stale_resolve":
            office.send(op.number, a["client"], "job/resolve", {"job_id": office.job(a["job"])["job_id"],
                                                                 "outcome": "printed", "note": "storm: stale",
                                                                 "attempts": 999},
                        {"stale_request", "not_in_doubt", "not_found"})
        elif kind == "resolve":
            self._resolve(op)
        elif kind == "blanks":
            office.send(op.number, a["client"], "blanks/receive", {"batch_id": f"storm-{self.seed}-b{a['batch']}",
                                                                   "card_type": "KTP_EL", "count": a["count"]}, {"ok"})
        elif kind == "status":
            office.send(op.number, a["client"], "status/get", {}, {"ok"})
        elif kind == "pause":
            time.sleep(a["seconds"])                 # the press works meanwhile: that is the point
        elif kind == "kill":
            rig.daemon.kill()
            time.sleep(a["down_s"])
            rig.daemon.start()
            self.stats["kills"] += 1
        elif kind == "power_cut":
            self._power_cut(a["down_s"])
        elif kind == "broker":
            rig.broker.kill()
            time.sleep(a["down_s"])
            rig.broker.start()
            self.stats["broker"] += 1
        elif kind == "pcscd":
            rig.pcscd.kill()
            time.sleep(a["down_s"])
            rig.pcscd.start()
            self.stats["pcscd"] += 1
        elif kind == "fault":
            self._fault(a["fault"], a["how"], a["dwell_s"])
        elif kind == "unplug":
            self._control("unplug")
            time.sleep(a["down_s"])
            self._control("replug")
            self.stats["unplugs"] += 1
        elif kind == "clock":
            rig.daemon.set_offset(a["offset_s"])
            if a["jump"] != "back":
                self.true_offset = a["offset_s"]
            self.stats["clock"] += 1
        else:
            raise ValueError(f"no such storm operation: {kind}")

    def _hostile(self, op: Op) -> None:
        a, office = op.args, self.office
        what = a["what"]
        base = {**office.job(100000 + op.number), "job_id": f"storm-{self.seed}-h{op.number}"}
        command, payload = "job/submit", dict(base)
        if what == "not_json":
            payload = b"{\"job_id\": "
        elif what == "not_object":
            payload = b"[1, 2, 3]"
        elif what == "bad_nik":
            payload["nik"] = "9913991399990000"
        elif what == "no_front":
            payload.pop("front_png")
        elif what == "unknown_command":
            command, payload = "job/explode", {}
        elif what == "kia_with_chip":
            payload["card_type"] = "KIA"
        elif what == "bad_priority":
            payload["priority"] = 42
        elif what == "cancel_unknown":
            command, payload = "job/cancel", {"job_id": base["job_id"]}
        elif what == "resolve_unknown":
            command, payload = "job/resolve", {"job_id": base["job_id"], "outcome": "spoiled", "note": "storm"}
        elif what == "negative_blanks":
            command, payload = "blanks/receive", {"batch_id": base["job_id"], "card_type": "KTP_EL", "count": -5}
        else:                                        # wrong_response_topic's stand-in: an empty object
            payload = {}
        office.send(op.number, a["client"], command, payload, HOSTILE_EXPECT.get(what, {"invalid_payload"}))

    def _resolve(self, op: Op) -> None:
        """The operator: look at each in-doubt job's card where it physically is, and say so."""
        listed = self.office.send(op.number, op.args["client"], "job/list", {"state": "in_doubt"}, {"ok"})
        answer = self.office.wait(listed, 3.0)
        if answer is None or answer.get("status") != "ok":
            return                                   # the office cannot reach the box now; the next resolve will
        out = {c["chip_files_sha256"] for c in read_cards(self.rig.cards_path) if c["destination"] == "output"}
        for view in answer["data"]["jobs"]:
            sent = next((p for p in self.office.sent_jobs.values() if p["job_id"] == view["job_id"]), None)
            outcome = "printed" if sent is not None and chip_sha(sent) in out else "spoiled"
            self.office.send(op.number, op.args["client"], "job/resolve",
                             {"job_id": view["job_id"], "outcome": outcome, "note": "storm: looked at the card",
                              "attempts": view["attempts"]}, {"ok", "not_in_doubt", "stale_request"})

    def _fault(self, fault: str, how: str, dwell_s: float) -> None:
        self._control(f"{how} {fault}")
        time.sleep(dwell_s)
        self._control(f"clear {fault}")
        self.stats["faults"] += 1

    def _control(self, line: str) -> None:
        answer = self.rig.printer.control(line)
        if answer != "ok":
            raise RuntimeError(f"the simulated printer refused {line!r}: {answer}")

    def _power_cut(self, down_s: float) -> None:
        """The daemon and the printer lose power together (and with the power-cut filesystem, unsynced bytes)."""
        self.rig.daemon.kill()
        self.rig.printer.kill()
        if self.rig.disk is not None:
            self.rig.disk.power_cut()
        time.sleep(down_s)
        self.rig.printer.start()
        self.rig.daemon.start()
        self.stats["cuts"] += 1

    def tidy(self) -> None:
        """The person at the printer between phases: every fault put right, the hopper and reject box emptied,
        the in-doubt jobs looked at and resolved."""
        for fault in PRINTER_FAULTS + CHIP_FAULTS:
            self._control(f"clear {fault}")
        self._resolve(Op(self.stats["ops"], "resolve", {"client": 0}))

    # -- the run ----------------------------------------------------------------------------------------

    def run(self, minutes: float, ops: Iterable[Op] | None = None) -> int:
        """Carry out the seed's plan (or ``ops``, a fixed list, when given) for ``minutes``, then settle and check;
        returns 0 when every check held, 1 on a violation."""
        self.say(f"storm: seed {self.seed}, {minutes:g} minutes, room in {self.rig.dir}")
        self.say(f"storm: replay with: kartud-sim storm --seed {self.seed} --minutes {minutes:g}" if ops is None else
                 "storm: a fixed list of operations, not the seed's plan")
        started = time.monotonic()
        try:
            self.start()
            self.say("storm: the database is on the power-cut filesystem" if self.rig.disk is not None else
                     f"storm: power cuts are SIGKILLs only: {power_cut_problem()}")
            for op in plan(self.seed) if ops is None else ops:
                if time.monotonic() - started > minutes * 60:
                    break
                self.say(f"#{op}")
                self.carry_out(op)
                self.stats["ops"] = op.number
                if op.number % PHASE_OPS == 0:
                    self.tidy()
                    if not self._checked(op.number):
                        return 1
            return 0 if self._settle_and_check() else 1
        finally:
            if self.office is not None:
                self.office.close()
            self.rig.close()

    def _checked(self, number: int, final: bool = False) -> bool:
        problems, counts = check(self.rig.db_path, self.rig.cards_path, self.office, final)
        self.stats["checks"] += 1
        if problems:
            self.say(f"STORM VIOLATION: seed {self.seed}, after op {number}: " + "; ".join(problems[:10]))
            self.say(f"replay: kartud-sim storm --seed {self.seed} --minutes <as before>; room kept in {self.rig.dir}")
            return False
        numbers = " ".join(f"{k}={v}" for k, v in counts.items())
        self.say(f"{'final check' if final else 'check'} after op {number}: ok {numbers}")
        self.counts = counts
        return True

    def _settle_and_check(self) -> bool:
        """Put everything right, let every request be answered and every card be made, then check it all."""
        self.say("storm: settling (clock right, faults cleared, in-doubt jobs resolved, queue drained)")
        self.rig.daemon.set_offset(self.true_offset)
        self.tidy()
        number, last = self.stats["ops"], None
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:     # a long storm leaves a long queue: the wait is for no progress
            # The person stays at the printer while the queue drains: a fault armed before the settle fires at the
            # next card (seed 20261202: reject_box_full at an eject held the last 4 jobs for good) and is put right.
            self.tidy()
            problems, counts = check(self.rig.db_path, self.rig.cards_path, self.office)
            if problems or (not self.office.unanswered() and self._queue_empty()):
                break
            if counts != last:
                last, deadline = counts, time.monotonic() + SETTLE_S
            time.sleep(1.0)
        self.rig.daemon.stop()
        held = self._checked(number, final=True)
        if not held and self.last_state:              # why the queue stood still, as the daemon last said it
            self.say(f"storm: the daemon's last state: {describe_state(self.last_state)}")
        return held

    def _queue_empty(self) -> bool:
        """Nothing queued, in doubt or on the press, by the state document."""
        status = self.office.send(self.stats["ops"], 0, "status/get", {}, {"ok"})
        data = (self.office.wait(status, 3.0) or {}).get("data") or {}
        if data:
            self.last_state = data
        queue = data.get("queue") or {}
        return bool(data) and queue.get("queued") == 0 and queue.get("in_doubt") == 0 and data.get("mode") != "printing"


def read_ops(path: str) -> list[Op]:
    """Operations from a JSON file, ``[{"kind": "fault", "args": {...}}, ...]``, numbered from 1: a few operations
    of a long storm played again in seconds (tests/test_storm_settle.py)."""
    with open(path) as handle:
        return [Op(number, item["kind"], item.get("args", {})) for number, item in enumerate(json.load(handle), 1)]


PRIVATE_PTS = "KARTUD_STORM_PRIVATE_PTS"
PTS_SCRIPT = ('(mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts && mount --bind /dev/pts/ptmx /dev/ptmx)'
              ' || echo "storm: no private /dev/pts; a stale pty link of another program could reach the printer" >&2;'
              ' exec "$@"')


def _again_with_private_ptys(seed: int, minutes: float, directory: str, ops_file: str | None) -> None:
    """Run this storm again (same pid: exec) in a mount namespace of its own with a new /dev/pts. Pty numbers are
    reused: a daemon of another test whose printer was killed keeps reopening its link to /dev/pts/N, and once
    the storm's printer gets N that daemon talks to it (seen: it sent the storm's card to the reject box)."""
    os.environ[PRIVATE_PTS] = "1"
    sys.stdout.flush()
    storm = ["storm", "--seed", str(seed), "--minutes", f"{minutes:g}", "--output-dir", directory]
    if ops_file:
        storm += ["--ops-file", os.path.abspath(ops_file)]
    os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", "sh", "-c", PTS_SCRIPT, "sh",
                          sys.executable, "-m", "kartud.room.cli", *storm])


def describe_state(state: dict) -> str:
    """The parts of a state document that say why a queue stands still, on one line."""
    printer, encoder = state.get("printer") or {}, state.get("encoder") or {}
    return ("mode={} reason={} faults={} queue={} blanks={} next_print_at={} printer connected={} "
            "cards_until_cleaning={} encoder connected={}".format(
                state.get("mode"), state.get("reason"), [f.get("code") for f in state.get("faults") or []],
                state.get("queue"), state.get("blanks"), state.get("next_print_at"), printer.get("connected"),
                printer.get("cards_until_cleaning"), encoder.get("connected")))


def _kept_in(path: str) -> Callable[[str], None]:
    """Print each line of the storm's log and keep it in the room (``storm.log``): a run that failed in CI,
    with its output cut short there, still says which check broke and after which operation."""
    os.makedirs(os.path.dirname(path), exist_ok=True)

    def say(line: str) -> None:
        print(line, flush=True)
        with open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
    return say


def run_storm(seed: int | None, minutes: float, directory: str, ops_file: str | None = None) -> int:
    """``kartud-sim storm``: returns 0 when every check held, 1 on a violation (printed with its seed).
    ``ops_file`` (see :func:`read_ops`) replaces the seed's plan."""
    from .storm_rig import rig_problem

    why = rig_problem()
    if why:
        print(f"kartud-sim storm: cannot run here: {why}")
        return 2
    if os.path.isdir(directory) and os.listdir(directory):
        if not os.path.exists(os.path.join(directory, "faketime")):
            print(f"kartud-sim storm: --output-dir {directory} holds files of something else: name an empty or "
                  "new folder, or an earlier storm's")
            return 2
        shutil.rmtree(directory)                 # an earlier storm's room: its cards would count in this one
    if seed is None:
        seed = random.SystemRandom().randrange(1, 10**9)
    if not os.environ.get(PRIVATE_PTS):
        _again_with_private_ptys(seed, minutes, os.path.abspath(directory), ops_file)
    # SIGTERM (a test's timeout, systemd, kill) ends the storm like Ctrl-C: every process it started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    storm = Storm(seed, os.path.abspath(directory), say=_kept_in(os.path.join(directory, "storm.log")))
    try:
        status = storm.run(minutes, None if ops_file is None else read_ops(ops_file))
    except KeyboardInterrupt:
        storm.say(f"storm: seed {seed}: interrupted after op {storm.stats['ops']}; everything it started is stopped")
        return 130
    s = storm.stats
    storm.say(f"storm: seed {seed}: {s['ops']} operations, {s['checks']} checks, {s['kills']} kills, {s['cuts']} power "
          f"cuts, {s['broker']} broker and {s['pcscd']} pcscd restarts, {s['faults']} faults, {s['unplugs']} "
          f"unplugs, {s['clock']} clock jumps; " + " ".join(f"{k}={v}" for k, v in storm.counts.items()))
    storm.say(f"storm: seed {seed}: {'VIOLATION' if status else 'every check held'}")
    return status
