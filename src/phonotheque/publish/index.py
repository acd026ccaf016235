"""The torrents index: ``torrents.json`` and ``magnets.txt``.

``torrents.json`` is a JSON list, one object per published torrent, shaped like
Anna's Archive's ``torrents.json`` where the meaning is the same (``display_name``,
``magnet_link``, ``btih``, ``data_size``, ``num_files``, ``obsolete``,
``added_to_torrents_list_at``, ``is_metadata``) plus ours (``kind``, ``role``,
``band``, ``wave``, ``infohash_v1``/``infohash_v2``, ``superseded_by``, ``torrent``:
the .torrent file relative to ``publish/``). Keys sorted, stable order: the same
catalogue gives the same bytes.

``magnets.txt`` lists the magnet links of current (not obsolete) torrents, one a line.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

# Which catalogue torrents are public: released in a wave, or the metadata database.
PUBLIC = "t.built = 1 AND (t.wave IS NOT NULL OR t.role = 'database')"


def index_entries(conn: sqlite3.Connection, torrent_sizes: dict[str, int]) -> list[dict[str, Any]]:
    """One entry per public torrent, in a stable order (current first, by wave, band, name)."""
    rows = conn.execute(
        f"""SELECT t.*, s.name AS superseded_name,
                   coalesce((SELECT w.released_at FROM wave w WHERE w.id = t.wave), t.created_at)
                     AS added_at
            FROM torrent t LEFT JOIN torrent s ON s.id = t.superseded_by
            WHERE {PUBLIC}
            ORDER BY t.obsolete, t.role = 'database', coalesce(t.wave, 1e9), t.band IS NULL,
                     t.band, t.kind != 'data', t.name"""
    ).fetchall()
    out = []
    for r in rows:
        out.append({
            "display_name": r["name"],
            "kind": r["kind"],
            "role": r["role"],
            "is_metadata": r["kind"] != "data",
            "collection": r["collection"],
            "band": r["band"],
            "wave": r["wave"],
            "obsolete": bool(r["obsolete"]),
            "superseded_by": r["superseded_name"],
            "added_to_torrents_list_at": r["added_at"],
            "magnet_link": r["magnet"],
            "btih": r["infohash_v1"],
            "infohash_v1": r["infohash_v1"],
            "infohash_v2": r["infohash_v2"],
            "data_size": r["size"],
            "num_files": r["files"],
            "piece_length": r["piece_length"],
            "torrent": f"torrents/{r['name']}.torrent",
            "torrent_size": torrent_sizes.get(r["name"]),
        })
    return out


def torrents_json(entries: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(entries, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def magnets_txt(entries: list[dict[str, Any]]) -> bytes:
    return "".join(f"{e['magnet_link']}\n" for e in entries if not e["obsolete"]).encode()
