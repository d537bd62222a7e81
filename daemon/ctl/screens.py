"""kartuctl's output for people: the status screen, job lists and views, confirmations and refusals."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..ctl.words import Texts
from ..ctl.report_text import local_time, table

MAX_DOUBT_SHOWN = 5
JOB_FIELDS = ("job_id", "record_id", "card_type", "nik_masked", "state", "step", "reason", "attempts", "priority",
              "created_at", "updated_at", "printed_at", "card_uid", "batch_id")
DOUBT_FIELDS = ("in_doubt_since", "in_doubt_step")     # shown for a job in doubt: what the decision rests on
TIME_FIELDS = ("created_at", "updated_at", "printed_at", "in_doubt_since")


def _when(texts: Texts, stamp: str | None, tz: ZoneInfo, today: str | None = None) -> str:
    """A stored instant for people; only the clock time when it falls on ``today``."""
    if not stamp:
        return "-"
    moment = local_time(stamp, tz)
    if today is not None and moment.date().isoformat() == today:
        return moment.strftime("%H:%M")
    return texts.moment(moment)


def _labelled(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(label) for label, _ in rows)
    return [f"{label.ljust(width)} {':' if label else ' '} {value}" for label, value in rows]


def mode_words(texts: Texts, mode: str | None, reason: str | None) -> str:
    """``MENUNGGU: jeda antarkartu, ...``: the mode and why, in words."""
    words = texts.optional("mode_", mode, "?")
    return f"{words}: {texts.optional('why_', reason)}" if reason else words


def status_screen(texts: Texts, doc: dict[str, Any], tz: ZoneInfo, low_threshold: int) -> str:
    """One screen: mode and why, today's cards against the limit, next card, queue, jobs in doubt and what
    to do about them, blanks per type, printer and encoder, faults with what to do."""
    now = datetime.fromisoformat(doc["at"]).astimezone(tz)
    today_date = now.date().isoformat()
    running = doc.get("daemon") != "not_running"
    lines = [texts("station_line", station=doc["station"], version=doc.get("version", "?"),
                   when=f"{texts.day(now.date())} {now.strftime('%H:%M')} {now.tzname() or ''}".rstrip()), ""]
    rows = [(texts("l_mode"), mode_words(texts, doc["mode"], doc["reason"]) if running else texts("daemon_down"))]
    if doc.get("paused_reason") and (doc["mode"] == "paused" or not running):
        rows.append((texts("l_paused"), doc["paused_reason"]))
    today = doc["today"]
    used = today.get("started", today["printed"] + today["spoiled"])
    rows.append((texts("l_today"), texts("today_line", used=used, limit=today["limit"], printed=today["printed"],
                                         spoiled=today["spoiled"], left=max(0, today["limit"] - used))))
    if running:
        rows.append((texts("l_next"), texts("next_at", time=_when(texts, doc["next_print_at"], tz, today_date))
                     if doc.get("next_print_at") else texts("next_none")))
    rows.append((texts("l_queue"), texts("queue_line", queued=doc["queue"]["queued"],
                                         in_doubt=doc["queue"]["in_doubt"])))
    if not running and doc["queue"].get("printing"):
        rows.append(("", texts("interrupted", n=doc["queue"]["printing"])))
    rows.append((texts("l_blanks"), "; ".join(_blank_words(texts, card_type, stock, low_threshold)
                                              for card_type, stock in doc["blanks"].items())))
    if running:
        rows.append((texts("l_printer"), _printer_words(texts, doc.get("printer") or {})))
        encoder = doc.get("encoder") or {}
        rows.append((texts("l_encoder"), texts("connected") + (f" ({encoder['reader']})" if encoder.get("reader")
                                                                else "") if encoder.get("connected")
                     else texts("disconnected")))
        rows.append((texts("l_office"), _link_words(texts, doc["office_link"], tz, today_date)
                     if doc.get("office_link") else texts("unknown")))
        rows.append((texts("l_faults"), texts("no_faults") if not doc["faults"] else ""))
    else:
        rows.append((texts("l_office"), texts("link_unknown")))
    lines += _labelled(rows)
    for fault in doc["faults"]:
        lines.append(f"  ! {fault['code']} ({texts('since', time=_when(texts, fault['since'], tz, today_date))}): "
                     f"{texts.optional('fault_', fault['code'])}")
    lines += _doubt_block(texts, doc)
    return "\n".join(lines) + "\n"


def _blank_words(texts: Texts, card_type: str, stock: dict[str, Any], threshold: int) -> str:
    count = stock["in_stock"]
    mark = f" {texts('blank_out')}" if count == 0 else f" {texts('blank_low', threshold=threshold)}" \
        if stock.get("low") else ""
    return f"{card_type} {count}{mark}"


def _printer_words(texts: Texts, printer: dict[str, Any]) -> str:
    if not printer.get("connected"):
        return texts("disconnected")
    cleaning = printer.get("cards_until_cleaning")
    unknown = texts("unknown")
    if printer.get("model") or printer.get("serial") or printer.get("ribbon_remaining") is not None:
        detail = texts("printer_detail", model=printer.get("model") or "?", serial=printer.get("serial") or unknown,
                       ribbon=printer.get("ribbon_remaining", unknown), cleaning=cleaning if cleaning is not None
                       else unknown)
    else:
        detail = texts("cleaning_left", cleaning=cleaning if cleaning is not None else unknown)
    return f"{texts('connected')}; {detail}"


def _link_words(texts: Texts, link: dict[str, Any], tz: ZoneInfo, today: str) -> str:
    """The office link: connected since when, or not and the last error in words."""
    since = _when(texts, link.get("since"), tz, today)
    if link.get("connected"):
        words = texts("link_up", broker=link.get("broker", "?"), since=since)
        return words + (f", MQTT {link['protocol']}" if link.get("protocol") else "")
    if link.get("last_error"):
        return texts("link_down", since=since, error=link["last_error"])
    return texts("link_trying", broker=link.get("broker", "?"), since=since)


def _doubt_block(texts: Texts, doc: dict[str, Any]) -> list[str]:
    """The jobs in doubt, each with the two commands that settle it."""
    count = doc["queue"]["in_doubt"]
    ids = doc.get("in_doubt_jobs") or []
    if not count:
        return []
    lines = ["", f"{texts('l_doubt')} ({count}): {texts('doubt_hint')}"]
    for job_id in ids[:MAX_DOUBT_SHOWN]:
        lines += [f"  {job_id}",
                  f"    kartuctl resolve {job_id} printed --note \"{texts('doubt_good')}\"",
                  f"    kartuctl resolve {job_id} spoiled --note \"{texts('doubt_bad')}\""]
    if count > min(len(ids), MAX_DOUBT_SHOWN):
        lines.append("  " + texts("doubt_more", n=count - min(len(ids), MAX_DOUBT_SHOWN)))
    return lines


def jobs_table(texts: Texts, jobs: list[dict[str, Any]], tz: ZoneInfo) -> str:
    if not jobs:
        return texts("no_jobs") + "\n"
    header = [texts(k) for k in ("h_job", "h_state", "h_type", "h_nik", "h_tries", "h_updated", "h_reason")]
    rows = [[j["job_id"], texts.optional("state_", j["state"]) + (f" ({texts.optional('step_', j['step'])})"
                                                                   if j.get("step") else ""),
             j["card_type"], j["nik_masked"], str(j["attempts"]), _when(texts, j["updated_at"], tz), j["reason"] or ""]
            for j in jobs]
    return "\n".join(table(rows, header, right={4}) + ["", texts("jobs_shown", n=len(jobs))]) + "\n"


def quarantine_table(texts: Texts, entries: list[dict[str, Any]], tz: ZoneInfo) -> str:
    """The requests set aside, newest first: number, when, command, size, fingerprint, why. Never a payload."""
    if not entries:
        return texts("q_none") + "\n"
    header = [texts(k) for k in ("h_seq", "h_when", "h_command", "h_bytes", "h_sha256", "h_why")]
    rows = [[str(q["seq"]), _when(texts, q["at"], tz), q["command"], str(q["size"]), q["message_sha256"],
             texts("q_died_twice") if q["why"].startswith("died twice") else texts("q_defect", name=q["why"])]
            for q in entries]
    return "\n".join(table(rows, header, right={0, 3}) + ["", texts("q_shown", n=len(entries))]) + "\n"


def job_view(texts: Texts, view: dict[str, Any], tz: ZoneInfo) -> str:
    rows = []
    for field in JOB_FIELDS + (DOUBT_FIELDS if view.get("state") == "in_doubt" else ()):
        value = view.get(field)
        if field in TIME_FIELDS:
            value = _when(texts, value, tz)
        elif field in ("state", "step", "in_doubt_step") and value:
            value = texts.optional(("state" if field == "state" else "step") + "_", value)
        rows.append((texts("f_" + field), "-" if value is None or value == "" else str(value)))
    lines = _labelled(rows)
    if view.get("state") == "in_doubt":
        lines += _doubt_block(texts, {"queue": {"in_doubt": 1}, "in_doubt_jobs": [view["job_id"]]})[1:]
    return "\n".join(lines) + "\n"


def verify_screen(texts: Texts, result: dict[str, Any]) -> str:
    """``kartuctl verify`` for people: the audit chain, who did each change, erasure on record, the stock."""
    lines = [texts("chain_ok", rows=result["audit_rows"]) if result["audit_broken_at"] is None
             else texts("chain_broken", detail=result["audit_broken_at"])]
    actors, erasure = result["actors"], result["erasure"]
    legacy = texts("actors_legacy", n=actors["legacy"]) if actors["legacy"] else ""
    lines.append(texts("actors_ok", named=actors["named"], legacy=legacy) if actors["ok"] else
                 texts("actors_bad", n=actors["unnamed_count"], rows=", ".join(map(str, actors["unnamed"]))))
    which = f" ({', '.join(erasure['uncounted'])})" if erasure["uncounted"] else ""
    lines.append(texts("erasure_ok", jobs=erasure["erased_jobs"], runs=erasure["runs"]) if erasure["ok"] else
                 texts("erasure_bad", jobs=erasure["erased_jobs"], counted=erasure["counted"], which=which))
    bad = {m["card_type"] for m in result["ledger"]}
    lines += [texts("ledger_bad", type=m["card_type"], field=m["field"], stock=m["stock"], moved=m["moved"])
              for m in result["ledger"]]
    lines += [texts("ledger_ok", type=t) for t in result["card_types"] if t not in bad]
    return "\n".join(lines) + "\n"


def refusal(texts: Texts, error: dict[str, Any]) -> str:
    """A daemon's error response for people: code, message, and each problem on its own line."""
    lines = [texts("refused", code=error.get("code", "?"), message=error.get("message", ""))]
    for problem in (error.get("details") or {}).get("problems", []):
        lines.append(f"  - {problem.get('field') or '(request)'}: {problem.get('problem')}")
    return "\n".join(lines) + "\n"


