"""Panels from faces and values packed lane by lane equal, byte for byte, the slower packing before issue 18."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from PIL import Image, ImageChops, ImageDraw

from kartud.hw.printer import panels as pn

LANDSCAPE, PORTRAIT = pn.FACE_SIZES[0], pn.FACE_SIZES[1]
_TURN = {90: Image.Transpose.ROTATE_90, 270: Image.Transpose.ROTATE_270}


# -- the reference: the packing as it was before issue 18, one full-image pass per step ------------

def reference_pack(values: bytes, bits: int) -> bytes:
    """The big-integer packing: all eight lanes of every 8-byte group moved into place with a mask and a shift."""
    if bits == 8:
        return bytes(values)
    count, groups = len(values), -(-len(values) // 8)
    whole = int.from_bytes(bytes(values) + bytes(groups * 8 - count), "big")
    packed = 0
    for lane in range(8):
        group = bytearray(8)
        group[lane] = (1 << bits) - 1
        packed |= (whole & int.from_bytes(bytes(group) * groups, "big")) >> ((8 - bits) * (7 - lane))
    spread = packed.to_bytes(groups * 8, "big")
    out = bytearray(groups * bits)
    for j in range(bits):
        out[j::bits] = spread[8 - bits + j::8]
    return bytes(out[:-(-count * bits // 8)])


def reference_to_printer(image, settings, fill):
    if image.width > image.height:
        image = image.transpose(_TURN[settings.rotation])
    if image.size == (settings.width, settings.height):
        return image
    canvas = Image.new(image.mode, (settings.width, settings.height), fill)
    canvas.paste(image, (0, 0))
    return canvas


def reference_render_face(face, settings):
    image = reference_to_printer(face.convert("RGB"), settings, (255, 255, 255))
    red, green, blue = image.split()
    darkest = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    black = darkest.point([255 if v <= settings.black_threshold else 0 for v in range(256)])
    not_black = ImageChops.invert(black)
    top = (1 << settings.colour_bits) - 1
    quantise = [(v * top + 127) // 255 for v in range(256)]
    panels = {}
    for panel, channel in zip(("y", "m", "c"), (blue, green, red)):
        dye = ImageChops.multiply(ImageChops.invert(channel), not_black).point(quantise)
        panels[panel] = reference_pack(dye.tobytes(), settings.colour_bits)
    panels["k"] = reference_pack(black.point([1 if v else 0 for v in range(256)]).tobytes(), 1)
    face = Image.new("L", LANDSCAPE, 1)
    if settings.no_varnish:
        x, y, width, height = settings.no_varnish
        ImageDraw.Draw(face).rectangle((x, y, x + width - 1, y + height - 1), fill=0)
    panels["o"] = reference_pack(reference_to_printer(face, settings, 0).tobytes(), 1)
    return panels


def reference_render_back_black(face, settings):
    image = reference_to_printer(face.convert("RGB"), settings, (255, 255, 255)).convert("L")
    return reference_pack(image.point([1 if v < 128 else 0 for v in range(256)]).tobytes(), 1)


# -- faces and settings ----------------------------------------------------------------------------
# A face is a few random blocks blown up to card size: small to draw, yet every dot goes through every
# pass. Channel values cluster at the edges (0, 1, 127, 128, 254, 255) where thresholds and rounding bite.

channel = st.one_of(st.integers(0, 255), st.sampled_from([0, 1, 2, 127, 128, 129, 254, 255]))


@st.composite
def faces(draw):
    columns, rows = draw(st.integers(1, 9)), draw(st.integers(1, 7))
    dots = draw(st.lists(st.tuples(channel, channel, channel), min_size=columns * rows, max_size=columns * rows))
    small = Image.new("RGB", (columns, rows))
    small.putdata(dots)
    size = draw(st.sampled_from([LANDSCAPE, PORTRAIT]))
    return small.resize(size, Image.Resampling.NEAREST)


@st.composite
def panel_settings(draw):
    no_varnish = draw(st.none() | st.tuples(st.integers(0, 1000), st.integers(0, 640),
                                            st.integers(1, 300), st.integers(1, 300)))
    width, height = draw(st.sampled_from([(648, 1016), (656, 1032), (652, 1020)]))  # 652: rows not whole bytes
    return pn.PanelSettings(width=width, height=height, rotation=draw(st.sampled_from([90, 270])),
                            colour_bits=draw(st.sampled_from([5, 6, 7, 8])),
                            black_threshold=draw(st.one_of(st.sampled_from([0, 1, 128, 254, 255]),
                                                           st.integers(0, 255))),
                            no_varnish=no_varnish)


@settings(max_examples=40, deadline=None)
@given(face=faces(), settings_=panel_settings())
def test_a_front_packs_byte_for_byte_as_the_reference_does(face, settings_):
    new, reference = pn.render_face(face, settings_), reference_render_face(face, settings_)
    assert list(new) == list(reference)
    for panel in reference:
        assert new[panel] == reference[panel], panel


@settings(max_examples=25, deadline=None)
@given(face=faces(), settings_=panel_settings())
def test_a_black_back_packs_byte_for_byte_as_the_reference_does(face, settings_):
    assert pn.render_back_black(face, settings_) == reference_render_back_black(face, settings_)


def test_the_reference_itself_sees_black_on_k_and_dye_elsewhere():
    """The property above compares two programs; this pins what both must do on a known face."""
    face = Image.new("RGB", LANDSCAPE, (255, 0, 255))        # magenta: dye M only
    ImageDraw.Draw(face).rectangle((0, 0, 7, 647), fill=(0, 0, 0))
    settings_ = pn.PanelSettings(colour_bits=8)
    panels = reference_render_face(face, settings_)
    assert set(panels["y"]) == {0} and set(panels["c"]) == {0}
    assert set(panels["m"]) == {0, 255} and panels["m"].count(0) == 8 * 648
    assert bin(int.from_bytes(panels["k"], "big")).count("1") == 8 * 648
    assert panels == pn.render_face(face, settings_)


@settings(max_examples=200, deadline=None)
@given(bits=st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8]), data=st.data())
def test_values_pack_byte_for_byte_as_the_reference_does(bits, data):
    values = bytes(data.draw(st.lists(st.integers(0, (1 << bits) - 1), max_size=200)))
    assert pn.pack(values, bits) == reference_pack(values, bits)
    assert pn.pack(bytearray(values), bits) == reference_pack(values, bits)
