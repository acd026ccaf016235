"""The torrents index: ``torrents.json`` and ``magnets.txt``.

``torrents.json`` is a JSON list, one object per published torrent, shaped like
Anna's Archive's ``torrents.json`` where the meaning is the same (``display_name``,
``magnet_link``, ``btih``, ``data_size``, ``num_files``, ``obsolete``,
``added_to_torrents_list_at``, ``is_metadata``) plus ours (``kind``, ``role``,
``band``, ``wave``, ``infohash_v1``/``infohash_v2``, ``superseded_by``, ``torrent``:
the .torrent file relative to ``publish/``; ``withdrawn``: taken down, listed
without magnet or .torrent, see :func:`withdrawn_sql`; ``torrent_v1`` and
``magnet_link_v1``: for a hybrid v1+v2 torrent, its v1 companion, the same payload
for clients that cannot read hybrid torrents, such as aria2c 1.36; null otherwise). Keys sorted, stable order: the same
catalogue gives the same bytes.

Swarm health, with the reference's meaning: ``seeders``, ``leechers``, ``completed``
(the best answer of the torrent's trackers at the last ``phono health``; null, like
``stats_scraped_at``, when never scraped), ``currently_seeding`` (our own ``phono
seed`` holds it now), ``embargo`` (held back from release: never true here, since only
released torrents are listed) and ``partially_broken`` (known damaged: nothing records
damage yet, so false). ``phono health`` refreshes these fields in place
(:func:`refresh_health`) without re-publishing.

``magnets.txt`` lists the magnet links of current (not obsolete) torrents, one a line.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from phonotheque.atomic import write_bytes
from phonotheque.catalogue.swarm import Health, health
from phonotheque.errors import InputError, wrap_os_error

# The v1 companion of hybrid torrent X is published as torrents/X.v1.torrent.
V1_SUFFIX = ".v1.torrent"

# Which catalogue torrents are public: released in a wave, or the metadata database.
PUBLIC = "t.built = 1 AND (t.wave IS NOT NULL OR t.role = 'database')"

def withdrawn_sql(schema: str = "", tracks: str | None = None) -> str:
    """SQL true for a *withdrawn* public torrent (a takedown); ``t`` is the torrent row.

    Withdrawn: obsolete torrents that carry a file of an excluded track, the AAC
    metadata torrents describing those, and obsolete database torrents older than
    the newest exclusion (their metadata.sqlite still lists the file). They stay
    listed, marked, so that old links explain themselves, but their magnet and
    .torrent are no longer handed out. ``schema`` qualifies the catalogue's tables
    (``"cat."`` when it is ATTACHed); ``tracks`` is where a track's ``excluded`` flag
    is read (a table or subquery with ``id`` and ``excluded``; the catalogue's
    ``track`` unless given: a columnar workspace keeps its tracks elsewhere).
    """
    c = schema
    tracks = tracks or f"{c}track"
    return f"""(t.obsolete = 1 AND (
        EXISTS (SELECT 1 FROM {c}torrent_file wf JOIN {c}audio_file wa ON wa.id = wf.audio_file_id
                  JOIN {tracks} wt ON wt.id = wa.track_id
                 WHERE wt.excluded = 1 AND wf.torrent_id IN (t.id, t.describes))
        OR (t.role = 'database'
            AND t.created_at < coalesce((SELECT max(added_at) FROM {c}exclusion), ''))))"""


def index_entries(conn: sqlite3.Connection, torrent_sizes: dict[str, int],
                  companions: dict[str, str] | None = None,
                  tracks: str | None = None) -> list[dict[str, Any]]:
    """One entry per public torrent, in a stable order (current first, by wave, band, name).

    Of the database torrents, only the current one is listed, and those a takedown
    withdrew (marked, so that their old links explain themselves).

    ``companions``: the magnet link of each published v1 companion, by torrent name;
    ``tracks``: where tracks' ``excluded`` flags are read (see :func:`withdrawn_sql`)."""
    companions = companions or {}
    withdrawn_expr = withdrawn_sql(tracks=tracks)
    rows = conn.execute(
        f"""SELECT t.*, s.name AS superseded_name, {withdrawn_expr} AS withdrawn,
                   coalesce((SELECT w.released_at FROM wave w WHERE w.id = t.wave), t.created_at)
                     AS added_at
            FROM torrent t LEFT JOIN torrent s ON s.id = t.superseded_by
            WHERE {PUBLIC}
              -- a database torrent a later publish replaced is not listed (each publish
              -- would add one), unless a takedown withdrew it: that entry explains old links
              AND NOT (t.role = 'database' AND t.obsolete = 1 AND NOT {withdrawn_expr})
            ORDER BY t.obsolete, t.role = 'database', coalesce(t.wave, 1e9), t.band IS NULL,
                     t.band, t.kind != 'data', t.name"""
    ).fetchall()
    by_id = health(conn)
    out = []
    for r in rows:
        withdrawn = bool(r["withdrawn"])
        out.append({
            **health_fields(by_id.get(int(r["id"]), Health())),
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
            "withdrawn": withdrawn,
            "magnet_link": None if withdrawn else r["magnet"],
            "btih": r["infohash_v1"],
            "infohash_v1": r["infohash_v1"],
            "infohash_v2": r["infohash_v2"],
            "data_size": r["size"],
            "num_files": r["files"],
            "piece_length": r["piece_length"],
            "torrent": None if withdrawn else f"torrents/{r['name']}.torrent",
            "torrent_size": None if withdrawn else torrent_sizes.get(r["name"]),
            "torrent_v1": None if withdrawn or r["name"] not in companions
            else f"torrents/{r['name']}{V1_SUFFIX}",
            "magnet_link_v1": None if withdrawn else companions.get(r["name"]),
        })
    return out


