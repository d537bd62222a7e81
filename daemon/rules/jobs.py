"""What a job is: its states and legal transitions, validation of a submitted job, and its public view."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from kartud.hw.printer.knowledge import FACE_SIZES

from ..rules.card_types import CARD_TYPES, KIA, has_chip
from ..rules.errors import CommandError, invalid_payload
from ..rules.request_ids import TRANSPORT_FIELDS, Memo, request_id_problem

QUEUED, PRINTING, PRINTED, FAILED, CANCELLED, EXPIRED, IN_DOUBT = (
    "queued", "printing", "printed", "failed", "cancelled", "expired", "in_doubt")
STATES = (QUEUED, PRINTING, PRINTED, FAILED, CANCELLED, EXPIRED, IN_DOUBT)
TERMINAL = (PRINTED, FAILED, CANCELLED, EXPIRED)
# States in which a job holds its record: a second job for the same record is refused.
HOLDS_RECORD = (QUEUED, PRINTING, PRINTED, IN_DOUBT)
STEPS = ("feeding", "encoding", "printing", "ejecting")

# The only moves a job may make. Everything else is a bug and is refused by the store.
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({PRINTING, CANCELLED, EXPIRED, FAILED}),   # failed: its personal data is missing
    PRINTING: frozenset({PRINTED, QUEUED, FAILED, IN_DOUBT}),
    IN_DOUBT: frozenset({PRINTED, QUEUED, FAILED}),
    PRINTED: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
    EXPIRED: frozenset(),
}


class IllegalTransition(Exception):
    """A state change the job state machine does not allow."""


def check_transition(old: str, new: str) -> None:
    """Raise :class:`IllegalTransition` unless ``old -> new`` is allowed."""
    if new not in TRANSITIONS.get(old, ()):
        raise IllegalTransition(f"a job cannot go from {old} to {new}")


ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
FILE_ID_PATTERN = re.compile(r"[0-9A-Fa-f]{4}")
CARD_SIZES = FACE_SIZES  # a face as the printer takes it: 1016x648 or 648x1016 pixels (300 dpi)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHIP_BYTES = 64 * 1024  # the most encoder.chip_capacity_bytes may say (chip EEPROMs are 8-80 KB)
CHIP_CAPACITY_BYTES = 8 * 1024  # what an e-KTP chip holds (8 KB): encoder.chip_capacity_bytes' default
MAX_CHIP_FILE_BYTES = 0x8000  # UPDATE BINARY addresses a file with a 15-bit offset
CHIP_TOO_LARGE = "chip_too_large"
# File ids ISO 7816-4 keeps (3F00 the master file, 3FFF and FFFF): a chip refuses to create them.
RESERVED_FILE_IDS = ("3F00", "3FFF", "FFFF")
# Spoil reasons whose cause another blank cannot change: the job fails after the first blank.
NOT_RETRIED = frozenset({CHIP_TOO_LARGE})
REPRINT_REASONS = ("lost", "damaged", "data_change")
KNOWN_FIELDS = {"job_id", "record_id", "card_type", "nik", "front_png", "back_png", "chip", "priority",
                "not_after", "reprint", *TRANSPORT_FIELDS}
# RFC 3339's date-time (``T`` or ``t``, or a space as its section 5.6 allows), offset required below;
# [0-9], not \d, which also matches Arabic-Indic and fullwidth digits.
RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
                     r"([Zz]|[+-][0-9]{2}:[0-9]{2})?")


@dataclass
class NewJob:
    """A validated submission, ready for the store."""

    job_id: str
    record_id: str
    card_type: str
    nik: str
    front_png: bytes
    back_png: bytes | None
    chip_files: dict[str, bytes] | None
    priority: int
    not_after: datetime | None
    reprint: dict[str, str] | None
    content_sha256: str = ""            # :func:`content_hash` of this job; filled in when left empty
    extra: dict[str, Any] = field(default_factory=dict)
    payload_sha256: str | None = None   # :func:`payload_hash` of the payload as sent, see has_hash
    memo: Memo | None = None            # the request it came in, when that is to be remembered
    sent: dict[str, Any] | None = field(default=None, repr=False)   # the payload as sent, for payload_sha256

    def __post_init__(self):
        if not self.content_sha256:
            self.content_sha256 = content_hash(self)

    def has_hash(self, stored: str) -> bool:
        """Whether ``stored``, a stored job's ``content_sha256``, is this job's: its :func:`content_hash`, or
        the :func:`payload_hash` that jobs stored before jobs were compared with defaults applied hold."""
        if stored == self.content_sha256:
            return True
        # Only here, for a job_id the store holds already: the whole payload as JSON again, then hashed, was
        # about a tenth of the daemon's CPU for a job with a photo face (py-spy, 2026-12-02).
        if self.payload_sha256 is None and self.sent is not None:
            self.payload_sha256 = payload_hash(self.sent)
        return stored == self.payload_sha256

    @property
    def nik_masked(self) -> str:
        return mask_nik(self.nik)


def mask_nik(nik: str) -> str:
    """The first 6 and last 4 digits of a NIK, the rest hidden: ``357401******0001``."""
    return nik[:6] + "*" * (len(nik) - 10) + nik[-4:] if len(nik) > 10 else "*" * len(nik)


def erased_mask(nik_masked: str) -> str:
    """What ``nik_masked`` keeps once the job's personal data is erased: the first 4 digits (province
    and kabupaten/kota), nothing that narrows the person down further.

    >>> erased_mask("357401******0001")
    '3574************'
    """
    return nik_masked[:4] + "*" * (len(nik_masked) - 4)


def nik_problem(nik: str) -> str | None:
    """What is structurally impossible about a NIK, or None. Region codes are not checked (they get renumbered)."""
    if not re.fullmatch(r"[0-9]{16}", nik):  # not \d: that also matches Arabic-Indic, fullwidth, ... digits
        return "must be exactly 16 digits"
    day, month, serial = int(nik[6:8]), int(nik[8:10]), nik[12:]
    if not (1 <= month <= 12):
        return "digits 9-10 (birth month) must be 01-12"
    if not (1 <= day <= 31 or 41 <= day <= 71):
        return "digits 7-8 (birth day) must be 01-31, or 41-71 for women"
    if serial == "0000":
        return "digits 13-16 (serial) must not be 0000"
    return None


def content_hash(job: "NewJob") -> str:
    """SHA-256 of a validated job as the box holds it: defaults applied, ``not_after`` as a UTC instant,
    chip file ids in capitals, images and chip files by their bytes. Two payloads that ask for the same
    card (``"priority": 0`` written out or left to its default, ``back_png`` null or absent, ``not_after``
    in another offset, ``request_id``, ``sig`` and ``ts`` aside) have one hash: a resubmission.
    """
    def digest(data: bytes | None) -> str | None:
        return None if data is None else hashlib.sha256(data).hexdigest()

    body = {"job_id": job.job_id, "record_id": job.record_id, "card_type": job.card_type, "nik": job.nik,
            "front_png": digest(job.front_png), "back_png": digest(job.back_png),
            "chip_files": None if job.chip_files is None else {k: digest(v) for k, v in job.chip_files.items()},
            "priority": job.priority, "reprint": job.reprint,
            "not_after": job.not_after.astimezone(timezone.utc).isoformat() if job.not_after else None}
    canonical = json.dumps(["job", 2, body], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def payload_hash(payload: dict[str, Any]) -> str:
    """The hash the store kept before :func:`content_hash`: SHA-256 of the payload as sent, transport
    fields aside. Jobs stored then are still recognised by it when they are sent again."""
    body = {k: v for k, v in payload.items() if k not in TRANSPORT_FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, without decoding the image."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


# A full decode of a face: what is wrong with the image, or None. The service passes Pillow's
# (kartud.service.faces.png_problem); the rules import no image library.
DecodeProblem = Callable[[bytes], "str | None"]


def _decode_base64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


class _Problems(list):
    reason: str | None = None        # a contract reason code for the refusal as a whole (chip_too_large)

    def add(self, field_name: str, problem: str, reason: str | None = None) -> None:
        self.append({"field": field_name, "problem": problem})
        self.reason = reason or self.reason


def _check_id(payload, name, problems) -> str:
    value = payload.get(name)
    if value is None:
        problems.add(name, "is required")
    elif not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        problems.add(name, "must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    else:
        return value
    return ""


def _check_png(payload, name, problems, required: bool, decode_problem: DecodeProblem | None) -> bytes | None:
    if name not in payload or (not required and payload[name] is None):
        if required:
            problems.add(name, "is required")
        return None
    data = _decode_base64(payload[name])
    if data is None:
        problems.add(name, "must be a base64 string")
        return None
    size = _png_size(data)
    if size is None:
        problems.add(name, "is not a PNG image")
    elif size not in CARD_SIZES:
        problems.add(name, f"must be 1016x648 or 648x1016 pixels (300 dpi card face), got {size[0]}x{size[1]}")
    elif decode_problem is not None and (problem := decode_problem(data)) is not None:
        # Decoded only after the IHDR size check: a decompression bomb (a huge declared size) never
        # reaches the decoder, and 1016x648 bounds its output.
        problems.add(name, problem)
    return data


def _check_chip(payload, card_type, problems, capacity: int) -> dict[str, bytes] | None:
    chip = payload.get("chip")
    if card_type == KIA:
        if chip is not None:
            problems.add("chip", "must be absent for KIA (a KIA card has no chip)")
        return None
    if chip is None:
        if has_chip(card_type):
            problems.add("chip", "is required for KTP_EL: {\"files\": {\"0101\": \"<base64>\", ...}}")
        return None
    files = chip.get("files") if isinstance(chip, dict) else None
    if not isinstance(files, dict) or not files:
        problems.add("chip.files", "must be a non-empty object mapping 4-hex-digit file ids to base64 data")
        return None
    decoded, total = {}, 0
    for file_id, value in files.items():
        if not isinstance(file_id, str) or not FILE_ID_PATTERN.fullmatch(file_id):
            problems.add("chip.files", f"file id {str(file_id)[:16]!r} must be 4 hex digits")
            continue
        if file_id.upper() in decoded:  # "0a01" and "0A01" are one file: keeping either would lose the other
            problems.add("chip.files", f"file id {file_id.upper()} is given twice")
            continue
        if file_id.upper() in RESERVED_FILE_IDS:
            problems.add("chip.files", f"file id {file_id.upper()} is reserved by ISO 7816-4 (3F00, 3FFF, FFFF) and "
                         "no chip creates it: use another")
            continue
        data = _decode_base64(value)
        if data is None:
            problems.add(f"chip.files.{file_id}", "must be a base64 string")
            continue
        decoded[file_id.upper()] = data
        total += len(data)
    # Refused here, before a blank is spent on it: the encoder would find the same at the chip.
    if total > min(capacity, MAX_CHIP_BYTES):
        problems.add("chip.files", f"total {total} bytes is more than a chip holds ({min(capacity, MAX_CHIP_BYTES)} "
                     "bytes, encoder.chip_capacity_bytes): send smaller files", CHIP_TOO_LARGE)
    elif large := sorted(file_id for file_id, data in decoded.items() if len(data) > MAX_CHIP_FILE_BYTES):
        problems.add(f"chip.files.{large[0]}", f"is more than {MAX_CHIP_FILE_BYTES} bytes, the most one chip file "
                     "can hold: split it", CHIP_TOO_LARGE)
    return decoded


def validate_submission(payload: Any, card_types: list[str], decode_problem: DecodeProblem | None = None,
                        chip_capacity: int = CHIP_CAPACITY_BYTES) -> NewJob:
    """Check a ``job/submit`` payload and return a :class:`NewJob`.

    Raises ``CommandError`` ``invalid_payload`` listing every problem, or
    ``unsupported_card_type`` when the station does not print that type.

    ``decode_problem`` decodes each face whose IHDR says it is card-sized (the daemon passes
    :func:`kartud.service.faces.png_problem`); without it a face is checked by its header only,
    which suits faces from a trusted renderer (tests, the demo) and nothing from the office.
    ``chip_capacity`` is the bytes a blank's chip holds (``encoder.chip_capacity_bytes``): chip files
    that cannot fit are a problem, and the refusal's details carry ``"reason": "chip_too_large"``.
    """
    problems = _Problems()
    job_id = _check_id(payload, "job_id", problems)
    record_id = _check_id(payload, "record_id", problems)
    card_type = payload.get("card_type")
    if card_type is None:
        problems.add("card_type", "is required")
    elif card_type not in CARD_TYPES:
        problems.add("card_type", f"must be {' or '.join(CARD_TYPES)}")
    nik = payload.get("nik")
    if nik is None:
        problems.add("nik", "is required")
    elif not isinstance(nik, str):
        problems.add("nik", "must be a string of 16 digits")
    elif (problem := nik_problem(nik)) is not None:
        problems.add("nik", problem)
    front = _check_png(payload, "front_png", problems, required=True, decode_problem=decode_problem)
    back = _check_png(payload, "back_png", problems, required=False, decode_problem=decode_problem)
    chip_files = _check_chip(payload, card_type, problems, chip_capacity)
    priority = payload.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 9:
        problems.add("priority", "must be an integer 0-9")
    not_after = _check_not_after(payload.get("not_after"), problems)
    reprint = payload.get("reprint")
    if reprint is not None:
        if not isinstance(reprint, dict) or reprint.get("reason") not in REPRINT_REASONS:
            problems.add("reprint.reason", f"must be one of {', '.join(REPRINT_REASONS)}")
        elif not isinstance(reprint.get("of_record_id"), str) or not ID_PATTERN.fullmatch(reprint["of_record_id"]):
            problems.add("reprint.of_record_id", "must be the record id of the card being replaced")
        for name in sorted(set(reprint) - {"reason", "of_record_id"}) if isinstance(reprint, dict) else ():
            problems.add(f"reprint.{name[:64]}", "is not a field of reprint (of_record_id, reason)")
    if payload.get("request_id") is not None and (problem := request_id_problem(payload["request_id"])) is not None:
        problems.add("request_id", problem)
    for name in payload:
        if name not in KNOWN_FIELDS:
            problems.add(str(name)[:64], "is not a field of a job")
    if problems:
        refusal = invalid_payload(list(problems))
        if problems.reason:
            refusal.details["reason"] = problems.reason
        raise refusal
    if card_type not in card_types:
        raise CommandError("unsupported_card_type",
                           f"this station prints {', '.join(card_types)} only, not {card_type}",
                           {"card_types": card_types})
    return NewJob(job_id, record_id, card_type, nik, front, back, chip_files, priority, not_after, reprint,
                  sent=payload)


def _check_not_after(value: Any, problems: _Problems) -> datetime | None:
    """An RFC 3339 time with an offset whose UTC instant exists: ``9999-12-31T23:59:59-12:00`` is past
    the last instant Python (and so the store and the timers) can hold."""
    if value is None:
        return None
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        problems.add("not_after", "must be an RFC 3339 time such as 2026-12-01T00:00:00+07:00")
        return None
    try:
        when = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
    except ValueError:
        problems.add("not_after", "must be an RFC 3339 time such as 2026-12-01T00:00:00+07:00 (no such date)")
        return None
    if when.tzinfo is None:
        problems.add("not_after", "must include a UTC offset, such as +07:00")
        return None
    try:
        when.astimezone(timezone.utc)
    except OverflowError:
        problems.add("not_after", "is out of range: in UTC it must fall between 0001-01-01 and 9999-12-31")
        return None
    return when


def submit_answer(view: dict[str, Any], resubmitted: bool, queue_position: int | None) -> dict[str, Any]:
    """The ``data`` of an accepted ``job/submit``: the job's id, state and place in the queue."""
    data = {"job_id": view["job_id"], "state": view["state"], "queue_position": queue_position}
    if resubmitted:
        data["resubmitted"] = True
    return data


