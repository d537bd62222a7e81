"""job/submit for the fuzz tests: good jobs of fake people, near misses of every job field, and the contract's verdict on any job."""

from __future__ import annotations

import base64
import binascii
import io
import random
import re

from card_faces import SMALL_FRONT
from fuzz_contract import (ID, MISSING, Facts, Verdict, bad, either, judge_card_type, judge_id, judge_int,
                           judge_not_after, ok)
from fuzz_domains import B64, Raw, any_value, bad_images, object_of, one_of_list, raw, strings, times
from hypothesis import strategies as st
from PIL import Image

from kartud.room.fake_people import fake_job


def _portrait() -> bytes:
    out = io.BytesIO()
    Image.new("1", (648, 1016), 1).save(out, format="PNG")
    return out.getvalue()


GOOD_FACES = [B64(SMALL_FRONT), B64(_portrait())]
REPRINT_REASONS = ("lost", "damaged", "data_change")
JOB_FIELDS = ("job_id", "record_id", "card_type", "nik", "front_png", "back_png", "chip", "priority", "not_after",
              "reprint")
# The jobs the in-process station starts with (tests/fuzz_station.py), by state.
SEEDED_JOBS = {"j-queued-1": "queued", "j-queued-2": "queued", "j-doubt-1": "in_doubt", "j-doubt-2": "in_doubt",
               "j-printed-1": "printed", "j-cancelled-1": "cancelled"}
SEEDED_RECORDS = [f"PRR-9999-{n:06d}" for n in range(1, 7)]
job_ids = st.one_of(st.integers(1, 10**6).map(lambda n: f"j-fz-{n}"), st.sampled_from(sorted(SEEDED_JOBS)),
                    st.sampled_from(["x" * 64, "A.b_c:d-9", "0"]), st.integers(1, 10**6).map(lambda n: f"j-fz-{n}"))
record_ids = st.one_of(st.integers(1, 10**6).map(lambda n: f"PRR-fz-{n}"), st.sampled_from(SEEDED_RECORDS),
                       st.integers(1, 10**6).map(lambda n: f"PRR-fz-{n}"))


def nik_ok(v) -> bool:
    if not isinstance(v, str) or not re.fullmatch(r"[0-9]{16}", v, re.ASCII):
        return False
    day, month = int(v[6:8]), int(v[8:10])
    return 1 <= month <= 12 and (1 <= day <= 31 or 41 <= day <= 71) and v[12:] != "0000"


def _b64(v) -> bytes | None:
    if not isinstance(v, str):
        return None
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return None


def judge_chip(v, card_type) -> Verdict:
    if card_type == "KIA":
        return ok() if v is MISSING else either("chip is null for a KIA") if v is None else bad("chip on a KIA")
    if card_type != "KTP_EL":
        return ok()                                  # the card type is refused already
    if v is MISSING or v is None:
        return bad("chip missing for a KTP_EL")
    files = v.get("files") if isinstance(v, dict) else None
    if not isinstance(files, dict) or not files:
        return bad("chip.files is not a non-empty object")
    verdicts, total = [], 0
    for file_id, data in files.items():
        if not re.fullmatch(r"[0-9A-Fa-f]{4}", file_id, re.ASCII):
            return bad("a chip file id is not 4 hex digits")
        if file_id.upper() in ("3F00", "3FFF", "FFFF"):
            return bad("a chip file id ISO 7816-4 reserves")
        decoded = _b64(data)
        if decoded is None:
            return bad("chip file data is not base64")
        total += len(decoded)
        if not decoded:
            verdicts.append(either("an empty chip file"))
    if len({k.upper() for k in files}) != len(files):
        verdicts.append(either("a chip file id twice, in two cases"))
    if total > 64 * 1024:
        verdicts.append(either("more chip data than a chip holds"))
    if set(v) != {"files"}:
        verdicts.append(either("chip has other keys than files"))
    return max(verdicts, key=lambda x: x.kind, default=ok())


def judge_face(name: str, v, required: bool) -> Verdict:
    if v is MISSING:
        return bad(f"{name} is required") if required else ok()
    if v is None and not required:
        return either(f"{name} is null")
    return ok() if v in GOOD_FACES else bad(f"{name} is no card face")


def judge_reprint(v) -> Verdict:
    if v is MISSING:
        return ok()
    if v is None:
        return either("reprint is null")
    if not isinstance(v, dict) or v.get("reason") not in REPRINT_REASONS:
        return bad("reprint.reason is none of the reasons")
    of = v.get("of_record_id")
    if not isinstance(of, str) or not ID.fullmatch(of):
        return bad("reprint.of_record_id is no record id")
    return either("reprint has other keys") if set(v) != {"reason", "of_record_id"} else ok()


