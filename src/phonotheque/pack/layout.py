"""Names inside the published archive: AAC identifiers and folder names, readable paths.

**AAC** (Anna's Archive Containers, annas-archive.org/blog/annas-archive-containers.html,
and AAC.md in their repository) — what we follow:

* a *collection* is a lowercase ASCII identifier (letters, digits, single underscores;
  ``__`` is the field separator so it may not appear inside a field);
* an item's id is ``aacid__<collection>__<timestamp>__<primary id>__<shortuuid>``, the
  timestamp in compact ISO 8601 UTC (``20230808T014342Z``), the primary id optional
  (ours: the catalogue track id, which is also ``track.id`` in the published
  database), the shortuuid 22 characters of shortuuid's base-57 alphabet;
* timestamps only grow: a new pack run (a *generation*) never reuses a time at or
  before the last one, so ranges of different releases never overlap;
* a data folder is ``<prefix>_data__aacid__<collection>__<from>--<to>``, ``from``/``to``
  the first and last timestamps of its items (inclusive), files named by their
  AACID without extension; the metadata file of the same items is
  ``<prefix>_meta__aacid__<collection>__<from>--<to>.jsonl.seekable.zst``.

Where we had to choose (AAC leaves it open), see docs in :mod:`phonotheque.pack.packer`:
the shortuuid is derived from the file's SHA-256 (not random) so that the same
catalogue packs to the same bytes, and all items of one folder share the folder's
timestamp (AAC's own folders span about one second).

**Readable** layout: ``Artist/Release/NN Title.ext`` with every component made safe
(:func:`safe_component`) and collisions resolved deterministically.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from phonotheque.errors import InputError

AAC_TIME = "%Y%m%dT%H%M%SZ"
_IDENT = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
_AAC_TS = re.compile(r"^\d{8}T\d{6}Z$")
# shortuuid's default alphabet: digits and letters without 0, 1, I, O, l.
SHORTUUID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
SHORTUUID_LENGTH = 22  # ceil(128 / log2(57))
# The time of last resort, when the catalogue records no time at all.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ISO = "1970-01-01T00:00:00+00:00"


def check_identifier(value: str, what: str = "collection") -> str:
    """A prefix or collection name: lowercase letters, digits, single underscores."""
    if not value or len(value) > 100 or not _IDENT.match(value):
        raise InputError(
            value,
            f"not a valid {what} name (lowercase letters, digits and single underscores, "
            "at most 100 characters)",
        )
    return value


def aac_time(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime(AAC_TIME)


def parse_aac_time(text: str) -> datetime:
    if not _AAC_TS.match(text):
        raise InputError(text, "not an AAC timestamp (YYYYMMDDTHHMMSSZ)")
    return datetime.strptime(text, AAC_TIME).replace(tzinfo=UTC)


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


def shortuuid(digest: bytes) -> str:
    """The first 128 bits of ``digest`` written as shortuuid writes a UUID (base 57, padded)."""
    n = int.from_bytes(digest[:16], "big")
    out = []
    while n:
        n, d = divmod(n, len(SHORTUUID_ALPHABET))
        out.append(SHORTUUID_ALPHABET[d])
    out.extend(SHORTUUID_ALPHABET[0] * (SHORTUUID_LENGTH - len(out)))
    return "".join(reversed(out))


@dataclass(frozen=True, slots=True)
class AACID:
    collection: str
    timestamp: str
    primary_id: str
    uuid: str

    def __str__(self) -> str:
        parts = ["aacid", self.collection, self.timestamp]
        if self.primary_id:
            parts.append(self.primary_id)
        parts.append(self.uuid)
        return "__".join(parts)


def make_aacid(collection: str, ts: str, primary_id: str, digest: bytes) -> AACID:
    if "__" in primary_id or "/" in primary_id:
        raise InputError(primary_id, "AAC primary id may not contain '__' or '/'")
    return AACID(check_identifier(collection), ts, primary_id, shortuuid(digest))


def parse_aacid(text: str) -> AACID:
    parts = text.split("__")
    if len(parts) not in (4, 5) or parts[0] != "aacid":
        raise InputError(text, "not an AACID (aacid__<collection>__<timestamp>[__<id>]__<uuid>)")
    check_identifier(parts[1])
    parse_aac_time(parts[2])
    return AACID(parts[1], parts[2], parts[3] if len(parts) == 5 else "", parts[-1])


def data_collection(base: str, band: int) -> str:
    """One AAC collection per popularity band: ``music_files_band01``."""
    return check_identifier(f"{base}_files_band{band:02d}")


def data_folder_name(prefix: str, collection: str, first: str, last: str, aac: bool) -> str:
    """``<prefix>_data__aacid__<collection>__<from>--<to>`` (``readable``: without ``aacid``)."""
    middle = "aacid__" if aac else ""
    return f"{prefix}_data__{middle}{collection}__{first}--{last}"


def meta_file_name(prefix: str, collection: str, first: str, last: str) -> str:
    return f"{prefix}_meta__aacid__{collection}__{first}--{last}.jsonl.seekable.zst"


def art_file_name(prefix: str, ts: str) -> str:
    return f"{prefix}_art__{ts}.tar"


def database_folder_name(prefix: str, ts: str) -> str:
    return f"{prefix}_metadata__{ts}"


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
