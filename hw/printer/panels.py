"""Card faces to printer panels and back: Y, M, C (5-8 bits a dot), K and O (1 bit), packed MSB first.

A face is a 1016x648 (landscape) or 648x1016 RGB image at 300 dpi. The printer takes every panel
as ``width`` x ``height`` dots (648x1016 by default), so a landscape face is turned by
``rotation`` degrees first. Pure black (every channel at most ``black_threshold``) goes on K
only, so text and lines print crisp in resin black; the rest becomes the amount of dye of each
colour, Y = 255 - blue, M = 255 - green, C = 255 - red, quantised to ``colour_bits``. O is the
overlay varnish: everywhere, except an optional rectangle (over a chip, in landscape card dots).

>>> settings = PanelSettings(colour_bits=5)
>>> panel_size(settings, 5), panel_size(settings, 1)
(411480, 82296)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

from ..lazy_module import LazyModule
from .knowledge import COLOUR_BITS, FACE_SIZES, PANEL_HEIGHT, PANEL_WIDTH
from .png_data import with_stored_image_data

# Pillow (with FreeType, HarfBuzz, libjpeg...) is imported at the first face rendered, not at start: an
# idle daemon is about 8 MiB smaller without it.
Image, ImageChops, ImageDraw = (LazyModule(f"PIL.{name}") for name in ("Image", "ImageChops", "ImageDraw"))

COLOUR_PANELS = ("y", "m", "c")
_TURN = {90: "ROTATE_90", 270: "ROTATE_270"}       # names in Image.Transpose
_UNTURN = {90: "ROTATE_270", 270: "ROTATE_90"}


@dataclass(frozen=True)
class PanelSettings:
    """How faces become panels. ``no_varnish`` is ``(x, y, width, height)`` in landscape card dots, or None."""

    width: int = PANEL_WIDTH
    height: int = PANEL_HEIGHT
    rotation: int = 270
    colour_bits: int = 6
    black_threshold: int = 0
    no_varnish: tuple[int, int, int, int] | None = None

    def __post_init__(self):
        if self.no_varnish is not None:     # a tuple, so that settings stay hashable (the overlay is kept by them)
            object.__setattr__(self, "no_varnish", tuple(self.no_varnish))
        if self.rotation not in _TURN:
            raise ValueError("rotation must be 90 or 270")
        if self.colour_bits not in COLOUR_BITS:
            raise ValueError("colour_bits must be 5, 6, 7 or 8")
        if self.width * self.height % 8:
            raise ValueError("width x height must be a multiple of 8 dots")


def panel_size(settings: PanelSettings, bits: int) -> int:
    """Bytes of one panel of ``bits`` a dot."""
    return settings.width * settings.height * bits // 8


# -- bit packing -----------------------------------------------------------------------------------
# Eight values (one byte each) pack into a group of ``bits`` bytes. Packing takes the eight lanes of a
# panel apart (every eighth byte, one strided copy each, read as a big integer) and builds each packed
# byte of every group at once from the two or three lanes it holds bits of: a lane is masked to the
# bits that stay in the byte and shifted into place, every byte of it in one big-integer operation, and
# the pieces, which never overlap, are joined. Every step is a pass in C over an eighth of the panel.
# Unpacking (the simulator's) shifts whole panels: eight dots form a 64-bit group, and each lane moves
# to its place with one mask and one shift.

@lru_cache(maxsize=8)
def _pack_plan(bits: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """For each byte of a packed group: the lanes it takes bits from, each with where its lowest bit lands."""
    return tuple(tuple((lane, 8 * j + 8 - (lane + 1) * bits) for lane in range(8)
                       if -bits < 8 * j + 8 - (lane + 1) * bits < 8) for j in range(bits))


@lru_cache(maxsize=32)
def _every_byte(groups: int, mask: int) -> int:
    """``mask`` repeated in each of ``groups`` bytes, as a big integer."""
    return int.from_bytes(bytes([mask]) * groups, "big")


@lru_cache(maxsize=16)
def _lane_masks(groups: int, bits: int) -> tuple[int, ...]:
    """For each lane, a mask of its low ``bits`` bits in every 8-byte group."""
    low = (1 << bits) - 1
    masks = []
    for lane in range(8):
        group = bytearray(8)
        group[lane] = low
        masks.append(int.from_bytes(bytes(group) * groups, "big"))
    return tuple(masks)


def pack(values: bytes, bits: int) -> bytes:
    """Pack one value a byte (each below ``2**bits``) into a continuous MSB-first bit stream.

    >>> pack(bytes([1, 0, 1, 1, 0, 0, 0, 1]), 1).hex()
    'b1'
    >>> pack(bytes([31, 0, 0, 0, 0, 0, 0, 1]), 5).hex()
    'f800000001'
    """
    if bits == 8:
        return bytes(values)
    count = len(values)
    groups = -(-count // 8)
    data = values if count % 8 == 0 and isinstance(values, bytes) else bytes(values) + bytes(groups * 8 - count)
    lanes = [int.from_bytes(data[lane::8], "big") for lane in range(8)]
    out = bytearray(groups * bits)
    for j, pieces in enumerate(_pack_plan(bits)):
        packed = 0
        for lane, shift in pieces:      # the bits that would cross into a neighbouring byte are masked off
            if shift >= 0:
                packed |= (lanes[lane] & _every_byte(groups, 0xFF >> shift)) << shift
            else:
                packed |= (lanes[lane] >> -shift) & _every_byte(groups, 0xFF >> -shift)
        out[j::bits] = packed.to_bytes(groups, "big")
    size = -(-count * bits // 8)
    return bytes(out) if size == len(out) else bytes(out[:size])


def unpack(data: bytes, bits: int, count: int) -> bytes:
    """The inverse of :func:`pack`: ``count`` values, one a byte.

    >>> list(unpack(bytes.fromhex('f800000001'), 5, 8))
    [31, 0, 0, 0, 0, 0, 0, 1]
    """
    if bits == 8:
        return bytes(data[:count])
    groups = -(-count // 8)
    data = bytes(data) + bytes(max(0, groups * bits - len(data)))
    spread = bytearray(groups * 8)
    for j in range(bits):
        spread[8 - bits + j::8] = data[j:groups * bits:bits]
    whole = int.from_bytes(spread, "big")
    values = 0
    for lane, mask in enumerate(_lane_masks(groups, bits)):
        values |= (whole << ((8 - bits) * (7 - lane))) & mask
    return values.to_bytes(groups * 8, "big")[:count]


# -- faces to panels -------------------------------------------------------------------------------

def _quantise_table(bits: int) -> list[int]:
    top = (1 << bits) - 1
    return [(v * top + 127) // 255 for v in range(256)]


def _expand_table(bits: int) -> list[int]:
    top = (1 << bits) - 1
    return [(q * 255 + top // 2) // top if q <= top else 255 for q in range(256)]


def open_face(face: bytes | Image.Image) -> Image.Image:
    """A face as an RGB image; PNG bytes or an image of 1016x648 or 648x1016."""
    # PNG bytes reach Pillow with their image data inflated already by zlib-ng: the same pixels in about 2.9 ms, not 5.
    image = face if isinstance(face, Image.Image) else Image.open(io.BytesIO(with_stored_image_data(face)))
    if image.mode == "RGB":
        image.load()        # decoded here as convert() would, without the copy convert() makes of an RGB image
    else:
        image = image.convert("RGB")
    if image.size not in FACE_SIZES:
        raise ValueError(f"a card face must be 1016x648 or 648x1016 pixels, not {image.size[0]}x{image.size[1]}")
    return image


def _to_printer(image: Image.Image, settings: PanelSettings, fill) -> Image.Image:
    """Turn a landscape image upright for the printer and place it on a panel-sized canvas."""
    if image.width > image.height:
        image = image.transpose(Image.Transpose[_TURN[settings.rotation]])
    if image.size == (settings.width, settings.height):
        return image
    canvas = Image.new(image.mode, (settings.width, settings.height), fill)
    canvas.paste(image, (0, 0))
    return canvas


def _from_printer(image: Image.Image, settings: PanelSettings) -> Image.Image:
    """The landscape 1016x648 card face from a panel-sized image."""
    width, height = FACE_SIZES[1]
    return image.crop((0, 0, width, height)).transpose(Image.Transpose[_UNTURN[settings.rotation]])


def _black_mask(image: Image.Image, threshold: int) -> Image.Image:
    """A ``1`` image: set where every channel is at most ``threshold``."""
    red, green, blue = image.split()
    darkest = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    return darkest.point([255 if v <= threshold else 0 for v in range(256)], "1")


def _one_bit_panel(image: Image.Image) -> bytes:
    """A ``1`` image as a 1-bit panel: Pillow packs each row MSB first; a row of a width that is not a multiple
    of 8 would end padded, so such an image is first laid out again eight dots a row (the panel is continuous)."""
    if image.width % 8:
        image = Image.frombytes("L", (8, image.width * image.height // 8), image.tobytes("raw", "L")).point(
            [0] + [255] * 255, "1")
    return image.tobytes("raw", "1")


@lru_cache(maxsize=4)
def _dye_table(bits: int) -> list[int]:
    """For an RGB ``point``: each channel's light to the quantised amount of its dye (255 - light)."""
    quantise = _quantise_table(bits)
    return [quantise[255 - v] for v in range(256)] * 3


