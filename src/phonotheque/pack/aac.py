"""AAC (Anna's Archive Containers): the names and the metadata records of the archive.

One module for everything AAC: pack names folders, files and metadata files
with it and writes the records; publish and serve only read what it defines.

**Names** (annas-archive.org/blog/annas-archive-containers.html and AAC.md in
their repository) — what we follow:

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

**Metadata files**: one JSON record per archived item, in seekable zstd.
Each line is ``{"aacid": ..., "data_folder": ..., "metadata": {...}}`` (AAC's shape:
the record id first, the item's own fields under ``metadata``; ``data_folder``
names the data folder that holds the file, as AAC's ``*_files`` records do).
``metadata`` starts with the item's id (``track_id``, the same id as in the
published database and the AACID), then the track, its release, ISRCs, listens
and the archived file (path inside the data folder, size, SHA-256, BitTorrent v2
merkle root, tier, codec, patch).

The file is zstd in the *seekable format* (independent frames plus a seek table,
what AAC's ``t2sz`` writes), so a reader can jump to any offset without
decompressing from the start; plain ``zstd -d`` still reads it. Output is a pure
function of the records: same catalogue, same bytes.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyzstd

from phonotheque.atomic import atomic_path
from phonotheque.errors import InputError, wrap_os_error
from phonotheque.sources.bounds import track_listens_sql

# -- names ------------------------------------------------------------------------------

AAC_TIME = "%Y%m%dT%H%M%SZ"
_IDENT = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
_AAC_TS = re.compile(r"^\d{8}T\d{6}Z$")
# shortuuid's default alphabet: digits and letters without 0, 1, I, O, l.
SHORTUUID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
SHORTUUID_LENGTH = 22  # ceil(128 / log2(57))


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


# -- metadata records -------------------------------------------------------------------

LEVEL = 12  # t2sz uses 22; 12 keeps most of the ratio at a fraction of the time
FRAME_BYTES = 4 * 2**20  # uncompressed bytes per seekable frame


@functools.lru_cache(maxsize=65536)
def public_source(value: str | None) -> str | None:
    """A provenance value safe to publish: a path on the builder's machine becomes its file name.

    Called once per track (by SQLite in the export); sources repeat, hence the cache.
    """
    if not value:
        return value
    if value.startswith(("/", "~", "\\")) or (len(value) > 2 and value[1] == ":"
                                              and value[2] in "/\\"):
        return value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or None
    return value


def write_records(records: Iterable[dict[str, Any]], out: Path) -> int:
    """Write ``records`` as seekable-zstd JSON lines to ``out`` atomically; return the count."""
    n = 0
    with atomic_path(out) as tmp:
        try:
            with pyzstd.SeekableZstdFile(
                tmp, "w", level_or_option=LEVEL, max_frame_content_size=FRAME_BYTES
            ) as f:
                # One write per frame's worth of lines: each write call costs a
                # compressor round trip, which dominates for small records.
                buf = bytearray()
                for rec in records:
                    buf += orjson.dumps(rec)
                    buf += b"\n"
                    n += 1
                    if len(buf) >= FRAME_BYTES:
                        f.write(buf)
                        buf.clear()
                if buf:
                    f.write(buf)
        except OSError as exc:
            raise wrap_os_error(exc, out, writing=True) from exc
    return n


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Read an AAC ``.jsonl.seekable.zst`` file back (also works on plain zstd)."""
    try:
        opener = pyzstd.SeekableZstdFile if pyzstd.SeekableZstdFile.is_seekable_format_file(
            str(path)) else pyzstd.ZstdFile
        with opener(path, "r") as f:
            for i, line in enumerate(f, 1):
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise InputError(f"{path}:{i}", f"not a JSON record: {exc}") from exc
    except OSError as exc:
        raise wrap_os_error(exc, path) from exc
    except pyzstd.ZstdError as exc:
        raise InputError(path, f"not a zstd file: {exc}") from exc


_CHUNK = 500  # audio files per look-up (SQLite's parameter limit is far above)


def item_records(
    conn: sqlite3.Connection, members: list[tuple[int, str, str, str | None]], data_folder: str
) -> Iterator[dict[str, Any]]:
    """AAC records for one data folder.

    ``members``: ``(audio_file_id, aacid, path in folder, patch path in folder or None)``
    in folder order. ``conn`` is the catalogue, with ``torrent_file`` pieces roots filled.
    """
    for chunk_start in range(0, len(members), _CHUNK):
        chunk = members[chunk_start : chunk_start + _CHUNK]
        ids = [m[0] for m in chunk]
        rows = _track_rows(conn, ids)
        tids = [r["track_id"] for r in rows.values()]
        isrcs = _isrcs_by_track(conn, tids)
        artists = _artists_by_track(conn, tids)
        patches = _patches_by_file(conn, ids)
        for audio_file_id, aacid, path, patch_path in chunk:
            r = rows[audio_file_id]
            patch = patches.get(audio_file_id) if patch_path else None
            yield {
                "aacid": aacid,
                "data_folder": data_folder,
                "metadata": _metadata(r, isrcs.get(r["track_id"], []),
                                      artists.get(r["track_id"], []),
                                      _file(r, path, patch_path, patch)),
            }


