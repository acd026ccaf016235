"""Schema of the published metadata database (``publish/metadata.sqlite``).

This is the public contract: what `phono publish` writes, what `phono serve`
reads (read-only) and what users open with plain ``sqlite3`` or, as Parquet,
with DuckDB/pandas. It is deliberately flat and self-describing: no internal
state, no provenance paths of the builder's machine beyond source names.
"""

from __future__ import annotations

# 2: track_fts rowid = search_order.pos (popularity order), was track.id
# 3: track_fts contentless (content=''), no isrc column: ISRC searches, whole codes and
#    prefixes, go through track_isrc's index (every track, not only the indexed ones)
PUBLISH_SCHEMA_VERSION = 3
#: Published schema versions `phono serve` reads: 3 and 2 differ only in what track_fts
#: stores (2 also had its text and an isrc column), and the server asks it for rowids of
#: title/artists/release matches only.
READABLE_SCHEMA_VERSIONS = frozenset({2, 3})

DDL = """
CREATE TABLE info(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;

CREATE TABLE artist(
    id INTEGER PRIMARY KEY, mbid TEXT, name TEXT NOT NULL, sort_name TEXT);

CREATE TABLE release(
    id INTEGER PRIMARY KEY, mbid TEXT, title TEXT NOT NULL, date TEXT, label TEXT,
    barcode TEXT, artist_credit TEXT);

-- one row per catalogue track; listens/rank/band/tier/status come from select + audio
CREATE TABLE track(
    id INTEGER PRIMARY KEY, mbid TEXT, title TEXT NOT NULL, artist_credit TEXT,
    release_id INTEGER, disc INTEGER, position INTEGER, duration_ms INTEGER,
    source TEXT, licence TEXT,
    listens INTEGER NOT NULL DEFAULT 0, rank INTEGER, band INTEGER, tier TEXT,
    status TEXT NOT NULL);
CREATE INDEX track_mbid ON track(mbid);
CREATE INDEX track_rank ON track(rank);

CREATE TABLE track_artist(
    track_id INTEGER NOT NULL, position INTEGER NOT NULL, artist_id INTEGER NOT NULL,
    PRIMARY KEY(track_id, position)) WITHOUT ROWID;

CREATE TABLE track_isrc(
    track_id INTEGER NOT NULL, isrc TEXT NOT NULL, PRIMARY KEY(track_id, isrc)) WITHOUT ROWID;
CREATE INDEX track_isrc_isrc ON track_isrc(isrc);

CREATE TABLE torrent(
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL UNIQUE, band INTEGER,
    wave INTEGER, infohash_v1 TEXT, infohash_v2 TEXT, magnet TEXT NOT NULL,
    size INTEGER NOT NULL, files INTEGER NOT NULL, obsolete INTEGER NOT NULL DEFAULT 0,
    added_at TEXT NOT NULL,
    -- audio | aac_meta | art; collection = AAC collection; superseded_by = torrent.id
    role TEXT, collection TEXT, piece_length INTEGER, superseded_by INTEGER);

-- where each archived track's file is: which torrent, which path inside it
CREATE TABLE file(
    track_id INTEGER NOT NULL, torrent_id INTEGER NOT NULL, path TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, btv2_root TEXT, tier TEXT NOT NULL,
    container TEXT, codec TEXT, bitrate INTEGER,
    original_sha256 TEXT, original_size INTEGER, patch_path TEXT,
    PRIMARY KEY(torrent_id, path)) WITHOUT ROWID;
CREATE INDEX file_track ON file(track_id);
CREATE INDEX file_sha256 ON file(sha256);

CREATE TABLE stats(key TEXT PRIMARY KEY, value) WITHOUT ROWID;

-- release waves: torrent.wave refers to these
CREATE TABLE wave(
    id INTEGER PRIMARY KEY, released_at TEXT NOT NULL, torrents INTEGER NOT NULL,
    bytes INTEGER NOT NULL);

-- every published file that is not an archived track (reconstruction patches in the
-- data torrents, AAC metadata files, the album-art tar), so that `phono verify`
-- can check every file against a SHA-256 and merkle root
CREATE TABLE aux_file(
    torrent_id INTEGER NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
    sha256 TEXT NOT NULL, btv2_root TEXT, PRIMARY KEY(torrent_id, path)) WITHOUT ROWID;

-- album art: which image (a member of the art torrent's tar) belongs to a release
CREATE TABLE art(
    release_id INTEGER PRIMARY KEY, torrent_id INTEGER NOT NULL, member TEXT NOT NULL,
    sha256 TEXT NOT NULL, size INTEGER NOT NULL, mime TEXT NOT NULL);

-- takedowns honoured by this archive (values of path exclusions are not published)
CREATE TABLE exclusion(
    kind TEXT NOT NULL, value TEXT, reason TEXT NOT NULL, added_at TEXT NOT NULL);

-- every track by popularity: pos 1 is the most listened (ties: lowest track id)
CREATE TABLE search_order(pos INTEGER PRIMARY KEY, track_id INTEGER NOT NULL);

-- full-text search over title, artists and release; prefix and diacritic-insensitive
-- matching (unicode61 remove_diacritics 2).
-- Its rowid is search_order.pos (not track.id): FTS5 yields matches in rowid order,
-- so the first matches of any query are its most listened ones.
-- Contentless: it answers with rowids only (join search_order, then track, for the
-- text); a copy of the text would cost 59 B per indexed track and serve nobody. Its
-- column sizes stay (13 B per indexed track, ~3 % of the build at 10 M): without them a
-- contentless table refuses every scan that is not a MATCH (Python's iterdump included).
-- No ISRC column: a code, or its first 6-11 characters, is looked up in track_isrc's index, for
-- every track; as FTS tokens ISRCs cost a third of the index's build (docs/scale.md).
CREATE VIRTUAL TABLE track_fts USING fts5(
    title, artists, release, content='',
    tokenize='unicode61 remove_diacritics 2', prefix='2 3');
"""

# Fills search_order from track; run once every track row is in (track_fts rows are
# then inserted with rowid = search_order.pos).
SEARCH_ORDER_SQL = """INSERT INTO search_order(pos, track_id)
    SELECT row_number() OVER (ORDER BY listens DESC, id), id FROM track ORDER BY 1"""
