"""Bulk-build a synthetic *published* metadata.sqlite of N tracks, fast (SQL, no pipeline).

Used by bench/serve.py. Follows `publish/dbschema.py` exactly (DDL), fills every
table serve reads with plausible data: titles and names from a 5,000-word
vocabulary (some with diacritics), one ISRC for 90 % of tracks, Zipf listens
spread over track ids (a catalogue's ids are not in popularity order: listens rank
(i * 999983) mod N, a permutation for any N that 999983, a prime, does not divide),
one file per track in 20,000-file torrents, and the FTS index in publish's order
(optimized, as publish leaves it). Deterministic for a given N.
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from pathlib import Path

from phonotheque.publish.dbschema import DDL, PUBLISH_SCHEMA_VERSION, SEARCH_ORDER_SQL

COMMON = (
    "love night heart song rain summer dance blue moon fire girl boy time life light dream "
    "world home star road sky sun day baby soul river way wind city gold black red white "
    "king queen angel ghost shadow heaven paradise crazy wild sweet little old new last "
    "first lonely broken happy forever tonight yesterday tomorrow midnight morning winter "
    "spring autumn ocean island mountain desert garden rose flower blood tears smile kiss"
).split()
_SYL = "ka lo mi ra ne so ti va du pe zo an el or ba ri mu sha que tor vel lin dar mon"
_ACCENTED = "é ö ñ å ü ø ç á í ó".split()


def vocabulary(n: int = 5000) -> list[str]:
    rng = random.Random(6)
    syl = _SYL.split()
    words: list[str] = []
    seen = set(COMMON)
    while len(words) < n - len(COMMON):
        w = "".join(rng.choice(syl) for _ in range(rng.randint(2, 4)))
        if rng.random() < 0.08:
            i = rng.randrange(len(w))
            w = w[:i] + rng.choice(_ACCENTED) + w[i + 1 :]
        if w not in seen:
            seen.add(w)
            words.append(w.capitalize())
    return [w.capitalize() for w in COMMON] + words


B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
COUNTRIES = ("US", "GB", "DE", "FR", "JP", "SE", "NL", "CA", "AU", "BR", "QM", "QZ")


def isrc_of(i: int) -> str | None:
    """The ISRC given to track index i (0-based), or None (10 % have none)."""
    if i % 10 == 9:
        return None
    rest, n = divmod(i, 100_000)
    reg = B36[(rest // 1296) % 36] + B36[(rest // 36) % 36] + B36[rest % 36]
    return f"{COUNTRIES[rest % len(COUNTRIES)]}{reg}{(i * 7) % 100:02d}{n:05d}"


def build(dest: Path, n: int, progress: bool = True) -> Path:
    tmp = dest.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    conn.executescript(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-2000000;"
        "PRAGMA temp_store=MEMORY; PRAGMA page_size=4096;"
    )
    ddl = re.sub(r"--[^\n]*", "", DDL)  # comments may hold ';'
    statements = [s.strip() for s in ddl.split(";") if s.strip()]
    indexes = [s for s in statements if s.upper().startswith("CREATE INDEX")]
    for s in statements:
        if s not in indexes:
            conn.execute(s)
    vocab = vocabulary()
    conn.execute("CREATE TEMP TABLE w(wi INTEGER PRIMARY KEY, w TEXT NOT NULL)")
    conn.executemany("INSERT INTO w VALUES (?,?)", enumerate(vocab))
    conn.create_function("isrc_of", 1, isrc_of, deterministic=True)
    nw, nc = len(vocab), len(COMMON)
    n_artists = max(1, n // 20)
    n_releases = max(1, n // 10)
    per_torrent = 20_000
    t0 = time.monotonic()

    def step(msg: str) -> None:
        if progress:
            print(f"  {time.monotonic() - t0:7.1f} s  {msg}", flush=True)

    seq = "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ? - 1)"
    conn.execute(
        f"{seq} INSERT INTO artist(id, mbid, name, sort_name)"
        " SELECT i + 1, lower(hex(randomblob(16))),"
        f" (SELECT w FROM w WHERE w.wi = (i * 7919) % {nw}) || ' ' ||"
        f" (SELECT w FROM w WHERE w.wi = (i * 104729 + 13) % {nw}), NULL FROM s",
        (n_artists,),
    )
    step(f"{n_artists:,} artists")
    conn.execute(
        f"{seq} INSERT INTO release(id, mbid, title, date, artist_credit)"
        " SELECT i + 1, lower(hex(randomblob(16))),"
        f" (SELECT w FROM w WHERE w.wi = (i * 15485863 + 7) % {nw}) || ' ' ||"
        f" (SELECT w FROM w WHERE w.wi = (i * 31) % {nc}),"
        " printf('%04d-%02d-%02d', 1950 + i % 75, 1 + i % 12, 1 + i % 28),"
        f" (SELECT name FROM artist WHERE id = 1 + (i / 2) % {n_artists}) FROM s",
        (n_releases,),
    )
    step(f"{n_releases:,} releases")
    conn.execute(
        f"{seq} INSERT INTO track(id, mbid, title, artist_credit, release_id, disc, position,"
        " duration_ms, source, licence, listens, rank, band, tier, status)"
        " SELECT i + 1, lower(hex(randomblob(16))),"
        f" (SELECT w FROM w WHERE w.wi = (i * 2654435761) % {nw}) || ' ' ||"
        f" (SELECT w FROM w WHERE w.wi = (i * 40503) % {nc}),"
        f" (SELECT name FROM artist WHERE id = 1 + (i / 20) % {n_artists}),"
        " 1 + i / 10, 1, 1 + i % 10, 120000 + (i * 7919) % 240000, 'synthetic', NULL,"
        f" CAST(10000000.0 / ((i * 999983) % {n} + 1) AS INTEGER), i + 1,"
        f" 1 + min(9, i * 10 / {n}), CASE WHEN i < {n} / 100 THEN 'original' ELSE 'opus' END,"
        " 'archived' FROM s",
        (n,),
    )
    step(f"{n:,} tracks")
    conn.execute(
        f"INSERT INTO track_artist SELECT id, 0, 1 + ((id - 1) / 20) % {n_artists} FROM track"
    )
    conn.execute(
        "INSERT INTO track_isrc SELECT id, isrc_of(id - 1) FROM track"
        " WHERE isrc_of(id - 1) IS NOT NULL"
    )
    step("artists and ISRCs of tracks")
    n_torrents = -(-n // per_torrent)
    conn.execute(
        f"{seq} INSERT INTO torrent(id, kind, name, band, wave, infohash_v1, infohash_v2, magnet,"
        " size, files, obsolete, added_at)"
        " SELECT i + 1, 'data', printf('phonotheque-w1-%05d', i + 1),"
        f" 1 + min(9, i * {per_torrent} * 10 / {n}), 1,"
        " lower(hex(randomblob(20))), lower(hex(randomblob(32))), '', 0, 0, 0,"
        " '2026-11-25T12:00:00Z' FROM s",
        (n_torrents,),
    )
    conn.execute(
        "UPDATE torrent SET magnet = 'magnet:?xt=urn:btih:' || infohash_v1 ||"
        " '&xt=urn:btmh:1220' || infohash_v2 || '&dn=' || name"
    )
    conn.execute(
        "INSERT INTO file(track_id, torrent_id, path, size, sha256, btv2_root, tier, container,"
        " codec, bitrate) SELECT t.id, 1 + (t.id - 1) / ?,"
        " t.artist_credit || '/' || r.title || '/' || printf('%02d ', t.position) || t.title ||"
        " CASE t.tier WHEN 'original' THEN '.flac' ELSE '.opus' END,"
        " t.duration_ms * CASE t.tier WHEN 'original' THEN 110 ELSE 12 END,"
        " lower(hex(randomblob(32))), lower(hex(randomblob(32))), t.tier,"
        " CASE t.tier WHEN 'original' THEN 'flac' ELSE 'ogg' END,"
        " CASE t.tier WHEN 'original' THEN 'flac' ELSE 'opus' END,"
        " CASE t.tier WHEN 'original' THEN NULL ELSE 96000 END"
        " FROM track t JOIN release r ON r.id = t.release_id",
        (per_torrent,),
    )
    conn.execute(
        "UPDATE torrent SET (size, files) = (SELECT sum(size), count(*) FROM file"
        " WHERE file.torrent_id = torrent.id)"
    )
    step("torrents and files")
    conn.execute(SEARCH_ORDER_SQL)
    conn.execute(
        "INSERT INTO track_fts(rowid, title, artists, release)"
        " SELECT o.pos, t.title, t.artist_credit, r.title FROM search_order o"
        " JOIN track t ON t.id = o.track_id JOIN release r ON r.id = t.release_id"
        " ORDER BY o.pos"
    )
    step("full-text index")
    conn.execute("INSERT INTO track_fts(track_fts) VALUES ('optimize')")
    step("full-text index optimized")
    for s in indexes:
        conn.execute(s)
    step("indexes")
    stats = {
        "tracks": n,
        "archived_tracks": n,
        "unique_isrcs": conn.execute("SELECT count(*) FROM track_isrc").fetchone()[0],
        "torrents": n_torrents,
        "total_bytes": conn.execute("SELECT sum(size) FROM file").fetchone()[0],
        "coverage_share": 1.0,
    }
    conn.executemany("INSERT INTO stats VALUES (?,?)", list(stats.items()))
    conn.executemany(
        "INSERT INTO info VALUES (?,?)",
        [("schema_version", str(PUBLISH_SCHEMA_VERSION)), ("name", f"Synthetic {n:,}-track archive")],
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    tmp.replace(dest)
    step(f"done: {dest.stat().st_size / 2**30:.2f} GiB")
    return dest


if __name__ == "__main__":
    import sys

    build(Path(sys.argv[1]), int(sys.argv[2]))
