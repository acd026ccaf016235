"""Catalogue schema and forward migrations.

``MIGRATIONS[i]`` takes a catalogue from version ``i`` to ``i + 1``. A catalogue
records its version in ``PRAGMA user_version``; opening one whose version is
higher than ``len(MIGRATIONS)`` is refused (it was written by a newer phono).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from phonotheque.errors import SchemaTooNew, WorkspaceError

# Provenance columns carried by every row that comes from an input.
_PROV = "source TEXT, locator TEXT, licence TEXT"

V1 = f"""
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;

CREATE TABLE artist(
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    mbid TEXT,
    name TEXT NOT NULL,
    sort_name TEXT,
    {_PROV}
);
CREATE INDEX artist_mbid ON artist(mbid);

CREATE TABLE release(
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    mbid TEXT,
    title TEXT NOT NULL,
    date TEXT,
    label TEXT,
    barcode TEXT,
    artist_credit TEXT,
    art_path TEXT,
    {_PROV}
);
CREATE INDEX release_mbid ON release(mbid);

CREATE TABLE track(
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    mbid TEXT,
    title TEXT NOT NULL,
    artist_credit TEXT,
    release_id INTEGER REFERENCES release(id),
    disc INTEGER,
    position INTEGER,
    duration_ms INTEGER,
    excluded INTEGER NOT NULL DEFAULT 0,
    {_PROV}
);
CREATE INDEX track_mbid ON track(mbid);
CREATE INDEX track_release ON track(release_id);

CREATE TABLE track_artist(
    track_id INTEGER NOT NULL REFERENCES track(id),
    position INTEGER NOT NULL,
    artist_id INTEGER NOT NULL REFERENCES artist(id),
    PRIMARY KEY(track_id, position)
) WITHOUT ROWID;
CREATE INDEX track_artist_artist ON track_artist(artist_id);

CREATE TABLE track_isrc(
    track_id INTEGER NOT NULL REFERENCES track(id),
    isrc TEXT NOT NULL,
    known_country INTEGER NOT NULL DEFAULT 1,
    {_PROV},
    PRIMARY KEY(track_id, isrc)
) WITHOUT ROWID;
CREATE INDEX track_isrc_isrc ON track_isrc(isrc);

-- Listen counts keep the key they arrived with, so listens may be ingested
-- before or after the tracks they count; track_id is resolved afterwards.
CREATE TABLE listens(
    id INTEGER PRIMARY KEY,
    dataset TEXT NOT NULL,
    key_kind TEXT NOT NULL CHECK (key_kind IN ('mbid', 'isrc', 'track_id', 'key')),
    key TEXT NOT NULL,
    count INTEGER NOT NULL CHECK (count >= 0),
    users INTEGER,
    track_id INTEGER REFERENCES track(id),
    {_PROV},
    UNIQUE(dataset, key_kind, key)
);
CREATE INDEX listens_track ON listens(track_id);

CREATE TABLE source_audio(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    track_id INTEGER NOT NULL REFERENCES track(id),
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    codec TEXT,
    container TEXT,
    bitrate INTEGER,
    duration_ms INTEGER,
    sample_rate INTEGER,
    channels INTEGER,
    match TEXT,
    {_PROV}
);
CREATE INDEX source_audio_track ON source_audio(track_id);

CREATE TABLE exclusion(
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('isrc', 'mbid', 'path')),
    value TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    added_at TEXT NOT NULL,
    UNIQUE(kind, value)
);

CREATE TABLE reject(
    id INTEGER PRIMARY KEY,
    stage TEXT NOT NULL,
    source TEXT NOT NULL,
    locator TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE(stage, source, locator, reason)
);

