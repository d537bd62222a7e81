"""Obviously fake people and their print-ready jobs, for the demo, the tests and an integrator's trial runs.

Every NIK starts with region 99 (no such province) and every name carries "CONTOH" (specimen), so
nothing generated here can be mistaken for a real citizen.
"""

from __future__ import annotations

import base64
import io
import random
from dataclasses import dataclass

from ..rules.card_types import has_chip

GIVEN = ("ADI", "BUDI", "CITRA", "DEWI", "EKO", "FITRI", "GANDA", "HANA", "INDAH", "JOKO", "KARTIKA", "LUKMAN",
         "MAYA", "NANDA", "OKTA", "PUTRI", "RANI", "SARI", "TONO", "UMI", "WAHYU", "YANTI")
FAMILY = ("CONTOH", "CONTOH PALSU", "SPESIMEN CONTOH")


@dataclass
class FakePerson:
    name: str
    nik: str
    female: bool
    skin: tuple[int, int, int]


def fake_person(rng: random.Random, serial: int) -> FakePerson:
    """A made-up person whose NIK is structurally valid but in the non-existent region 99."""
    female = rng.random() < 0.5
    day = rng.randint(1, 28) + (40 if female else 0)
    month = rng.randint(1, 12)
    year = rng.randint(0, 99)
    nik = f"99{rng.randint(1, 99):02d}{rng.randint(1, 99):02d}{day:02d}{month:02d}{year:02d}{serial % 9999 + 1:04d}"
    name = f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
    skin = rng.choice([(241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36)])
    return FakePerson(name, nik, female, skin)


def render_front(person: FakePerson, rng: random.Random, card_type: str = "KTP_EL") -> bytes:
    """The card's front face as a 1016x648 PNG: a drawn face, the name, a masked NIK, a SPECIMEN mark."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (1016, 648), (176, 212, 235) if card_type == "KTP_EL" else (250, 214, 165))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=34)
    small = ImageFont.load_default(size=24)
    draw.text((40, 30), "KARTU CONTOH - BUKAN KARTU ASLI" if card_type == "KTP_EL" else "KIA CONTOH - SPESIMEN",
              fill=(20, 40, 90), font=font)
    draw.text((40, 110), f"NIK   : {person.nik[:6]}******{person.nik[-4:]}", fill=(0, 0, 0), font=font)
    draw.text((40, 170), f"Nama  : {person.name}", fill=(0, 0, 0), font=font)
    draw.text((40, 230), f"Jenis : {'PEREMPUAN' if person.female else 'LAKI-LAKI'}", fill=(0, 0, 0), font=small)
    # A cartoon face in the photo box, different for everyone.
    box = (720, 110, 960, 430)
    draw.rectangle(box, fill=(200, 30, 30) if rng.random() < 0.5 else (30, 60, 200))
    cx, cy = 840, 260
    draw.ellipse((cx - 80, cy - 100, cx + 80, cy + 100), fill=person.skin)
    hair = rng.choice([(20, 20, 20), (60, 40, 20), (90, 60, 30)])
    draw.chord((cx - 85, cy - 110, cx + 85, cy + 20), 180, 360, fill=hair)
    for dx in (-35, 35):
        draw.ellipse((cx + dx - 10, cy - 15, cx + dx + 10, cy + 5), fill=(255, 255, 255))
        draw.ellipse((cx + dx - 5, cy - 10, cx + dx + 5, cy), fill=(30, 30, 30))
    draw.arc((cx - 40, cy + 20, cx + 40, cy + 70), 20, 160, fill=(120, 20, 20), width=5)
    draw.rectangle((cx - 120, cy + 110, cx + 120, cy + 170), fill=(40, 40, 40))
    draw.text((300, 560), "SPECIMEN", fill=(230, 60, 60), font=ImageFont.load_default(size=60))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def fake_job(rng: random.Random, serial: int, card_type: str = "KTP_EL", job_id: str | None = None,
             record_id: str | None = None, front_png: bytes | None = None) -> dict:
    """A complete ``job/submit`` payload for a fake person. Chip files are random, so unique per job."""
    person = fake_person(rng, serial)
    job = {
        "job_id": job_id or f"j-demo-{serial:05d}",
        "record_id": record_id or f"PRR-9999-{serial:06d}",
        "card_type": card_type,
        "nik": person.nik,
        "front_png": base64.b64encode(front_png or render_front(person, rng, card_type)).decode(),
        "priority": 0,
    }
    if has_chip(card_type):
        job["chip"] = {"files": {
            "0101": base64.b64encode(rng.randbytes(rng.randint(200, 600))).decode(),
            "0102": base64.b64encode(rng.randbytes(rng.randint(500, 1500))).decode(),
        }}
    return job