VIEW_FIELDS = ("job_id", "record_id", "card_type", "nik_masked", "state", "step", "reason", "attempts",
               "priority", "created_at", "updated_at", "printed_at", "card_uid", "batch_id")


# Extensions of the view (the contract allows added fields): what an operator decides an in-doubt job on,
# besides its attempts and reason. ``in_doubt_since``: when it went in doubt; ``in_doubt_step``: the step
# its card had reached (``ejecting``: the card was on its way out). Both null unless it is in doubt.
VIEW_EXTENSIONS = ("in_doubt_since", "in_doubt_step")


def job_view(row: dict[str, Any]) -> dict[str, Any]:
    """The public view of a job: no full NIK, image or chip data.

    >>> view = job_view({"job_id": "j-1", "state": "in_doubt", "step": "ejecting", "attempts": 2,
    ...                  "updated_at": "2026-12-02T01:00:00+00:00"})
    >>> view["step"], view["in_doubt_step"], view["in_doubt_since"]
    (None, 'ejecting', '2026-12-02T01:00:00+00:00')
    """
    view = {name: row.get(name) for name in VIEW_FIELDS}
    in_doubt = row.get("state") == IN_DOUBT
    if in_doubt:
        view["step"] = None                 # ``step`` is the step of a card being printed
    view["in_doubt_since"] = row.get("updated_at") if in_doubt else None   # nothing updates an in-doubt job
    view["in_doubt_step"] = row.get("step") if in_doubt else None
    return view