-- How far an ingest got in each input file, committed in the same transaction
-- as the rows it covers, so a killed ingest resumes where it stopped.
CREATE TABLE ingest_checkpoint(
    source TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    size INTEGER,
    mtime_ns INTEGER,
    offset INTEGER NOT NULL DEFAULT 0,
    line INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- select: the plan (recomputed by every `phono select`) ...
CREATE TABLE selection(
    track_id INTEGER PRIMARY KEY REFERENCES track(id),
    rank INTEGER NOT NULL,
    band INTEGER NOT NULL,
    cum_share REAL NOT NULL,
    tier TEXT NOT NULL CHECK (tier IN ('original', 'reencode')),
    est_bytes INTEGER NOT NULL DEFAULT 0,
    priority REAL,
    -- estimated archive size of ranks 1..rank (what the budget is checked against)
    cum_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX selection_rank ON selection(rank);

-- One row per `phono select`: the options it ran with and what it reached (JSON),
-- plus the downsampled coverage curve, for reports and the published statistics.
CREATE TABLE select_run(
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    options TEXT NOT NULL,
    result TEXT NOT NULL,
    curve TEXT NOT NULL
);

-- ... and the ledger: one status per track (todo, success, skipped_*, excluded,
-- error_<reason>); audio outcomes survive a re-selection.
CREATE TABLE ledger(
    track_id INTEGER PRIMARY KEY REFERENCES track(id),
    status TEXT NOT NULL,
    detail TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX ledger_status ON ledger(status);

-- audio: one archive file per selected track; path is relative to the workspace.
CREATE TABLE audio_file(
    id INTEGER PRIMARY KEY,
    track_id INTEGER NOT NULL UNIQUE REFERENCES track(id),
    source_audio_id INTEGER REFERENCES source_audio(id),
    tier TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    container TEXT,
    codec TEXT,
    bitrate INTEGER,
    duration_ms INTEGER,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    original_sha256 TEXT,
    original_size INTEGER,
    btv2_root TEXT,
    patch_path TEXT,
    replaygain_gain REAL,
    replaygain_peak REAL,
    reconstruction TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX audio_file_sha256 ON audio_file(sha256);

-- pack / publish
CREATE TABLE torrent(
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('data', 'meta', 'art')),
    band INTEGER,
    name TEXT NOT NULL UNIQUE,
    torrent_path TEXT NOT NULL,
    data_path TEXT NOT NULL,
    infohash_v1 TEXT,
    infohash_v2 TEXT,
    piece_length INTEGER,
    size INTEGER NOT NULL,
    files INTEGER NOT NULL,
    wave INTEGER,
    obsolete INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    -- what the torrent carries: audio (a data folder), aac_meta (the AAC metadata
    -- file of one data folder), database (metadata.sqlite + Parquet), art (the tar)
    role TEXT,
    layout TEXT,
    collection TEXT,
    aac_from TEXT,
    aac_to TEXT,
    generation INTEGER,
    magnet TEXT,
    describes INTEGER REFERENCES torrent(id),
    superseded_by INTEGER REFERENCES torrent(id),
    -- 0 while planned (rows and members recorded, payload not yet hashed), so an
    -- interrupted pack resumes the same plan and produces the same bytes
    built INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX torrent_wave ON torrent(wave);

CREATE TABLE torrent_file(
    torrent_id INTEGER NOT NULL REFERENCES torrent(id),
    path TEXT NOT NULL,
    audio_file_id INTEGER REFERENCES audio_file(id),
    size INTEGER NOT NULL,
    sha256 TEXT,
    pieces_root TEXT,
    role TEXT NOT NULL DEFAULT 'audio',
    aacid TEXT,
    PRIMARY KEY(torrent_id, path)
) WITHOUT ROWID;
CREATE INDEX torrent_file_audio ON torrent_file(audio_file_id);

-- release waves: which torrents went public together (torrent.wave), and when
-- (derived from the torrents' own timestamps so re-runs give the same bytes).
CREATE TABLE wave(
    id INTEGER PRIMARY KEY,
    released_at TEXT NOT NULL,
    torrents INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    options TEXT NOT NULL DEFAULT '{{}}'
);

-- album art: releases `phono pack` has looked for art (found = 0 if none), so later
-- packs only look at new releases (or all, with --rescan-art) ...
CREATE TABLE art_scan(
    release_id INTEGER PRIMARY KEY REFERENCES release(id),
    found INTEGER NOT NULL
);
-- ... and the image chosen for each release (source: the image file, or the audio
-- file it is embedded in when origin = 'embedded')
CREATE TABLE release_art(
    release_id INTEGER PRIMARY KEY REFERENCES release(id),
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mime TEXT NOT NULL,
    member TEXT NOT NULL,
    origin TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT ''
);
"""

# Swarm health (owner: catalogue/swarm.py).
V2 = """
-- phono health: the latest scrape of each public torrent, per tracker
CREATE TABLE torrent_swarm(
    torrent_id INTEGER NOT NULL REFERENCES torrent(id),
    tracker TEXT NOT NULL,
    seeders INTEGER NOT NULL,
    leechers INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    scraped_at TEXT NOT NULL,
    PRIMARY KEY(torrent_id, tracker)
) WITHOUT ROWID;

-- phono seed: what our own seeder holds now (active) and has uploaded in all
CREATE TABLE torrent_seeding(
    torrent_id INTEGER PRIMARY KEY REFERENCES torrent(id),
    active INTEGER NOT NULL DEFAULT 0,
    uploaded INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    updated_at TEXT NOT NULL
);
"""

MIGRATIONS: Sequence[str] = (V1, V2)

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection, path: object, migrations: Sequence[str] = MIGRATIONS
) -> int:
    """Bring ``conn`` up to the newest schema; return the version it was at.

    Each migration runs in its own transaction together with the version bump,
    so a crash mid-migration leaves the catalogue at the previous version.
    """
    current = schema_version(conn)
    if current > len(migrations):
        raise SchemaTooNew(
            path,
            f"catalogue schema version {current} is newer than this phono understands "
            f"(up to {len(migrations)}); upgrade phonotheque",
        )
    if current == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise WorkspaceError(path, "not a Phonothèque catalogue (tables present, no schema version)")
    for version in range(current, len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(migrations[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (executescript would commit on its own)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