def judge_submit(payload: dict, facts: Facts) -> list[Verdict]:
    """The contract's verdicts on a job/submit payload, field by field (the worst one decides)."""
    get = lambda name: payload.get(name, MISSING)   # noqa: E731
    nik = get("nik")
    verdicts = [judge_id("job_id")(get("job_id"), facts), judge_id("record_id")(get("record_id"), facts),
                judge_card_type(get("card_type"), facts),
                ok() if nik_ok(nik) else bad("nik is structurally impossible"),
                judge_face("front_png", get("front_png"), True), judge_face("back_png", get("back_png"), False),
                judge_chip(get("chip"), get("card_type")), judge_int("priority", 0, 9)(get("priority"), facts),
                judge_not_after(get("not_after"), facts), judge_reprint(get("reprint"))]
    for name in payload:
        if name not in JOB_FIELDS and name not in ("request_id", "sig", "ts"):
            verdicts.append(either(f"{name[:20]!r} is not a field of a job"))
    return verdicts


SUBMIT_BUSINESS = frozenset({"duplicate_record", "duplicate_nik", "job_id_conflict"})


def _iso(t: float, offset_minutes: int) -> str:
    from datetime import datetime, timedelta, timezone

    zone = timezone(timedelta(minutes=offset_minutes))
    return datetime.fromtimestamp(t, zone).isoformat()


@st.composite
def good_job(draw, now: float) -> dict[str, Raw]:
    """A valid job of a fake person (region 99, a CONTOH name), as raw values by field name."""
    card_type = draw(st.sampled_from(["KTP_EL", "KIA"]))
    serial = draw(st.integers(1, 9998))
    job = fake_job(random.Random(serial), serial, card_type, job_id=draw(job_ids), record_id=draw(record_ids),
                   front_png=SMALL_FRONT)
    job["front_png"] = draw(one_of_list(GOOD_FACES))
    job["priority"] = draw(st.integers(0, 9))
    if draw(st.booleans()):
        job["back_png"] = draw(one_of_list(GOOD_FACES))
    if draw(st.booleans()):
        job["not_after"] = _iso(now + draw(st.integers(2 * 86400, 3000 * 86400)), draw(st.integers(-720, 840)))
    if draw(st.integers(0, 3)) == 0:
        job["reprint"] = {"of_record_id": draw(record_ids), "reason": draw(st.sampled_from(REPRINT_REASONS))}
    if not draw(st.booleans()):
        del job["priority"]                          # the default, 0
    return {name: raw(value) for name, value in job.items()}


def _nik_variants(nik: str) -> list[str]:
    return [nik[:6] + "00" + nik[8:], nik[:6] + "32" + nik[8:], nik[:6] + "40" + nik[8:], nik[:6] + "72" + nik[8:],
            nik[:8] + "13" + nik[10:], nik[:8] + "00" + nik[10:], nik[:12] + "0000", nik[:15], nik + "1",
            nik[:15] + "１", nik[:15] + "٣", " " + nik[1:], nik[:15] + "\0"]


near_niks = st.one_of(st.text(alphabet="0123456789", max_size=20).map(raw),
                      st.integers(1, 9998).map(lambda s: fake_job(random.Random(s), s, "KIA", front_png=b"x")["nik"])
                      .flatmap(lambda nik: st.sampled_from(_nik_variants(nik))).map(raw),
                      st.integers(0, 10**16).map(raw))
hex_ids = st.sampled_from(["0101", "0a0B", "ffff", "FFFF", "0", "01010", "zzzz", "", "０１０１", "\ud800abc"])
chip_data = st.one_of(st.binary(max_size=64).map(B64), st.sampled_from(["", "YQ", "YQ=", "@@", "YQ==\n", None, 1]))
near_chips = st.one_of(
    st.dictionaries(hex_ids, chip_data, max_size=3).map(lambda files: raw({"files": files})),
    one_of_list([{}, {"files": {}}, {"files": []}, {"files": None}, {"files": {"0101": B64(b"x" * 70000)}},
                 {"files": {"0101": "YQ=="}, "extra": 1}, {"FILES": {"0101": "YQ=="}}]).map(raw),
    st.tuples(st.one_of(hex_ids.map(raw), strings), any_value).map(         # any value inside, too
        lambda item: object_of([(raw("files"), object_of([item]))])))
near_reprints = st.one_of(
    st.fixed_dictionaries({"of_record_id": st.one_of(record_ids, strings.map(lambda r: r.value)),
                           "reason": st.sampled_from([*REPRINT_REASONS, "stolen", "LOST", "", None])}).map(raw),
    st.sampled_from([{}, {"reason": "lost"}, {"of_record_id": "PRR-1"}, [], "lost"]).map(raw),
    st.tuples(any_value, any_value).map(lambda t: object_of([(raw("of_record_id"), t[0]), (raw("reason"), t[1])])))
NEAR_JOB_VALUES = {
    "job_id": strings, "record_id": strings, "nik": near_niks, "front_png": bad_images, "back_png": bad_images,
    "card_type": st.sampled_from(["ktp_el", "KTP-EL", "KTP_EL ", "KIA\0", "KTPEL", "SIM", ""]).map(raw),
    "chip": near_chips, "priority": st.integers(-3, 12).map(raw), "not_after": times, "reprint": near_reprints,
}


def near_job_value(name: str):
    """Values of the job field ``name`` that are almost right, or anything at all."""
    return st.one_of(NEAR_JOB_VALUES.get(name, any_value), any_value)

