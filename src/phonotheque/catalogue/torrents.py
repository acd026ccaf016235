"""Torrents, their files and release waves (owner of ``torrent``, ``torrent_file``, ``wave``).

The pack stage plans folders (:func:`add_torrent` with ``built=False``), records what
a worker hashed (:func:`set_member_roots`, :func:`drop_members`, :func:`mark_built`)
or forgets a plan that came to nothing (:func:`drop_planned`); a rebuilt or replaced
torrent becomes obsolete (:func:`mark_obsolete`). ``phono release`` groups built
torrents into waves (:func:`add_wave`). Every function joins the caller's
transaction when one is open, so a stage can make several writes atomic.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from phonotheque.catalogue.store import Store


@dataclass(frozen=True, slots=True)
class NewTorrent:
    """A ``torrent`` row as a stage creates it; paths are relative to the workspace."""

    kind: str  # data | meta | art
    role: str  # audio | aac_meta | database | art
    name: str
    torrent_path: str
    data_path: str
    size: int
    files: int
    created_at: str
    band: int | None = None
    layout: str | None = None
    collection: str | None = None
    aac_from: str | None = None
    aac_to: str | None = None
    generation: int | None = None
    describes: int | None = None
    wave: int | None = None


@dataclass(frozen=True, slots=True)
class Built:
    """What hashing a torrent's payload found (stored by :func:`mark_built`)."""

    infohash_v1: str | None
    infohash_v2: str | None
    piece_length: int
    size: int
    files: int
    magnet: str


@dataclass(frozen=True, slots=True)
class Member:
    """A ``torrent_file`` row: one file of a torrent's payload."""

    path: str
    size: int
    role: str = "audio"  # audio | patch | aac_meta | art | ...
    audio_file_id: int | None = None
    sha256: str | None = None
    pieces_root: str | None = None
    aacid: str | None = None


def add_torrent(store: Store, t: NewTorrent, members: Iterable[Member] = (),
                built: Built | None = None) -> int:
    """Record a torrent and its files; return its id.

    Without ``built`` the row is a plan (``built = 0``) that :func:`mark_built`
    completes once the payload is hashed.
    """
    with store.transaction() as conn:
        cur = conn.execute(
            """INSERT INTO torrent(kind, role, band, name, torrent_path, data_path, size, files,
                   created_at, layout, collection, aac_from, aac_to, generation, describes,
                   wave, built)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)""",
            (t.kind, t.role, t.band, t.name, t.torrent_path, t.data_path, t.size, t.files,
             t.created_at, t.layout, t.collection, t.aac_from, t.aac_to, t.generation,
             t.describes, t.wave),
        )
        tid = int(cur.lastrowid or 0)
        conn.executemany(
            """INSERT INTO torrent_file(torrent_id, path, audio_file_id, size, sha256,
                   pieces_root, role, aacid) VALUES (?,?,?,?,?,?,?,?)""",
            [(tid, m.path, m.audio_file_id, m.size, m.sha256, m.pieces_root, m.role, m.aacid)
             for m in members],
        )
        if built is not None:
            mark_built(store, tid, built)
    return tid


def mark_built(store: Store, torrent_id: int, b: Built) -> None:
    with store.transaction() as conn:
        conn.execute(
            """UPDATE torrent SET built = 1, infohash_v1 = ?, infohash_v2 = ?, piece_length = ?,
                   size = ?, files = ?, magnet = ? WHERE id = ?""",
            (b.infohash_v1, b.infohash_v2, b.piece_length, b.size, b.files, b.magnet, torrent_id),
        )


def mark_obsolete(store: Store, torrent_id: int, superseded_by: int | None) -> None:
    """Torrent ``torrent_id`` and the metadata torrents describing it are replaced."""
    with store.transaction() as conn:
        conn.execute(
            "UPDATE torrent SET obsolete = 1, superseded_by = ? WHERE id = ? OR describes = ?",
            (superseded_by, torrent_id, torrent_id),
        )


