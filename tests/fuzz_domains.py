"""Every input domain as raw JSON text: any Unicode (lone surrogates, NUL), any number, the ends of time, depth, bad bytes.

A value is a :class:`Raw`: the exact bytes that go on the wire, and what a JSON reader makes of them.
Payloads are assembled from these bytes, never from ``json.dumps``, so that lone surrogates,
``NaN``, ``1e999``, duplicate keys and bytes that are not UTF-8 reach the daemon as they were sent.
Where no Python value stands for the text (an integer of 5,000 digits, nesting 100,000 deep, bytes
that are not UTF-8) the value is a :class:`Marker` saying so.

``KARTUD_FUZZ_EXAMPLES`` is the number of generated requests over all the fuzz tests
(tests/test_fuzz*.py), 2,000 by default; each test takes a fixed share of it (:func:`share`).
"""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

TOTAL_EXAMPLES = int(os.environ.get("KARTUD_FUZZ_EXAMPLES", "2000"))
# pytest's 60 s a test, stretched for a longer run (10,000 took 4 minutes on 2 cores; 100,000 about 40).
TIMEOUT_S = round(60 * max(1.0, TOTAL_EXAMPLES / 2000))


def share(fraction: float) -> int:
    """This test's part of ``KARTUD_FUZZ_EXAMPLES`` (the shares of all fuzz tests add up to 1)."""
    return max(1, round(TOTAL_EXAMPLES * fraction))


@contextmanager
def shrinking_for_at_most(seconds: float):
    """Let hypothesis shrink a failure for ``seconds`` at most (its own limit is 5 minutes), so that a
    failing fuzz test still reports its smallest example found within pytest's time for a test."""
    from hypothesis.internal.conjecture import engine

    before = getattr(engine, "MAX_SHRINKING_SECONDS", None)
    engine.MAX_SHRINKING_SECONDS = seconds
    try:
        yield
    finally:
        if before is not None:
            engine.MAX_SHRINKING_SECONDS = before


@dataclass(frozen=True)
class Marker:
    """Stands for a value that has no faithful Python form; ``whole`` markers spoil the whole payload."""

    what: str
    whole: bool = False        # True: the payload is then not UTF-8 JSON at all, whatever field it is in

    def __repr__(self) -> str:
        return f"<{self.what}>"


NOT_UTF8 = Marker("bytes that are not UTF-8", whole=True)
NOT_JSON = Marker("text that is not JSON", whole=True)
BIG_INT = Marker("an integer of thousands of digits")
DEEP = Marker("nesting deeper than a JSON reader's stack")


@dataclass(frozen=True)
class Raw:
    """One JSON value as sent (``text``) and as read (``value``)."""

    text: bytes
    value: Any

    @property
    def is_string(self) -> bool:
        return isinstance(self.value, str)

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 120 else self.text[:100] + b"...(%d bytes)" % len(self.text)
        return f"Raw({shown!r})"


def raw(value: Any) -> Raw:
    """An ordinary value, written the way any JSON library would (UTF-8 kept as it is, lone surrogates escaped)."""
    try:
        return Raw(json.dumps(value, ensure_ascii=False).encode("utf-8"), value)
    except UnicodeEncodeError:
        return Raw(json.dumps(value).encode("ascii"), value)


