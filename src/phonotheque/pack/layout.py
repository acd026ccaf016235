"""Readable paths inside the published archive, and the catalogue's timestamps.

**Readable** layout: ``Artist/Release/NN Title.ext`` with every component made safe
(:func:`safe_component`) and collisions resolved deterministically. AAC names
(AACIDs, folder and metadata-file names) are in :mod:`phonotheque.pack.aac`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# The time of last resort, when the catalogue records no time at all.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ISO = "1970-01-01T00:00:00+00:00"


def parse_iso(text: str | None) -> datetime | None:
    """An ISO 8601 timestamp from the catalogue, in UTC, whole seconds; None if absent/bad."""
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).replace(microsecond=0)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds")


def next_second(ts: datetime) -> datetime:
    return ts.replace(microsecond=0) + timedelta(seconds=1)


# -- readable layout ----------------------------------------------------------

MAX_COMPONENT_BYTES = 255
_WINDOWS_RESERVED = {
    "CON", "PRN", "AUX", "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}
# Characters that are separators or illegal on some filesystem (Windows, FAT, SMB).
_UNSAFE_CHARS = set('/\\:*?"<>|')


def _clean_char(ch: str) -> str:
    if ch in _UNSAFE_CHARS:
        return "_"
    if ch == "\x00":
        return ""
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        return "" if cat in ("Cf", "Cn") else " "
    return ch


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes without splitting a character."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")


def safe_component(text: str | None, fallback: str, max_bytes: int = MAX_COMPONENT_BYTES) -> str:
    """One path component from untrusted metadata.

    NFC-normalised; separators (``/``, ``\\``) and characters illegal on common
    filesystems become ``_``; NUL and control characters are dropped; leading
    dots and spaces, trailing dots and spaces are stripped (no ``.``/``..``, no
    hidden files, nothing Windows would silently alter); Windows device names get
    a ``_``; the result fits ``max_bytes`` UTF-8 bytes. Empty -> ``fallback``.
    """
    cleaned = "".join(_clean_char(c) for c in unicodedata.normalize("NFC", text or ""))
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" .")
    cleaned = truncate_utf8(cleaned, max_bytes).rstrip(" .")
    if not cleaned:
        cleaned = fallback
    stem, dot, rest = cleaned.partition(".")
    if stem.upper() in _WINDOWS_RESERVED:
        cleaned = truncate_utf8(f"{stem}_{dot}{rest}", max_bytes)
    return cleaned


@dataclass(frozen=True, slots=True)
class ReadableEntry:
    """What the readable layout needs to know about one file."""

    track_id: int
    artist: str | None
    release: str | None
    title: str | None
    disc: int | None
    position: int | None
    multi_disc: bool
    ext: str


def readable_path(e: ReadableEntry) -> tuple[str, str, str]:
    """(artist folder, release folder, file stem) before collision handling."""
    artist = safe_component(e.artist, "Unknown Artist")
    release = safe_component(e.release, "Unknown Release")
    title = e.title or f"Track {e.track_id}"
    if e.position is not None:
        num = f"{e.position:02d}"
        if e.multi_disc and e.disc is not None:
            num = f"{e.disc}-{num}"
        title = f"{num} {title}"
    return artist, release, title


def safe_ext(ext: str) -> str:
    ext = ext.lower().lstrip(".")
    return "." + ext if ext and re.fullmatch(r"[a-z0-9]{1,8}", ext) else ""


def readable_layout(entries: list[ReadableEntry]) -> dict[int, str]:
    """Relative paths (``/``-separated) for each track id, unique even on case-insensitive disks.

    ``entries`` must come in a fixed order (the pack order): the first file of a
    colliding name keeps it; the others get `` [<track id>]`` before the extension,
    which depends only on the catalogue, never on the run.
    """
    taken: set[str] = set()
    spelling: dict[str, str] = {}  # casefolded folder path -> first spelling seen
    out: dict[int, str] = {}
    for e in entries:
        artist, release, stem = readable_path(e)
        # "ABBA" and "Abba" must not become two folders that clash on macOS/Windows.
        artist = spelling.setdefault(artist.casefold(), artist)
        release = spelling.setdefault(f"{artist}/{release}".casefold(), f"{artist}/{release}")
        release = release.split("/", 1)[1]
        ext = safe_ext(e.ext)
        name = safe_component(stem, f"Track {e.track_id}", MAX_COMPONENT_BYTES - len(ext)) + ext
        path = f"{artist}/{release}/{name}"
        if path.casefold() in taken:
            suffix = f" [{e.track_id}]{ext}"
            name = safe_component(stem, f"Track {e.track_id}",
                                  MAX_COMPONENT_BYTES - len(suffix.encode())) + suffix
            path = f"{artist}/{release}/{name}"
        taken.add(path.casefold())
        out[e.track_id] = path
    return out
