"""Is an Ogg file whole? Its last page must carry the end-of-stream flag.

ffmpeg takes an Ogg file's duration from the granule position of its *last*
page, so a file cut short announces exactly the length it still has: comparing
the decoded length with the header's (the check that finds truncated MP3 and
FLAC files) cannot see the cut. RFC 3533 has every logical stream end with a page
flagged end-of-stream (header type bit 0x04), the check ``oggz-validate`` makes.
So the last complete page of the file, found by its capture pattern and
verified by its CRC, must be such a page.
"""

from __future__ import annotations

import struct
from pathlib import Path

# Largest possible page: 27-byte header, 255 lacing values, 255 segments of 255 bytes.
_MAX_PAGE = 27 + 255 + 255 * 255
_EOS = 0x04


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_TABLE = _crc_table()


def _crc(data: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04c11db7, not reflected, zero initial value)."""
    crc = 0
    table = _TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ b]
    return crc


def _page_at(buf: bytes, pos: int) -> tuple[int, int] | None:
    """(header type, end offset) of a whole, CRC-valid page at ``pos`` in ``buf``; else None."""
    if len(buf) - pos < 27 or buf[pos + 4] != 0:  # stream structure version 0
        return None
    nsegs = buf[pos + 26]
    body = pos + 27 + nsegs
    if body > len(buf):
        return None
    end = body + sum(buf[pos + 27 : body])
    if end > len(buf):
        return None
    page = bytearray(buf[pos:end])
    (stored,) = struct.unpack_from("<I", page, 22)
    page[22:26] = b"\0\0\0\0"
    if _crc(bytes(page)) != stored:
        return None
    return buf[pos + 5], end


def truncation(path: Path) -> str | None:
    """Why the Ogg file at ``path`` looks cut short, or None if its last page ends a stream."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        start = max(0, size - 2 * _MAX_PAGE)
        f.seek(start)
        tail = f.read()
    pos = len(tail)
    while True:
        pos = tail.rfind(b"OggS", 0, pos)
        if pos < 0:
            return "no complete Ogg page at the end of the file"
        page = _page_at(tail, pos)
        if page is None:
            continue  # a page cut short, or the pattern inside packet data
        header_type, end = page
        if header_type & _EOS:
            return None
        where = start + end
        cut = "" if where == size else f", followed by {size - where:,} bytes of a partial page"
        return (f"the last Ogg page (ending at byte {where:,}) has no end-of-stream flag{cut}: "
                "the file is cut short")
