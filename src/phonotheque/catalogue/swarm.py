"""Owner of the swarm tables: ``torrent_swarm`` (scrape results) and ``torrent_seeding``.

Every write to these tables goes through here. ``phono health`` records what each
tracker said of each public torrent; ``phono seed`` records which torrents our own
seeder holds and how much it has uploaded of each, across runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from phonotheque.catalogue.store import Store, now_iso

# Which torrents are public (as in publish/index.py): released, or the metadata database.
_PUBLIC = "t.built = 1 AND (t.wave IS NOT NULL OR t.role = 'database')"


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    """A public torrent as `phono health` needs it."""

    torrent_id: int
    name: str
    infohash_v1: str | None
    infohash_v2: str | None
    magnet: str | None
    obsolete: bool


@dataclass(frozen=True, slots=True)
class SwarmRow:
    torrent_id: int
    tracker: str
    seeders: int
    leechers: int
    completed: int
    scraped_at: str


@dataclass(frozen=True, slots=True)
class Health:
    """The best a torrent's trackers said of it, and what our seeder does with it."""

    seeders: int | None = None  # None: never scraped
    leechers: int | None = None
    completed: int | None = None
    scraped_at: str | None = None
    currently_seeding: bool = False
    uploaded: int = 0


def scrape_targets(store: Store) -> list[ScrapeTarget]:
    """Every public torrent (current and obsolete), in id order."""
    return [
        ScrapeTarget(int(r["id"]), r["name"], r["infohash_v1"], r["infohash_v2"], r["magnet"],
                     bool(r["obsolete"]))
        for r in store.query(
            f"SELECT t.id, t.name, t.infohash_v1, t.infohash_v2, t.magnet, t.obsolete "
            f"FROM torrent t WHERE {_PUBLIC} ORDER BY t.id")
    ]


def record_scrapes(store: Store, rows: Iterable[SwarmRow]) -> int:
    """Keep the latest answer of each tracker for each torrent; return rows written."""
    n = 0
    with store.transaction() as conn:
        for r in rows:
            conn.execute(
                """INSERT INTO torrent_swarm(torrent_id, tracker, seeders, leechers, completed,
                                             scraped_at)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT(torrent_id, tracker) DO UPDATE SET seeders = excluded.seeders,
                     leechers = excluded.leechers, completed = excluded.completed,
                     scraped_at = excluded.scraped_at""",
                (r.torrent_id, r.tracker, r.seeders, r.leechers, r.completed, r.scraped_at),
            )
            n += 1
    return n


def health(conn: sqlite3.Connection) -> dict[int, Health]:
    """Per torrent id: the counts of its newest scrape run (``phono health`` stamps all
    answers of one run with one time; of several trackers, the one reporting the most
    seeders), and our seeder's state. Torrents with neither are absent.

    Older runs' rows stay (a tracker that failed this time keeps its last answer) but
    count only while nothing newer exists for that torrent."""
    out: dict[int, Health] = {}
    for r in conn.execute(
        """SELECT torrent_id, seeders, leechers, completed, scraped_at
           FROM (SELECT s.*, row_number() OVER (PARTITION BY torrent_id
                   ORDER BY scraped_at DESC, seeders DESC, leechers DESC, tracker) AS k
                 FROM torrent_swarm s)
           WHERE k = 1"""
    ):
        # the newest scrape run; among its trackers, the one seeing the most seeders
        out[int(r["torrent_id"])] = Health(r["seeders"], r["leechers"], r["completed"],
                                           r["scraped_at"])
    for r in conn.execute("SELECT torrent_id, active, uploaded FROM torrent_seeding"):
        h = out.get(int(r["torrent_id"]), Health())
        out[int(r["torrent_id"])] = Health(h.seeders, h.leechers, h.completed, h.scraped_at,
                                           bool(r["active"]), int(r["uploaded"]))
    return out


def torrent_ids_by_infohash(store: Store) -> dict[str, int]:
    """Public torrents by v1 info-hash and by v2 info-hash truncated to 40 hex digits."""
    out: dict[str, int] = {}
    for t in scrape_targets(store):
        for h in (t.infohash_v1, (t.infohash_v2 or "")[:40]):
            if h:
                out[h.lower()] = t.torrent_id
    return out


def start_seeding(store: Store, torrent_ids: Iterable[int]) -> None:
    """Our seeder now holds exactly ``torrent_ids`` (others are marked inactive)."""
    at = now_iso()
    ids = sorted(set(torrent_ids))
    with store.transaction() as conn:
        conn.execute("UPDATE torrent_seeding SET active = 0, updated_at = ? WHERE active = 1",
                     (at,))
        for tid in ids:
            conn.execute(
                """INSERT INTO torrent_seeding(torrent_id, active, uploaded, started_at, updated_at)
                   VALUES (?, 1, 0, ?, ?)
                   ON CONFLICT(torrent_id) DO UPDATE SET active = 1,
                     started_at = excluded.started_at, updated_at = excluded.updated_at""",
                (tid, at, at),
            )


def add_uploads(store: Store, uploaded: Mapping[int, int], *, stopped: bool = False) -> None:
    """Add ``uploaded`` bytes per torrent id to the totals; ``stopped``: the seeder has ended."""
    at = now_iso()
    with store.transaction() as conn:
        for tid, n in sorted(uploaded.items()):
            if n:
                conn.execute("UPDATE torrent_seeding SET uploaded = uploaded + ?, updated_at = ? "
                             "WHERE torrent_id = ?", (int(n), at, tid))
        if stopped:
            conn.execute("UPDATE torrent_seeding SET active = 0, updated_at = ? WHERE active = 1",
                         (at,))
