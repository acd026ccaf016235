"""Bencode (BEP 3), written by hand.

Hand-written rather than a library because the infohash is the hash of the
exact bytes of the info dictionary: we need byte-exact canonical output
(keys sorted as raw bytes, no leading zeros) and, when reading, the exact
byte span of the ``info`` value as it appears in the file, plus strict limits
(nesting depth, integer width) that hostile files probe. It is small.
"""

from __future__ import annotations

from phonotheque.errors import TorrentError

Value = int | bytes | list["Value"] | dict[bytes, "Value"]

MAX_DEPTH = 100  # libtorrent's default nesting limit
_MAX_INT_DIGITS = 19  # signed 64-bit, like libtorrent


def encode(value: object) -> bytes:
    """Canonical bencoding of ints, bytes/str, lists/tuples and dicts (keys sorted as bytes)."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: object, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise TypeError("bencode: booleans are not bencodable")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, bytes | bytearray | memoryview):
        b = bytes(value)
        out.append(b"%d:" % len(b))
        out.append(b)
    elif isinstance(value, str):
        b = value.encode("utf-8")
        out.append(b"%d:" % len(b))
        out.append(b)
    elif isinstance(value, list | tuple):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, dict):
        items = [
            (k.encode("utf-8") if isinstance(k, str) else bytes(k), v) for k, v in value.items()
        ]
        items.sort(key=lambda kv: kv[0])
        out.append(b"d")
        prev = None
        for k, v in items:
            if k == prev:
                raise TypeError(f"bencode: duplicate key {k!r}")
            prev = k
            out.append(b"%d:" % len(k))
            out.append(k)
            _encode(v, out)
        out.append(b"e")
    else:
        raise TypeError(f"bencode: cannot encode {type(value).__name__}")


class _Decoder:
    """Recursive-descent decoder that remembers where top-level values start and end."""

    def __init__(self, data: bytes, subject: str) -> None:
        self.data = data
        self.subject = subject
        self.spans: dict[bytes, tuple[int, int]] = {}

    def fail(self, pos: int, problem: str) -> TorrentError:
        return TorrentError(self.subject, f"invalid bencoding at byte {pos}: {problem}")

    def value(self, pos: int, depth: int) -> tuple[Value, int]:
        data = self.data
        if pos >= len(data):
            raise self.fail(pos, "unexpected end of data")
        if depth > MAX_DEPTH:
            raise self.fail(pos, f"nesting deeper than {MAX_DEPTH}")
        c = data[pos]
        if c == 0x69:  # i
            end = data.find(b"e", pos + 1)
            if end < 0:
                raise self.fail(pos, "unterminated integer")
            text = data[pos + 1 : end]
            digits = text[1:] if text[:1] == b"-" else text
            if not digits or not digits.isdigit():
                raise self.fail(pos, "malformed integer")
            if len(digits) > _MAX_INT_DIGITS:
                raise self.fail(pos, "integer too long")
            if (digits[0] == 0x30 and len(digits) > 1) or text == b"-0":
                raise self.fail(pos, "integer with leading zero")
            return int(text), end + 1
        if c == 0x6C:  # l
            items: list[Value] = []
            pos += 1
            while True:
                if pos >= len(data):
                    raise self.fail(pos, "unterminated list")
                if data[pos] == 0x65:
                    return items, pos + 1
                item, pos = self.value(pos, depth + 1)
                items.append(item)
        if c == 0x64:  # d
            result: dict[bytes, Value] = {}
            pos += 1
            while True:
                if pos >= len(data):
                    raise self.fail(pos, "unterminated dictionary")
                if data[pos] == 0x65:
                    return result, pos + 1
                if not 0x30 <= data[pos] <= 0x39:
                    raise self.fail(pos, "dictionary key is not a string")
                key, pos = self.string(pos)
                if key in result:
                    raise self.fail(pos, f"duplicate dictionary key {key!r}")
                start = pos
                item, pos = self.value(pos, depth + 1)
                if depth == 0:
                    self.spans[key] = (start, pos)
                result[key] = item
        if 0x30 <= c <= 0x39:
            return self.string(pos)
        raise self.fail(pos, f"unexpected byte {bytes([c])!r}")

    def string(self, pos: int) -> tuple[bytes, int]:
        colon = self.data.find(b":", pos, pos + 21)
        if colon < 0:
            raise self.fail(pos, "malformed string length")
        text = self.data[pos:colon]
        if not text.isdigit() or (text[0] == 0x30 and len(text) > 1):
            raise self.fail(pos, "malformed string length")
        n = int(text)
        end = colon + 1 + n
        if end > len(self.data):
            raise self.fail(pos, "string runs past the end of data")
        return self.data[colon + 1 : end], end


def decode(data: bytes, subject: str = "bencode") -> Value:
    """Decode one complete bencoded value; trailing bytes are an error."""
    return decode_with_spans(data, subject)[0]


def decode_with_spans(
    data: bytes, subject: str = "bencode", *, allow_trailing: bool = False
) -> tuple[Value, dict[bytes, tuple[int, int]]]:
    """Decode, and return the byte span of each top-level dictionary value.

    The infohash is computed over ``data[start:end]`` of the ``info`` span, so
    a torrent whose info dictionary is not canonically encoded keeps the hash
    every other client computes for it. ``allow_trailing`` ignores bytes after
    the value, as libtorrent does (some .torrent files end with a newline).
    """
    dec = _Decoder(bytes(data), subject)
    value, end = dec.value(0, 0)
    if end != len(dec.data) and not allow_trailing:
        raise dec.fail(end, "trailing data after the top-level value")
    return value, dec.spans
