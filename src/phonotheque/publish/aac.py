"""AAC metadata files: one JSON record per archived item, in seekable zstd.

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

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyzstd

from phonotheque.atomic import atomic_path
from phonotheque.errors import InputError, wrap_os_error
from phonotheque.publish.export import public_source
from phonotheque.sources.bounds import track_listens_sql

LEVEL = 12  # t2sz uses 22; 12 keeps most of the ratio at a fraction of the time
FRAME_BYTES = 4 * 2**20  # uncompressed bytes per seekable frame


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
            raise wrap_os_error(exc, out) from exc
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


def item_records(
    conn: sqlite3.Connection, members: list[tuple[int, str, str, str | None]], data_folder: str
) -> Iterator[dict[str, Any]]:
    """AAC records for one data folder.

    ``members``: ``(audio_file_id, aacid, path in folder, patch path in folder or None)``
    in folder order. ``conn`` is the catalogue, with ``torrent_file`` pieces roots filled.
    """
    for chunk_start in range(0, len(members), 500):
        chunk = members[chunk_start : chunk_start + 500]
        ids = [m[0] for m in chunk]
        marks = ",".join("?" * len(ids))
        rows = {
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
        tids = [r["track_id"] for r in rows.values()]
        tmarks = ",".join("?" * len(tids))
        isrcs: dict[int, list[str]] = {}
        for r in conn.execute(
            f"SELECT track_id, isrc FROM track_isrc WHERE track_id IN ({tmarks}) "
            "ORDER BY track_id, isrc", tids
        ):
            isrcs.setdefault(r[0], []).append(r[1])
        artists: dict[int, list[dict[str, Any]]] = {}
        for r in conn.execute(
            f"""SELECT ta.track_id, a.mbid, a.name FROM track_artist ta
                JOIN artist a ON a.id = ta.artist_id WHERE ta.track_id IN ({tmarks})
                ORDER BY ta.track_id, ta.position""", tids
        ):
            artists.setdefault(r[0], []).append({"mbid": r[1], "name": r[2]})
        patches = {
            r[0]: r
            for r in conn.execute(
                f"""SELECT audio_file_id, path, size, sha256, pieces_root FROM torrent_file
                    WHERE role = 'patch' AND audio_file_id IN ({marks})""", ids
            )
        }
        for audio_file_id, aacid, path, patch_path in chunk:
            r = rows[audio_file_id]
            patch = patches.get(audio_file_id) if patch_path else None
            yield {
                "aacid": aacid,
                "data_folder": data_folder,
                "metadata": {
                    "track_id": r["track_id"],
                    "mbid": r["mbid"],
                    "title": r["title"],
                    "artist_credit": r["artist_credit"],
                    "artists": artists.get(r["track_id"], []),
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
                    "isrcs": isrcs.get(r["track_id"], []),
                    "listens": r["listens"] or 0,
                    "rank": r["rank"],
                    "band": r["band"],
                    "source": public_source(r["source"]),
                    "licence": r["licence"],
                    "file": {
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
                    },
                },
            }
