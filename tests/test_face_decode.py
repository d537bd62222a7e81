"""A face handed to Pillow with its image data stored uncompressed decodes to the same pixels, or fails the same way."""

from __future__ import annotations

import base64
import io
import os
import random
import sys
import tracemalloc
import warnings
import zlib

import pytest
from PIL import Image
from png_surgery import join, split
from test_png_structure import MODES, _face, _mutants

from kartud.hw.printer import panels
from kartud.hw.printer.knowledge import PANEL_HEIGHT, PANEL_WIDTH
from kartud.hw.printer.png_data import with_stored_image_data


def _decoded(data: bytes):
    """What Pillow makes of ``data``: its mode, size and pixels, or the kind of error it raises. A header that
    a damaged byte made huge is compared by its size alone (intake refuses such a face before it is stored)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > 4 * 1016 * 648:
                    return "too large", image.size
                image.load()
                return image.mode, image.size, image.tobytes()
    except Exception as exc:                            # what the driver would meet: its kind is compared
        return type(exc).__name__


@pytest.mark.parametrize("mode", MODES)
def test_every_face_and_every_mutant_decodes_as_sent(mode):
    rng = random.Random(mode)
    rewritten = 0
    for dpi in (False, True):
        face = _face(mode, rng, dpi)
        stored = with_stored_image_data(face)
        # A plain face is rewritten: one IDAT, whose zlib stream is stored blocks (BTYPE 00) only.
        idat = [body for name, body in split(stored) if name == b"IDAT"]
        assert stored != face and len(idat) == 1 and idat[0][2] & 0b110 == 0
        assert _decoded(stored) == _decoded(face)
        for mutant in _mutants(face, rng):
            after = with_stored_image_data(mutant)
            rewritten += after != mutant
            assert _decoded(after) == _decoded(mutant)
    assert rewritten                                    # some mutants were rewritten, not only passed through


def test_a_damaged_image_data_stream_is_left_to_pillow_as_sent():
    face = _face("RGB", random.Random(1), False)
    # The zlib stream's own check (adler-32) wrong, the chunk's CRC made right: only the inflate sees it.
    broken = join([(name, body[:-4] + bytes(4) if name == b"IDAT" else body) for name, body in split(face)])
    assert with_stored_image_data(broken) == broken
    assert with_stored_image_data(face[:-3]) == face[:-3]
    assert with_stored_image_data(b"not a png") == b"not a png"


def test_without_zlib_ng_the_face_goes_to_pillow_as_sent(monkeypatch):
    monkeypatch.setitem(sys.modules, "zlib_ng", None)   # import fails
    face = _face("RGB", random.Random(2), False)
    assert with_stored_image_data(face) == face


def test_the_printer_s_panels_are_byte_for_byte_those_of_the_face_as_sent(monkeypatch):
    rng = random.Random(3)
    image = Image.new("RGB", (1016, 648), (255, 255, 255))
    for _ in range(400):                                # blocks of colour, dark and light, as on a card
        x, y = rng.randrange(1000), rng.randrange(630)
        image.paste(tuple(rng.randrange(256) for _ in range(3)), (x, y, x + rng.randrange(4, 60), y + rng.randrange(4, 30)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    settings = panels.PanelSettings(width=PANEL_WIDTH, height=PANEL_HEIGHT)
    fast = panels.render_face(out.getvalue(), settings)
    monkeypatch.setattr(panels, "with_stored_image_data", lambda data: data)
    assert panels.render_face(out.getvalue(), settings) == fast


def test_image_data_that_inflates_past_what_the_header_allows_is_left_to_pillow():
    """A decompression bomb in a small face's IDAT is not inflated in full here: Pillow stops at the rows it needs."""
    face = _face("RGB", random.Random(4), False)
    bomb = zlib.compress(bytes(64 * 1024 * 1024), 9)     # 64 MiB of zeros in about 64 KiB, for a 37x23 face
    chunks = [(name, bomb if name == b"IDAT" else body) for name, body in split(face)]
    swollen = join(chunks)
    tracemalloc.start()
    try:
        assert with_stored_image_data(swollen) == swollen
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024                       # the header allows 37 x 23 pixels, not 64 MiB of them


def _swollen(face: bytes, extra: int) -> bytes:
    """``face`` with ``extra`` zero bytes inflated after its scanlines (a few hundred KiB compressed), CRCs right:
    Pillow reads the rows it needs and ignores the rest, so intake takes it; a decode that inflated it all
    would hold ``extra`` bytes twice over."""
    chunks = split(face)
    scanlines = zlib.decompress(b"".join(body for name, body in chunks if name == b"IDAT"))
    stream = zlib.compressobj(9)
    body = stream.compress(scanlines) + stream.compress(bytes(extra)) + stream.flush()
    first = next(n for n, (name, _) in enumerate(chunks) if name == b"IDAT")
    return join(chunks[:first] + [(b"IDAT", body)] + [chunk for chunk in chunks[first:] if chunk[0] != b"IDAT"])


def test_a_face_swollen_with_a_bomb_prints_as_its_plain_twin_without_the_daemon_holding_the_bomb(room):
    """Through the real daemon and the simulated printer: the same face, plain and with 256 MiB of zeros after
    its scanlines, both accepted; each leaves the printer once, their printed fronts (the simulator's own
    images, composed from the panels it received) are the same pixels, and the daemon never held the bomb."""
    image = Image.new("RGB", (1016, 648), (250, 250, 250))
    rng = random.Random(5)
    for _ in range(200):
        x, y = rng.randrange(1000), rng.randrange(630)
        image.paste(tuple(rng.randrange(256) for _ in range(3)), (x, y, x + rng.randrange(4, 60), y + rng.randrange(4, 30)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    plain, swollen = out.getvalue(), _swollen(out.getvalue(), 256 * 1024 * 1024)
    room.start()
    room.receive_blanks(5)
    jobs = [room.job(front_png=base64.b64encode(face).decode()) for face in (plain, swollen)]
    for job in jobs:
        assert room.submit(job)["status"] == "ok"
    for job in jobs:
        room.wait_state(job["job_id"], "printed", timeout=60)
    cards = room.cards()
    assert [card["destination"] for card in cards] == ["output", "output"]
    fronts = [Image.open(os.path.join(room.dir, "cards", f"{card['seq']}-front.png")).tobytes() for card in cards]
    assert fronts[0] == fronts[1]
    with open(f"/proc/{room.process.pid}/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    assert peak_kib < 200 * 1024, f"the daemon's peak RSS was {peak_kib // 1024} MiB"