def render_face(face: bytes | Image.Image, settings: PanelSettings) -> dict[str, bytes]:
    """The packed Y, M, C, K and O panels of a front face, in the printer's orientation."""
    image = _to_printer(open_face(face), settings, (255, 255, 255))
    black = _black_mask(image, settings.black_threshold)
    # Dye is the complement of the light a channel lets through: cyan absorbs red, and so on. One pass turns
    # the three channels into their dyes, one clears the dots printed on K (no dye under resin black).
    dyes = image.point(_dye_table(settings.colour_bits))
    dyes.paste((0, 0, 0), mask=black)
    # Each band is packed straight from the RGB image (no split into three images first).
    panels = {panel: pack(dyes.tobytes("raw", band), settings.colour_bits)
              for panel, band in zip(COLOUR_PANELS, "BGR")}
    panels["k"] = _one_bit_panel(black)
    panels["o"] = overlay_panel(settings)
    return panels


def render_back_black(face: bytes | Image.Image, settings: PanelSettings) -> bytes:
    """A back face printed in black only: the K panel of every dot darker than mid-grey."""
    image = _to_printer(open_face(face).convert("L"), settings, 255)
    return _one_bit_panel(image.point([255 if v < 128 else 0 for v in range(256)], "1"))


@lru_cache(maxsize=4)
def overlay_panel(settings: PanelSettings) -> bytes:
    """The O panel: varnish everywhere but the ``no_varnish`` rectangle (the same for every card: kept)."""
    face = Image.new("1", FACE_SIZES[0], 1)
    if settings.no_varnish:
        x, y, width, height = settings.no_varnish
        ImageDraw.Draw(face).rectangle((x, y, x + width - 1, y + height - 1), fill=0)
    return _one_bit_panel(_to_printer(face, settings, 0))