def has_marker(value: Any) -> bool:
    if isinstance(value, Marker):
        return True
    if isinstance(value, dict):
        return any(has_marker(k) or has_marker(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_marker(v) for v in value)
    return False


def has_lone_surrogate(value: Any) -> bool:
    """True when ``value`` holds a string that no UTF-8 text can carry (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


# -- strings -------------------------------------------------------------------------------------

SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str, upper: bool) -> str:
    code = ord(ch)
    if code > 0xFFFF:                                           # an escaped pair for the astral planes
        code -= 0x10000
        pair = (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
        return "".join(("\\u%04X" if upper else "\\u%04x") % unit for unit in pair)
    return ("\\u%04X" if upper else "\\u%04x") % code


def _render(ch: str, style: int) -> str:
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF or (code < 0x20 and ch not in SHORT_ESCAPES):
        return _escape(ch, style % 2 == 0)                      # a lone surrogate or control: only as \\u
    if ch in SHORT_ESCAPES:
        return SHORT_ESCAPES[ch] if style < 2 else _escape(ch, style % 2 == 0)
    return ch if style < 3 else _escape(ch, style % 2 == 0)


def string_text(units: list[tuple[str, int]]) -> Raw:
    """A JSON string of ``units`` (character, how it is written). Adjacent escaped surrogates that
    form a pair are read as one character, exactly as any JSON reader does."""
    text = '"' + "".join(_render(ch, style) for ch, style in units) + '"'
    return Raw(text.encode("utf-8"), json.loads(text))


# Every code point, surrogates and NUL included, each written raw or escaped.
any_char = st.characters(exclude_categories=(), codec=None)
unicode_strings = st.lists(st.tuples(any_char, st.integers(0, 4)), max_size=24).map(string_text)
NASTY = ["", " ", "\0", "\ud800", "\udfff", "\udc00\ud800", "\ud83d\ude00", "a\0b", "\ufeff", "\ufffe", "\U0010ffff",
         "\u202e", "e\u0301", "١٢٣", "１２", "null", "true", "0", "-1", "NaN", "j-1\n", " j-1", "KTP_EL\0", "ktp_el",
         "\u212a", "A" * 64, "A" * 65, "\ud800" * 64, "../../etc/passwd", "'; DROP TABLE jobs; --", "%s%n", "\\u0000"]
nasty_strings = st.sampled_from(NASTY).map(lambda s: Raw(json.dumps(s).encode(), s))
long_strings = st.tuples(st.sampled_from(["A", "é", "\0", "\ud800", "𝄞"]), st.integers(65, 2000) | st.integers(65, 70000)).map(
    lambda t: Raw(json.dumps(t[0] * t[1]).encode(), t[0] * t[1]))
strings = st.one_of(unicode_strings, nasty_strings, long_strings)

# -- numbers -------------------------------------------------------------------------------------

EDGE_INTS = [0, 1, -1, 2, 9, 10, 64, 1000, 1001, 100000, 100001, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63,
             -2**63 - 1, 2**64, 10**30, -10**30]
integers = st.one_of(st.integers(), st.sampled_from(EDGE_INTS),
                     st.integers(min_value=-(10**400), max_value=10**400)).map(lambda n: Raw(str(n).encode(), n))
big_integers = st.tuples(st.sampled_from(["", "-"]), st.integers(4301, 20000)).map(
    lambda t: Raw((t[0] + "9" * t[1]).encode(), BIG_INT))          # past Python's int/str conversion limit
floats = st.floats(allow_nan=False, allow_infinity=False).map(lambda f: Raw(repr(f).encode(), f))
LITERALS = [("NaN", float("nan")), ("Infinity", float("inf")), ("-Infinity", float("-inf")), ("1e999", float("inf")),
            ("-1e999", float("-inf")), ("1E400", float("inf")), ("1e-999", 0.0), ("-0", 0), ("-0.0", -0.0),
            ("1.0", 1.0), ("5e0", 5.0), ("1e2", 100.0), ("0.5", 0.5), ("9.999999999999999e22", 1e23),
            ("01", NOT_JSON), ("+1", NOT_JSON), (".5", NOT_JSON), ("1.", NOT_JSON), ("0x10", NOT_JSON),
            ("1e", NOT_JSON), ("--1", NOT_JSON), ("nan", NOT_JSON), ("inf", NOT_JSON), ("Infinity1", NOT_JSON)]
literals = st.sampled_from(LITERALS).map(lambda t: Raw(t[0].encode(), t[1]))
numbers = st.one_of(integers, floats, literals, big_integers)

# -- datetimes -----------------------------------------------------------------------------------

YEARS = [1, 2, 999, 1000, 1969, 1970, 2000, 2025, 2026, 2027, 2038, 2100, 9998, 9999]
OFFSETS = ["Z", "z", "+00:00", "-00:00", "+07:00", "+14:00", "-12:00", "+23:59", "-23:59", "+05:45", "-09:30"]
odd_offsets = st.sampled_from(["+24:00", "+0700", "+07", "+7:00", "+07:60", "UTC", " +07:00", ""])
any_offset = st.integers(-1439, 1439).map(lambda m: f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}")


@st.composite
def datetimes(draw) -> Raw:
    """RFC 3339 date-times over the whole 0001-9999 range with any offset, and their near misses."""
    year = draw(st.sampled_from(YEARS) | st.integers(1, 9999) | st.sampled_from([0, 10000, 99999]))
    month = draw(st.sampled_from([1, 2, 12]) | st.integers(0, 13))
    day = draw(st.sampled_from([1, 28, 29, 30, 31]) | st.integers(0, 32))
    hour, minute, second = draw(st.sampled_from([(0, 0, 0), (23, 59, 59), (23, 59, 60), (24, 0, 0), (12, 0, 0)])
                                | st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)))
    fraction = draw(st.sampled_from(["", ".0", ".5", ".123456", ".999999999", "."]))
    sep = draw(st.sampled_from(["T", "T", "t", " ", "_"]))
    offset = draw(st.sampled_from(OFFSETS) | any_offset | odd_offsets)
    width = 4 if year < 10000 else len(str(year))
    text = f"{year:0{width}d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"
    return raw(text)


OTHER_TIMES = ["2026-12-02", "20261202", "2026-W49-3", "2026-336", "2026-12-02T00:00:00", "2026-12-02T00:00",
               "20261202T000000+0700", "2026-12-02T00:00:00+07:00[Asia/Jakarta]", "2026-12-2T00:00:00Z",
               "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59.999999-23:59",
               "0001-01-01T00:00:00.000001+23:59", "0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z",
               "1970-01-01T00:00:00Z", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "9999-12-31", "0001-01-01",
               "0000-12-31", "2026-13-01", "2026-00-10", "２０２６-１２-０２", "2026-12-02T00:00:00+07:00\0",
               "Tue, 01 Dec 2026 19:32:06 +0000", "1764617526", "now", "tomorrow"]
EDGE_TIMES = ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00-23:59",
              "9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59.999999-23:59", "9999-12-31T23:59:59+14:00",
              "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"]
other_times = st.sampled_from(OTHER_TIMES).map(raw)
times = st.one_of(st.sampled_from(EDGE_TIMES).map(raw), datetimes(), other_times)   # the ends of time in every run

# -- containers, depth, bad bytes ----------------------------------------------------------------

scalars = st.one_of(st.just(Raw(b"null", None)), st.sampled_from([Raw(b"true", True), Raw(b"false", False)]),
                    integers, floats, literals, nasty_strings, unicode_strings)


def array_of(items: list[Raw]) -> Raw:
    value = [i.value for i in items]
    return Raw(b"[" + b",".join(i.text for i in items) + b"]", _combined(value))


def object_of(pairs: list[tuple[Raw, Raw]]) -> Raw:
    value: dict = {}
    for key, item in pairs:
        value[key.value if isinstance(key.value, str) else repr(key.value)] = item.value
    text = b"{" + b",".join(k.text + b":" + v.text for k, v in pairs) + b"}"
    return Raw(text, _combined(value))


def _combined(value):
    """A container holding a ``whole`` marker is itself that marker (the payload is not JSON)."""
    inner = list(value.values()) if isinstance(value, dict) else value
    for item in inner:
        if isinstance(item, Marker) and item.whole:
            return item
    return value


containers = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4).map(array_of)
                          | st.lists(st.tuples(strings, inner), max_size=4).map(object_of), max_leaves=8)
deep = st.tuples(st.sampled_from([65, 500, 999, 1000, 1001, 5000, 100000]), st.sampled_from(["[]", "{}", "mix"])).map(
    lambda t: Raw(("[" * t[0] + "]" * t[0]).encode() if t[1] == "[]" else
                  ('{"a":' * t[0] + "1" + "}" * t[0]).encode() if t[1] == "{}" else
                  ('[{"a":' * (t[0] // 2) + "[]" + "}]" * (t[0] // 2)).encode(), DEEP))
BAD_BYTES = [b"\xff", b"\xfe", b"\x80", b"\xc0\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xed\xbf\xbf",
             b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xe0\x80\xaf", b"\xc3\x28"]
not_utf8 = st.tuples(st.sampled_from(BAD_BYTES), st.sampled_from([b"", b"KTP_EL", b"j-1"])).map(
    lambda t: Raw(b'"' + t[1] + t[0] + b'"', NOT_UTF8))
raw_control = st.sampled_from(["\0", "\n", "\x1f"]).map(lambda c: Raw(b'"a' + c.encode() + b'b"', NOT_JSON))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A tiny file that claims a huge image: a few KB of zeros that would inflate to gigabytes."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    body = _png_chunk(b"IDAT", zlib.compress(b"\0" * 200000, 9))
    return b"\x89PNG\r\n\x1a\n" + header + body + _png_chunk(b"IEND", b"")


def card_sized_garbage() -> bytes:
    """Right size in the header, nonsense in the data."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1016, 648, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + _png_chunk(b"IDAT", b"\x78\x9cnot zlib at all") + _png_chunk(b"IEND", b"")


def one_of_list(items: list):
    """``sampled_from`` that does not spell out every (long) item when hypothesis describes the strategy."""
    return st.integers(0, len(items) - 1).map(items.__getitem__)


B64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
BAD_IMAGES = [B64(png_bomb(100000, 100000)), B64(png_bomb(1016, 648)), B64(card_sized_garbage()), "====",
              B64(b"\x89PNG\r\n\x1a\n"), B64(png_bomb(648, 1016))[:-4]]
bad_images = st.one_of(
    one_of_list(BAD_IMAGES).map(raw),
    st.binary(max_size=64).map(lambda b: raw(B64(b))))

# Any value at all, for any field: the domains above, weighted towards the short ones.
any_value = st.one_of(strings, numbers, times, containers, deep, not_utf8, raw_control, bad_images)
