"""Limits on what one input record may hold, checked once for every source.

Sources parse; this module decides what is too big to store. Every record a
source yields passes :func:`check` in the ingest runner before it reaches the
catalogue, so no source can write a number SQLite cannot hold (it aborted the
whole batch) or a 10 MB title that every later stage copies, renders and serves.

* Whole numbers (disc, position, durations, sizes, listen counts) must be
  ``int`` within their range. A value that is not becomes a reject naming the
  field and the value, and the field is dropped (``None``) so the rest of the
  record is kept. A listen count out of range rejects the listen: a count is
  the whole record.
* Text is cut to :data:`MAX_TEXT` characters. The record is kept with the first
  :data:`MAX_TEXT` characters and a reject says which field was cut from how long.

Listen counts are bounded per row (:data:`MAX_LISTENS`); sums over many rows are
computed with SQLite's ``total()`` (a float that cannot overflow), see
:mod:`phonotheque.select.plan`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from phonotheque.model import Artist, Listen, Record, Release, SourceAudio, Track, TrackISRC

# Longest text field kept (characters). MusicBrainz's longest real titles are
# a few hundred characters; anything longer is a tag or dump gone wrong.
MAX_TEXT = 4096
# Disc and track numbers, and positions on a medium.
MAX_POSITION = 99_999
# Durations in milliseconds: 2^31 - 1 ms is 24.8 days, well past the longest recording.
MAX_DURATION_MS = 2**31 - 1
# One row's listen count: a trillion. The most played recordings have a few billion.
MAX_LISTENS = 10**12
# One track's listens summed over every dataset: floats are exact up to 2^53, so
# a sum computed with SQLite's total() (which cannot overflow) is capped there.
MAX_TRACK_LISTENS = 2**53
# Sizes in bytes, rates and counts of the audio properties: anything SQLite holds.
MAX_INT64 = 2**63 - 1

Problems = list[str]


def track_listens_sql(column: str) -> str:
    """SQL aggregate of one track's listen rows that can neither overflow nor exceed 2^53.

    SQLite's ``sum()`` raises "integer overflow" past 2^63 and aborts the query;
    ``total()`` adds as floats and never fails. Sums over many tracks use
    ``total()`` too; they are exact while below 2^53 (about 9·10^15 listens).
    """
    return f"CAST(min(total({column}), {MAX_TRACK_LISTENS}) AS INTEGER)"


def whole(value: Any, field: str, maximum: int, problems: Problems, minimum: int = 0) -> int | None:
    """``value`` if it is an ``int`` in ``[minimum, maximum]``, else None and a problem."""
    if value is None:
        return None
    if type(value) is int and minimum <= value <= maximum:
        return value
    if type(value) is int:
        shown = _shown_int(value)
        problems.append(f"{field}: {shown} out of range ({minimum} to {maximum:,})")
    else:
        problems.append(f"{field}: not a whole number ({_shown(value)})")
    return None


def text(value: str | None, field: str, problems: Problems) -> str | None:
    """``value`` cut to :data:`MAX_TEXT` characters (a problem says so)."""
    if value is None or len(value) <= MAX_TEXT:
        return value
    problems.append(f"{field}: {len(value):,} characters, kept the first {MAX_TEXT:,}")
    return value[:MAX_TEXT]


def _shown_int(value: int) -> str:
    # str() of a 5,000-digit int raises ValueError (Python's digit limit); show its size.
    if value.bit_length() > 200:
        return f"a {'negative ' if value < 0 else ''}number of about {value.bit_length() * 0.30103:,.0f} digits"
    return str(value)


def _shown(value: Any) -> str:
    if type(value) is int:
        return _shown_int(value)
    try:
        shown = repr(value)
    except ValueError:
        shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= 60 else shown[:57] + "..."


# -- per record kind -------------------------------------------------------------


def _artist(r: Artist, p: Problems) -> bool:
    r.name = text(r.name, "artist name", p) or ""
    r.sort_name = text(r.sort_name, "artist sort name", p)
    return True


def _release(r: Release, p: Problems) -> bool:
    r.title = text(r.title, "release title", p) or ""
    r.date = text(r.date, "release date", p)
    r.label = text(r.label, "release label", p)
    r.barcode = text(r.barcode, "release barcode", p)
    r.artist_credit = text(r.artist_credit, "release artist credit", p)
    return True


def _track(r: Track, p: Problems) -> bool:
    r.title = text(r.title, "track title", p) or ""
    r.artist_credit = text(r.artist_credit, "track artist credit", p)
    r.disc = whole(r.disc, "disc number", MAX_POSITION, p)
    r.position = whole(r.position, "track position", MAX_POSITION, p)
    r.duration_ms = whole(r.duration_ms, "duration (ms)", MAX_DURATION_MS, p)
    return True


def _isrc(r: TrackISRC, p: Problems) -> bool:
    return True  # validated by phonotheque.isrc: 12 characters


def _listen(r: Listen, p: Problems) -> bool:
    before = len(p)
    count = whole(r.count, "listen count", MAX_LISTENS, p)
    r.users = whole(r.users, "user count", MAX_LISTENS, p)
    if count is None:
        del p[before + 1:]  # the count's problem is the reason the listen is refused
        return False
    r.count = count
    return True


def _audio(r: SourceAudio, p: Problems) -> bool:
    r.size = whole(r.size, "file size", MAX_INT64, p) or 0
    r.mtime_ns = whole(r.mtime_ns, "file mtime", MAX_INT64, p, minimum=-MAX_INT64) or 0
    r.bitrate = whole(r.bitrate, "bit rate", MAX_INT64, p)
    r.duration_ms = whole(r.duration_ms, "duration (ms)", MAX_DURATION_MS, p)
    r.sample_rate = whole(r.sample_rate, "sample rate", MAX_INT64, p)
    r.channels = whole(r.channels, "channels", 255, p)
    for f in r.fallback:
        _CHECKS[type(f)](f, p)  # type: ignore[operator]
    return True


_CHECKS: dict[type, Callable[[Any, Problems], bool]] = {
    Artist: _artist, Release: _release, Track: _track, TrackISRC: _isrc, Listen: _listen,
    SourceAudio: _audio,
}


def check(record: Record, problems: Problems) -> bool:
    """Bring ``record`` within the limits in place; False if it must be dropped.

    Every field put right adds a problem (``<field>: <why>``) to ``problems``.
    Records of other kinds (rejects, checkpoints) pass unchanged.
    """
    fn = _CHECKS.get(type(record))
    return True if fn is None else fn(record, problems)