def health_fields(h: Health) -> dict[str, Any]:
    return {
        "seeders": h.seeders,
        "leechers": h.leechers,
        "completed": h.completed,
        "stats_scraped_at": h.scraped_at,
        "currently_seeding": h.currently_seeding,
        "embargo": False,
        "partially_broken": False,
    }


def read_index(publish: Path) -> list[dict[str, Any]]:
    """The entries of ``publish/torrents.json``: the one reader of this file, for the
    seeder, the swarm pages, ``phono adopt`` and ``phono health``."""
    return _read(Path(publish) / "torrents.json")


def _read(index: Path) -> list[dict[str, Any]]:
    try:
        doc = orjson.loads(index.read_bytes())
    except FileNotFoundError as exc:
        raise InputError(index, "no torrents.json (run `phono publish` first)") from exc
    except OSError as exc:
        raise wrap_os_error(exc, index) from exc
    except orjson.JSONDecodeError as exc:
        raise InputError(index, f"not JSON ({exc})") from exc
    if not isinstance(doc, list) or not all(isinstance(e, dict) for e in doc):
        raise InputError(index, "not a torrents.json (expected a list of objects)")
    return doc


def refresh_health(index: Path, by_name: dict[str, Health]) -> int:
    """Rewrite the health fields of an existing ``torrents.json`` (atomically); return how
    many entries changed. Entries not in ``by_name`` keep what they had."""
    entries = _read(index)
    changed = 0
    for e in entries:
        h = by_name.get(str(e.get("display_name")))
        if h is not None:
            fields = health_fields(h)
            if any(e.get(k) != v for k, v in fields.items()):
                e.update(fields)
                changed += 1
    if changed:
        write_bytes(index, torrents_json(entries))
    return changed


def torrents_json(entries: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(entries, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def magnets_txt(entries: list[dict[str, Any]]) -> bytes:
    return "".join(f"{e['magnet_link']}\n" for e in entries
                   if not e["obsolete"] and e["magnet_link"]).encode()