def drop_planned(store: Store, torrent_id: int) -> None:
    """Forget a planned torrent that produced no payload (every member was dropped)."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM torrent_file WHERE torrent_id = ?", (torrent_id,))
        conn.execute("UPDATE torrent SET superseded_by = NULL WHERE superseded_by = ?",
                     (torrent_id,))
        conn.execute("DELETE FROM torrent WHERE id = ?", (torrent_id,))


def rename_members(store: Store, torrent_id: int, renames: dict[str, str]) -> None:
    """Give files of a planned torrent new paths (two steps: new names may swap old ones)."""
    if not renames:
        return
    with store.transaction() as conn:
        conn.executemany(
            "UPDATE torrent_file SET path = ? WHERE torrent_id = ? AND path = ?",
            [(f"\x00{i}", torrent_id, old) for i, old in enumerate(renames)],
        )
        conn.executemany(
            "UPDATE torrent_file SET path = ? WHERE torrent_id = ? AND path = ?",
            [(new, torrent_id, f"\x00{i}") for i, new in enumerate(renames.values())],
        )


def drop_members(store: Store, torrent_id: int, audio_file_ids: Iterable[int]) -> None:
    """Remove the files of these archive files from a planned torrent."""
    with store.transaction() as conn:
        conn.executemany(
            "DELETE FROM torrent_file WHERE torrent_id = ? AND audio_file_id = ?",
            [(torrent_id, i) for i in audio_file_ids],
        )


def set_member_roots(store: Store, torrent_id: int, path: str, pieces_root: str | None,
                     sha256: str | None = None, size: int | None = None) -> None:
    """Store the merkle root of one member (and, for a patch, its hash and size)."""
    with store.transaction() as conn:
        if sha256 is None and size is None:
            conn.execute(
                "UPDATE torrent_file SET pieces_root = ? WHERE torrent_id = ? AND path = ?",
                (pieces_root, torrent_id, path))
        else:
            conn.execute(
                "UPDATE torrent_file SET pieces_root = ?, sha256 = ?, size = ? "
                "WHERE torrent_id = ? AND path = ?",
                (pieces_root, sha256, size, torrent_id, path))


def add_wave(store: Store, released_at: str, torrent_ids: Sequence[int],
             torrents: int, nbytes: int, options: str) -> int:
    """Record the next release wave, put these torrents (and what describes them) in it;
    return its number (waves are numbered 1, 2, ...)."""
    marks = ",".join("?" * len(torrent_ids))
    with store.transaction() as conn:
        wave = int(conn.execute("SELECT coalesce(max(id), 0) FROM wave").fetchone()[0]) + 1
        conn.execute(
            f"UPDATE torrent SET wave = ? WHERE id IN ({marks}) OR describes IN ({marks})",
            [wave, *torrent_ids, *torrent_ids],
        )
        conn.execute(
            "INSERT INTO wave(id, released_at, torrents, bytes, options) VALUES (?,?,?,?,?)",
            (wave, released_at, torrents, nbytes, options),
        )
    return wave


# Built, current data torrents that no release wave has published yet.
_UNRELEASED = "kind = 'data' AND built = 1 AND obsolete = 0 AND wave IS NULL"


def unreleased(store: Store) -> list[sqlite3.Row]:
    """Data torrents waiting for a wave, in release order (band, then age)."""
    return store.query(
        f"SELECT id, name, band, size, created_at FROM torrent WHERE {_UNRELEASED} "
        "ORDER BY band, aac_from, id")


def unreleased_totals(store: Store) -> tuple[int, int]:
    """How many data torrents wait for a wave, and their bytes."""
    row = store.query(
        f"SELECT count(*), coalesce(sum(size), 0) FROM torrent WHERE {_UNRELEASED}")[0]
    return int(row[0]), int(row[1])


def current_database(store: Store) -> sqlite3.Row | None:
    """The current torrent over the published database, if any."""
    rows = store.query(
        "SELECT * FROM torrent WHERE role = 'database' AND obsolete = 0 AND built = 1")
    return rows[0] if rows else None


def last_wave_time(store: Store) -> str | None:
    """When the newest release wave went out (waves never go back in time)."""
    value = store.scalar("SELECT max(released_at) FROM wave")
    return None if value is None else str(value)


def last_aac_time(store: Store) -> str | None:
    """The newest AAC timestamp any torrent carries (new folders are named after it)."""
    value = store.scalar("SELECT max(aac_to) FROM torrent WHERE aac_to IS NOT NULL")
    return None if value is None else str(value)


def name_taken(store: Store, name: str) -> bool:
    return store.scalar("SELECT 1 FROM torrent WHERE name = ?", (name,)) is not None