def full_overlay(settings: PanelSettings) -> bool:
    """True when the overlay covers the whole card (it can then be sent as ``Wcb;o;255``)."""
    return not settings.no_varnish


# -- panels to a face (what the simulator saw) ------------------------------------------------------

def panel_image(data: bytes, bits: int, settings: PanelSettings) -> Image.Image:
    """One packed panel as an 8-bit ``L`` image of its values (0..2**bits-1), printer orientation."""
    count = settings.width * settings.height
    return Image.frombytes("L", (settings.width, settings.height), unpack(data, bits, count))


def compose_face(panels: dict[str, tuple[int, bytes]], settings: PanelSettings) -> Image.Image:
    """The landscape 1016x648 face the panels print: K black over the colour of Y, M and C.

    ``panels`` maps a panel name to ``(bits, packed data)``; a missing panel prints nothing.
    """
    size = (settings.width, settings.height)
    light = []
    for panel in ("c", "m", "y"):                    # red, green, blue light left after each dye
        if panel in panels:
            bits, data = panels[panel]
            dye = panel_image(data, bits, settings).point(_expand_table(bits))
            light.append(ImageChops.invert(dye))
        else:
            light.append(Image.new("L", size, 255))
    image = Image.merge("RGB", light)
    if "k" in panels:
        bits, data = panels["k"]
        ink = panel_image(data, bits, settings).point([255 if v else 0 for v in range(256)])
        image.paste((0, 0, 0), mask=ink)
    return _from_printer(image, settings)
