"""Card faces to Y, M, C, K, O panels and back: packing, orientation, black on K, overlay, round trips."""

from __future__ import annotations

import io
import random

import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image, ImageChops, ImageDraw

from kartud.hw.printer import panels as pn

BITS = (1, 5, 6, 7, 8)


@settings(max_examples=80, deadline=None)
@given(bits=st.sampled_from(BITS), data=st.data())
def test_pack_then_unpack_gives_the_values_back(bits, data):
    values = data.draw(st.lists(st.integers(0, (1 << bits) - 1), max_size=70))
    packed = pn.pack(bytes(values), bits)
    assert len(packed) == -(-len(values) * bits // 8)
    assert list(pn.unpack(packed, bits, len(values))) == values


@pytest.mark.parametrize("bits", BITS)
def test_packing_is_msb_first_and_continuous_across_bytes(bits):
    values = [random.Random(bits).randrange(1 << bits) for _ in range(24)]
    stream = "".join(format(v, f"0{bits}b") for v in values)
    assert pn.pack(bytes(values), bits) == int(stream, 2).to_bytes(len(stream) // 8, "big")


@pytest.mark.parametrize("width, height, sizes", [
    (648, 1016, {1: 82296, 5: 411480, 6: 493776, 7: 576072}),       # tested on hardware (E5)
    (656, 1032, {1: 84624, 5: 423120, 6: 507744, 7: 592368}),       # the 2003 guide's figures (E1)
])
def test_panel_sizes_for_both_published_geometries(width, height, sizes):
    geometry = pn.PanelSettings(width=width, height=height)
    assert {bits: pn.panel_size(geometry, bits) for bits in sizes} == sizes


def _face(seed: int, size=(1016, 648)) -> Image.Image:
    """Colour blocks, a gradient, pure black text-like bars: what a card face has."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(size[0] - 60), rng.randrange(size[1] - 60)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.rectangle((x, y, x + rng.randrange(10, 300), y + rng.randrange(5, 200)), fill=colour)
    for x in range(0, size[0], 4):
        draw.line((x, size[1] - 40, x, size[1] - 1), fill=(x % 256, 255 - x % 256, 128))
    for _ in range(5):
        x, y = rng.randrange(size[0] - 200), rng.randrange(size[1] - 20)
        draw.rectangle((x, y, x + 180, y + 6), fill=(0, 0, 0))
    return image


def _worst(a: Image.Image, b: Image.Image) -> int:
    return max(high for _, high in ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getextrema())


def _round_trip(face: Image.Image, geometry: pn.PanelSettings) -> Image.Image:
    panels = pn.render_face(face, geometry)
    sizes = {name: pn.panel_size(geometry, geometry.colour_bits if name in "ymc" else 1) for name in panels}
    assert {name: len(data) for name, data in panels.items()} == sizes
    return pn.compose_face({name: (geometry.colour_bits if name in "ymc" else 1, data)
                            for name, data in panels.items()}, geometry)


# The largest error of one channel after quantising to ``bits`` and back: half a step, rounded up.
TOLERANCE = {5: 5, 6: 3, 7: 2, 8: 0}


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), bits=st.sampled_from((5, 6, 7, 8)), rotation=st.sampled_from((90, 270)))
def test_decoding_the_panels_gives_the_face_back_within_the_quantisation_error(seed, bits, rotation):
    face = _face(seed)
    back = _round_trip(face, pn.PanelSettings(colour_bits=bits, rotation=rotation))
    assert back.size == (1016, 648)
    assert _worst(back, face) <= TOLERANCE[bits]


def test_a_larger_panel_geometry_round_trips_too():
    face = _face(3)
    assert _worst(_round_trip(face, pn.PanelSettings(width=656, height=1032, colour_bits=7)), face) <= 2


def test_a_portrait_face_is_sent_as_it_is_and_decodes_landscape():
    face = _face(5)
    portrait = face.transpose(Image.Transpose.ROTATE_270)          # what a 270-degree printer takes
    geometry = pn.PanelSettings(colour_bits=8)
    assert pn.render_face(portrait, geometry) == pn.render_face(face, geometry)
    assert _worst(_round_trip(portrait, geometry), face) == 0


def test_pure_black_goes_on_k_only_and_nothing_else_does():
    face = Image.new("RGB", (1016, 648), (250, 250, 250))
    face.paste((0, 0, 0), (100, 100, 300, 120))
    face.paste((1, 1, 1), (100, 200, 300, 220))                     # near-black is colour, not K
    geometry = pn.PanelSettings(colour_bits=8)
    panels = pn.render_face(face, geometry)
    k = pn.panel_image(panels["k"], 1, geometry)
    assert k.getextrema() == (0, 1) and k.histogram()[1] == 200 * 20
    c = pn.panel_image(panels["c"], 8, geometry)
    black_dot = (100, 100 + 10)                                     # inside the K bar, in landscape
    turned = pn._from_printer(c, geometry)
    assert turned.getpixel(black_dot) == 0                          # no dye under resin black
    assert turned.getpixel((150, 210)) == 254                       # the near-black bar is full dye


def test_a_threshold_puts_dark_dots_on_k():
    face = Image.new("RGB", (1016, 648), (20, 20, 20))
    panels = pn.render_face(face, pn.PanelSettings(black_threshold=32))
    assert set(panels["k"]) == {0xFF} and set(panels["c"]) == {0}


def test_the_overlay_is_full_or_spares_the_rectangle_over_the_chip():
    geometry = pn.PanelSettings()
    assert set(pn.overlay_panel(geometry)) == {0xFF} and pn.full_overlay(geometry)
    spared = pn.PanelSettings(no_varnish=(800, 200, 120, 150))
    overlay = pn._from_printer(pn.panel_image(pn.overlay_panel(spared), 1, spared), spared)
    assert not pn.full_overlay(spared)
    assert overlay.getpixel((800, 200)) == 0 and overlay.getpixel((919, 349)) == 0
    assert overlay.getpixel((799, 200)) == 1 and overlay.getpixel((920, 349)) == 1
    assert overlay.histogram()[0] == 120 * 150


def test_a_back_face_prints_in_black():
    face = Image.new("RGB", (1016, 648), (255, 255, 255))
    face.paste((60, 60, 60), (0, 0, 508, 648))
    k = pn.panel_image(pn.render_back_black(face, pn.PanelSettings()), 1, pn.PanelSettings())
    assert k.histogram()[1] == 508 * 648


@pytest.mark.parametrize("size", [(1000, 648), (648, 648), (1016, 1016)])
def test_a_face_of_another_size_is_refused(size):
    out = io.BytesIO()
    Image.new("RGB", size).save(out, format="PNG")
    with pytest.raises(ValueError, match="1016x648 or 648x1016"):
        pn.render_face(out.getvalue(), pn.PanelSettings())


@pytest.mark.parametrize("bad", [dict(rotation=180), dict(colour_bits=4), dict(width=647, height=1015)])
def test_settings_that_cannot_work_are_refused(bad):
    with pytest.raises(ValueError):
        pn.PanelSettings(**bad)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("as_given", [
    lambda face: face,                                            # an RGB image object, used as it is
    _png,                                                         # RGB PNG bytes: decoded, not copied
    lambda face: _png(face.convert("RGBA")),                      # other modes are converted to RGB
], ids=["rgb-image", "rgb-png", "rgba-png"])
def test_a_face_renders_the_same_however_it_is_given(as_given):
    face = _face(3)
    expected = pn.render_face(_png(face), pn.PanelSettings())
    assert pn.render_face(as_given(face), pn.PanelSettings()) == expected


def test_a_palette_face_renders_as_its_rgb_colours():
    face = _face(4).quantize(64)
    assert pn.render_face(_png(face), pn.PanelSettings()) == pn.render_face(face.convert("RGB"), pn.PanelSettings())


@pytest.mark.parametrize("size", [(1016, 648), (648, 1016)])
def test_rendering_leaves_the_given_image_as_it_was(size):
    face = _face(5, size)
    before = face.tobytes()
    pn.render_face(face, pn.PanelSettings())
    assert face.tobytes() == before