def confirmation(texts: Texts, command: str, data: dict[str, Any], payload: dict[str, Any]) -> str:
    """What a changing command did, in a sentence (and for pause/resume, the mode it left)."""
    if command == "job/cancel":
        return texts("cancelled", job=data["job_id"]) + "\n"
    if command == "job/resolve":
        if payload["outcome"] == "printed":
            return texts("resolved_printed", job=data["job_id"]) + "\n"
        return texts("resolved_spoiled", job=data["job_id"], state=texts.optional("state_", data["state"])) + "\n"
    if command == "blanks/receive":
        return texts("received", batch=data["batch_id"], type=data["card_type"], stock=data["in_stock"]) + "\n"
    if command == "blanks/adjust":
        return texts("adjusted", type=data["card_type"], delta=payload["delta"], stock=data["in_stock"]) + "\n"
    mode = texts("mode_now", mode=mode_words(texts, data.get("mode"), None),
                 why=f" ({texts.optional('why_', data['reason'])})" if data.get("reason") else "")
    if command == "maintenance/cleaned":
        cleaning = (data.get("printer") or {}).get("cards_until_cleaning", "?")
        return texts("cleaned", cleaning=cleaning) + "\n" + mode + "\n"
    key = {"queue/pause": "paused", "queue/resume": "resumed"}[command]
    return texts(key) + "\n" + mode + "\n"