def _track_rows(conn: sqlite3.Connection, ids: list[int]) -> dict[int, sqlite3.Row]:
    """Audio file, track, release, selection and listens of each audio file id."""
    marks = ",".join("?" * len(ids))
    return {
        r["audio_file_id"]: r
        for r in conn.execute(
            f"""SELECT a.id AS audio_file_id, a.track_id, t.mbid, t.title, t.artist_credit,
                   t.disc, t.position, t.duration_ms AS track_duration_ms, t.source,
                   t.licence, r.id AS release_id, r.mbid AS release_mbid,
                   r.title AS release_title, r.date, r.label, r.barcode,
                   r.artist_credit AS release_artist_credit,
                   s.rank, s.band,
                   (SELECT CASE WHEN count(count) THEN {track_listens_sql("count")} END
                    FROM listens l WHERE l.track_id = t.id) AS listens,
                   a.tier, a.container, a.codec, a.bitrate, a.duration_ms, a.size, a.sha256,
                   a.original_sha256, a.original_size, a.replaygain_gain, a.replaygain_peak,
                   a.btv2_root
                FROM audio_file a JOIN track t ON t.id = a.track_id
                LEFT JOIN release r ON r.id = t.release_id
                LEFT JOIN selection s ON s.track_id = a.track_id
                WHERE a.id IN ({marks})""",
            ids,
        )
    }


def _isrcs_by_track(conn: sqlite3.Connection, tids: list[int]) -> dict[int, list[str]]:
    isrcs: dict[int, list[str]] = {}
    for r in conn.execute(
        f"SELECT track_id, isrc FROM track_isrc WHERE track_id IN ({','.join('?' * len(tids))}) "
        "ORDER BY track_id, isrc", tids
    ):
        isrcs.setdefault(r[0], []).append(r[1])
    return isrcs


def _artists_by_track(conn: sqlite3.Connection,
                      tids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Credited artists of each track, in credit order."""
    artists: dict[int, list[dict[str, Any]]] = {}
    for r in conn.execute(
        f"""SELECT ta.track_id, a.mbid, a.name FROM track_artist ta
            JOIN artist a ON a.id = ta.artist_id
            WHERE ta.track_id IN ({','.join('?' * len(tids))})
            ORDER BY ta.track_id, ta.position""", tids
    ):
        artists.setdefault(r[0], []).append({"mbid": r[1], "name": r[2]})
    return artists


def _patches_by_file(conn: sqlite3.Connection, ids: list[int]) -> dict[int, sqlite3.Row]:
    """The patch file (torrent_file row) of each audio file that has one."""
    return {
        r[0]: r
        for r in conn.execute(
            f"""SELECT audio_file_id, path, size, sha256, pieces_root FROM torrent_file
                WHERE role = 'patch' AND audio_file_id IN ({','.join('?' * len(ids))})""", ids
        )
    }


def _metadata(r: sqlite3.Row, isrcs: list[str], artists: list[dict[str, Any]],
              file: dict[str, Any]) -> dict[str, Any]:
    """A record's ``metadata``: the track, its release, its place in the selection, its file."""
    return {
        "track_id": r["track_id"],
        "mbid": r["mbid"],
        "title": r["title"],
        "artist_credit": r["artist_credit"],
        "artists": artists,
        "release": None if r["release_id"] is None else {
            "id": r["release_id"],
            "mbid": r["release_mbid"],
            "title": r["release_title"],
            "artist_credit": r["release_artist_credit"],
            "date": r["date"],
            "label": r["label"],
            "barcode": r["barcode"],
        },
        "disc": r["disc"],
        "position": r["position"],
        "duration_ms": r["track_duration_ms"],
        "isrcs": isrcs,
        "listens": r["listens"] or 0,
        "rank": r["rank"],
        "band": r["band"],
        "source": public_source(r["source"]),
        "licence": r["licence"],
        "file": file,
    }


def _file(r: sqlite3.Row, path: str, patch_path: str | None,
          patch: sqlite3.Row | None) -> dict[str, Any]:
    """A record's ``metadata.file``: the archived file and, for an original, its patch."""
    return {
        "path": path,
        "size": r["size"],
        "sha256": r["sha256"],
        "btv2_root": r["btv2_root"],
        "tier": r["tier"],
        "container": r["container"],
        "codec": r["codec"],
        "bitrate": r["bitrate"],
        "duration_ms": r["duration_ms"],
        "replaygain_gain": r["replaygain_gain"],
        "replaygain_peak": r["replaygain_peak"],
        "original_sha256": r["original_sha256"],
        "original_size": r["original_size"],
        "patch": None if patch is None else {
            "path": patch_path,
            "size": patch["size"],
            "sha256": patch["sha256"],
            "btv2_root": patch["pieces_root"],
        },
    }
