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
# Room kept in every file name for the longest suffix a sidecar adds to it
# (``.zstdpatch``, 10 bytes): a name cut to 255 bytes and then extended does not
# fit any common file system ("File name too long").
SIDECAR_RESERVE = 16
# Longest path a client writes under its download folder: torrent folder,
# artist, release and file name with sidecar suffix, in UTF-16 code units (what
# Windows counts). 240 leaves the usual 260 room for a short download folder.
MAX_PATH_CHARS = 240
# Longest artist and release folder names (characters), so file names keep room.
MAX_FOLDER_CHARS = 64
# Device names Windows refuses as a file name, whatever the extension: also the
# superscript-digit ports (COM¹ ...) and the console devices.
_WINDOWS_RESERVED = {
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
    *(f"{dev}{i}" for dev in ("COM", "LPT") for i in (*"0123456789", "¹", "²", "³")),
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
    if stem.rstrip(" ").upper() in _WINDOWS_RESERVED:
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


def _chars(text: str) -> int:
    """Length as Windows counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _cut_chars(text: str, max_chars: int, fallback: str) -> str:
    """``text`` within ``max_chars`` UTF-16 units, whole characters, no trailing dot or space."""
    out = []
    n = 0
    for ch in text:
        n += _chars(ch)
        if n > max_chars:
            break
        out.append(ch)
    return "".join(out).rstrip(" .") or fallback[:max_chars]


def readable_path(e: ReadableEntry) -> tuple[str, str, str]:
    """(artist folder, release folder, file stem) before collision handling."""
    artist = _cut_chars(safe_component(e.artist, "Unknown Artist"), MAX_FOLDER_CHARS,
                        "Unknown Artist")
    release = _cut_chars(safe_component(e.release, "Unknown Release"), MAX_FOLDER_CHARS,
                         "Unknown Release")
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


def _file_name(stem: str, tail: str, fallback: str, max_chars: int) -> str:
    """``stem`` made safe and cut so that ``stem + tail`` and any sidecar suffix fit."""
    budget = MAX_COMPONENT_BYTES - SIDECAR_RESERVE - len(tail.encode())
    name = safe_component(stem, fallback, budget)
    return _cut_chars(name, max(1, max_chars - _chars(tail)), fallback) + tail


def readable_layout(entries: list[ReadableEntry], folder: str = "") -> dict[int, str]:
    """Relative paths (``/``-separated) for each track id, unique even on case-insensitive disks.

    ``entries`` must come in a fixed order (the pack order): the first file of a
    colliding name keeps it; the others get `` [<track id>]`` before the extension,
    which depends only on the catalogue, never on the run.

    Every file name leaves :data:`SIDECAR_RESERVE` bytes for a suffix (a patch
    is ``<name>.zstdpatch``), and ``folder/artist/release/name+suffix`` (``folder``:
    the torrent's folder name) stays within :data:`MAX_PATH_CHARS`.
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
        # what is left of the path for the file name (its sidecar suffix included)
        left = MAX_PATH_CHARS - SIDECAR_RESERVE - _chars(f"{folder}/{artist}/{release}/")
        fallback = f"Track {e.track_id}"
        name = _file_name(stem, ext, fallback, left)
        path = f"{artist}/{release}/{name}"
        if path.casefold() in taken:
            name = _file_name(stem, f" [{e.track_id}]{ext}", fallback, left)
            path = f"{artist}/{release}/{name}"
        taken.add(path.casefold())
        out[e.track_id] = path
    return out
