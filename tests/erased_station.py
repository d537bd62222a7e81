"""A station whose people's personal data was erased, and how to look for it in the files left behind.

Twenty obviously fake people (NIK region 99, names with CONTOH) in a narrow, documented domain, so
that a search over every structurally valid NIK of that domain finishes in seconds:

- every NIK starts ``9901`` (the 4 digits ``nik_masked`` keeps), then a kecamatan ``01``-``99``;
- every birth date is in 1990 (``DDMM90``, the day +40 for women);
- every serial is ``0001``-``0010``.

Each chip's first file holds the person's NIK and name in ASCII (as a chip's biodata would), and each
face carries a run of random bytes of its own, so a search of the raw files for any of them means
something. Faces are PNG headers with noise behind: the store checks a face's header only.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import os
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

from kartud.ledger import quarantine as Q
from kartud.ledger.store import Store
from kartud.rules.jobs import PNG_SIGNATURE, validate_submission
from kartud.rules.request_ids import memo_for

KEY = bytes(range(32))         # the station key of these tests (a key file holds it as hex)
PEOPLE = 20
PREFIX = "9901"
BIRTH_YEAR = 1990
SERIALS = range(1, 11)
GIVEN = ("ADI", "BUDI", "CITRA", "DEWI", "EKO", "FITRI", "GANDA", "HANA", "INDAH", "JOKO")
RETENTION_DAYS = 1


@dataclass
class Person:
    nik: str
    name: str
    job: dict
    secrets: list[bytes] = field(default_factory=list)


def face(rng: random.Random) -> bytes:
    """A card-sized PNG header followed by 4 KB of noise: a face whose bytes are its own."""
    ihdr = struct.pack(">IIBBBBB", 1016, 648, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", binascii.crc32(b"IHDR" + ihdr))
    return PNG_SIGNATURE + chunk + rng.randbytes(4096)


def person(rng: random.Random, serial: int) -> Person:
    female = rng.random() < 0.5
    month = rng.randint(1, 12)
    day = rng.randint(1, calendar.monthrange(BIRTH_YEAR, month)[1])
    nik = f"{PREFIX}{rng.randint(1, 99):02d}{day + (40 if female else 0):02d}{month:02d}{BIRTH_YEAR % 100:02d}" \
          f"{rng.choice(SERIALS):04d}"
    name = f"{GIVEN[serial % len(GIVEN)]} CONTOH NOMOR {serial:02d}"
    biodata = f"NIK={nik};NAMA={name};".encode().ljust(200, b" ")
    photo = rng.randbytes(900)
    front = face(rng)
    job = {"job_id": f"j-{serial:04d}", "record_id": f"PRR-9999-{serial:06d}", "card_type": "KTP_EL", "nik": nik,
           "front_png": base64.b64encode(front).decode(),
           "chip": {"files": {"0101": base64.b64encode(biodata).decode(), "0102": base64.b64encode(photo).decode()}}}
    secrets = [nik.encode(), name.encode(), front[1000:1032], photo[300:332], biodata[:40],
               job["chip"]["files"]["0102"][400:440].encode(), job["front_png"][2000:2040].encode()]
    return Person(nik, name, job, secrets)


def people(seed: int = 14) -> list[Person]:
    rng = random.Random(seed)
    found, niks = [], set()
    while len(found) < PEOPLE:
        candidate = person(rng, len(found) + 1)
        if candidate.nik not in niks:
            niks.add(candidate.nik)
            found.append(candidate)
    return found


def fill(store: Store, everyone: list[Person]) -> None:
    """Every person's job through the store: most printed, one failed, one cancelled by a remembered
    request (its answer holds the job's view), and a quarantined payload holding a NIK and a name."""
    store.receive_blanks("B-1", "KTP_EL", 100, None)
    for p in everyone:
        store.submit_job(validate_submission(p.job, ["KTP_EL"]))
    cancelled, failed = everyone[-1].job["job_id"], everyone[-2].job["job_id"]
    memo = memo_for("job/cancel", {"request_id": "r-cancel", "job_id": cancelled}, keep_days=30)
    store.once(memo, lambda: store.cancel_job(cancelled), lambda view: view)
    for p in everyone[:-1]:
        job_id = p.job["job_id"]
        store.claim(job_id)
        if job_id == failed:
            store.mark_spoiled(job_id, "encode_failed", max_attempts=1)
        else:
            store.mark_printed(job_id, f"04{int(job_id[2:]):012X}")
    poison = f'{{"nik": "{everyone[0].nik}", "nama": "{everyone[0].name}"}}'.encode()
    Q.quarantine(store, "ab" * 32, "job/submit", poison, "ValueError")


def station_files(directory: str | Path) -> list[Path]:
    """Every file of the station's databases in ``directory`` (main files, -wal, -shm), and nothing else."""
    return sorted(p for p in Path(directory).iterdir() if ".db" in p.name and not p.name.endswith(".lock"))


def found_in(files: list[Path], secrets: list[bytes]) -> list[tuple[str, bytes]]:
    """Each ``(file name, secret)`` whose raw bytes hold the secret."""
    hits = []
    for path in files:
        data = path.read_bytes()
        hits += [(path.name, s) for s in secrets if s in data]
    return hits


def write_key(path: str | Path, key: bytes = KEY) -> str:
    """A key file as ``kartud make-key`` writes it: the key in hex, mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex() + "\n")
    return str(path)
