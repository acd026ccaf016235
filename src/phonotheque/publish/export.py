"""Export the catalogue to the published metadata database and Parquet files.

``metadata.sqlite`` follows :mod:`phonotheque.publish.dbschema` exactly and is built
by SQL from the ATTACHed catalogue (``INSERT ... SELECT``), so memory stays flat
whatever the size. Rows go in in id order, with the same statements every time:
the same catalogue gives the same bytes (a rollback journal, not WAL, so the file
is complete on its own).

Parquet (zstd) has the same tables, read back from the finished database in
batches and written with explicit column types, one file per table.

Only *released* torrents (those with a wave) appear, with the files they carry,
except the files of excluded tracks (a takedown: the track's metadata stays, its
status ``excluded``; torrents that carried it are listed without magnet);
the catalogue's internal state (paths on the builder's machine, provenance
locators) does not.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from phonotheque import __version__, interrupts
from phonotheque.atomic import atomic_path
from phonotheque.catalogue.schema import SCHEMA_VERSION
from phonotheque.errors import wrap_os_error, wrap_sqlite_error
from phonotheque.pack.aac import public_source
from phonotheque.publish.dbschema import DDL, PUBLISH_SCHEMA_VERSION, SEARCH_ORDER_SQL
from phonotheque.publish.index import withdrawn_sql
from phonotheque.sources.bounds import MAX_INT64, track_listens_sql
from phonotheque.sqlite_uri import file_uri

# Tables exported to Parquet, in this order (FTS shadow tables are not data).
PARQUET_TABLES = (
    "info", "stats", "artist", "release", "track", "track_artist", "track_isrc",
    "wave", "torrent", "file", "aux_file", "art", "exclusion",
)  # fmt: skip
BATCH_ROWS = 50_000
_ARROW_TYPES = {"INTEGER": pa.int64(), "TEXT": pa.string(), "REAL": pa.float64()}

Progress = Callable[..., object]


@dataclass(frozen=True)
class ExportContext:
    """What the export needs besides the catalogue."""

    built_at: str  # ISO 8601, derived from the catalogue by the caller
    name: str = "Phonothèque"
    prefix: str = ""
    layout: str = ""
    # How many tracks track_fts indexes, most listened first (see search_limit).
    search_tracks: int | None = None


#: Text search (track_fts) indexes at most this many tracks unless told otherwise: the
#: most listened ones. FTS5 costs ~104 B and ~7.5 µs of one core per track (schema 3;
#: docs/scale.md, "What the search database holds"): every track up to 10 M, the 10 M most
#: listened of a larger catalogue (1 GB of index instead of 27 GB at 256 M). Every table stays complete
#: (ISRC, MBID and id lookups find every track), and so does the Parquet.
SEARCH_TRACKS_AUTO = 10_000_000


def search_limit(option: int | None) -> int:
    """How many tracks (search_order positions 1..n) track_fts indexes.

    A number past SQLite's integers (``--search-tracks 99999999999999999999``) means every
    track, as any number above the catalogue's size does: it is capped at 2**63 - 1, which
    SQLite can bind (the SQLite engine stopped with Python's OverflowError, the columnar
    one published every track)."""
    return SEARCH_TRACKS_AUTO if option is None else min(option, MAX_INT64)


_RELEASED = "t.built = 1 AND t.wave IS NOT NULL"


def export_sqlite(catalogue: Path, out: Path, ctx: ExportContext) -> dict[str, int]:
    """Write ``out`` (atomically) from the catalogue; return row counts per table."""
    with atomic_path(out) as tmp:
        try:
            # In a helper thread: Ctrl-C stops it at once, even during FTS5's 'optimize'
            # (one SQLite instruction: see interrupts.run)
            return interrupts.run(_build, catalogue, tmp, ctx)
        except sqlite3.OperationalError as exc:
            storage = wrap_sqlite_error(exc, out)
            if storage is None:
                raise
            raise storage from exc


def _build(catalogue: Path, db: Path, ctx: ExportContext) -> dict[str, int]:
    conn = interrupts.sqlite_connect(db, isolation_level=None)  # Ctrl-C stops it
    try:
        conn.create_function("public_source", 1, public_source, deterministic=True)
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("PRAGMA journal_mode = OFF")  # built in a temporary file, renamed at the end
        conn.execute("PRAGMA synchronous = OFF")
        conn.executescript(DDL)
        conn.execute("ATTACH DATABASE ? AS cat", (str(catalogue),))
        conn.execute("BEGIN")
        counts = _fill(conn, ctx)
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE cat")
        conn.execute("INSERT INTO track_fts(track_fts) VALUES ('optimize')")
        conn.execute("ANALYZE")
        conn.execute(f"PRAGMA user_version = {PUBLISH_SCHEMA_VERSION}")
    finally:
        conn.close()
    return counts


def _fill(conn: sqlite3.Connection, ctx: ExportContext) -> dict[str, int]:
    ex = conn.execute
    ex("INSERT INTO artist SELECT id, mbid, name, sort_name FROM cat.artist ORDER BY id")
    ex("""INSERT INTO release SELECT id, mbid, title, date, label, barcode, artist_credit
          FROM cat.release ORDER BY id""")
    ex(f"""INSERT INTO track
          SELECT t.id, t.mbid, t.title, t.artist_credit, t.release_id, t.disc, t.position,
                 t.duration_ms, public_source(t.source), t.licence,
                 (SELECT {track_listens_sql("l.count")} FROM cat.listens l
                  WHERE l.track_id = t.id),
                 s.rank, s.band, coalesce(a.tier, s.tier),
                 CASE WHEN t.excluded THEN 'excluded'
                      ELSE coalesce(g.status, CASE WHEN s.track_id IS NULL THEN 'not_selected'
                                                   ELSE 'todo' END) END
          FROM cat.track t
          LEFT JOIN cat.selection s ON s.track_id = t.id
          LEFT JOIN cat.ledger g ON g.track_id = t.id
          LEFT JOIN cat.audio_file a ON a.track_id = t.id
          ORDER BY t.id""")
    ex("""INSERT INTO track_artist SELECT track_id, position, artist_id FROM cat.track_artist
          ORDER BY track_id, position""")
    ex("INSERT INTO track_isrc SELECT track_id, isrc FROM cat.track_isrc ORDER BY track_id, isrc")
    fill_released(conn)
    ex(SEARCH_ORDER_SQL)
    ex("""INSERT INTO track_fts(rowid, title, artists, release)
          SELECT o.pos, t.title,
                 coalesce(t.artist_credit,
                          (SELECT group_concat(name, ' ') FROM (
                             SELECT a.name FROM track_artist ta JOIN artist a ON a.id = ta.artist_id
                             WHERE ta.track_id = t.id ORDER BY ta.position)), ''),
                 coalesce(r.title, '')
          FROM search_order o JOIN track t ON t.id = o.track_id
          LEFT JOIN release r ON r.id = t.release_id WHERE o.pos <= ? ORDER BY o.pos""",
       (search_limit(ctx.search_tracks),))
    return fill_summary(conn, ctx)


# A catalogue track taken down, as the published track table says (status 'excluded',
# set from track.excluded): the statements below read it there, so they are the same
# whichever engine holds the catalogue's tracks.
PUBLISHED_TRACKS = "(SELECT id, status = 'excluded' AS excluded FROM main.track)"


def fill_released(conn: sqlite3.Connection) -> None:
    """Waves, released torrents, their files, album art and exclusions, from the
    catalogue ATTACHed as ``cat``; the published ``track`` table must be filled first
    (an excluded track's files are left out, the torrents that carried them withdrawn)."""
    ex = conn.execute
    ex("""INSERT INTO wave SELECT id, released_at, torrents, bytes FROM cat.wave ORDER BY id""")
    ex(f"""INSERT INTO torrent
           SELECT t.id, t.kind, t.name, t.band, t.wave, t.infohash_v1, t.infohash_v2,
                  CASE WHEN {withdrawn_sql("cat.", PUBLISHED_TRACKS)} THEN '' ELSE t.magnet END,
                  t.size, t.files, t.obsolete,
                  coalesce((SELECT w.released_at FROM cat.wave w WHERE w.id = t.wave), t.created_at),
                  t.role, t.collection, t.piece_length, t.superseded_by
           FROM cat.torrent t WHERE {_RELEASED} ORDER BY t.id""")
    ex(f"""INSERT INTO file
           SELECT a.track_id, tf.torrent_id, tf.path, tf.size, tf.sha256, tf.pieces_root, a.tier,
                  a.container, a.codec, a.bitrate, a.original_sha256, a.original_size,
                  (SELECT p.path FROM cat.torrent_file p WHERE p.torrent_id = tf.torrent_id
                     AND p.audio_file_id = tf.audio_file_id AND p.role = 'patch')
           FROM cat.torrent_file tf
           JOIN cat.torrent t ON t.id = tf.torrent_id
           JOIN cat.audio_file a ON a.id = tf.audio_file_id
           WHERE tf.role = 'audio' AND t.kind = 'data' AND {_RELEASED}
             AND NOT (SELECT k.status = 'excluded' FROM main.track k WHERE k.id = a.track_id)
           ORDER BY tf.torrent_id, tf.path""")
    ex(f"""INSERT INTO aux_file
           SELECT tf.torrent_id, tf.path, tf.size, tf.sha256, tf.pieces_root
           FROM cat.torrent_file tf JOIN cat.torrent t ON t.id = tf.torrent_id
           WHERE tf.role != 'audio' AND {_RELEASED} AND NOT coalesce(
             (SELECT k.status = 'excluded' FROM cat.audio_file a
               JOIN main.track k ON k.id = a.track_id WHERE a.id = tf.audio_file_id), 0)
           ORDER BY tf.torrent_id, tf.path""")
    ex(f"""INSERT INTO art
           SELECT ra.release_id, t.id, ra.member, ra.sha256, ra.size, ra.mime
           FROM cat.release_art ra
           JOIN cat.torrent t ON t.kind = 'art' AND t.obsolete = 0 AND {_RELEASED}
           ORDER BY ra.release_id""")
    ex("""INSERT INTO exclusion
          SELECT kind, CASE WHEN kind = 'path' THEN NULL ELSE value END, reason, added_at
          FROM cat.exclusion ORDER BY id""")


def fill_summary(conn: sqlite3.Connection, ctx: ExportContext) -> dict[str, int]:
    """``stats`` and ``info`` from the filled tables; return row counts per table."""
    ex = conn.execute
    stats = _stats(conn)
    stats["tracks_searchable"] = min(stats["tracks"], search_limit(ctx.search_tracks))
    ex("INSERT INTO stats(key, value) VALUES " + ",".join("(?, ?)" for _ in stats),
       [v for kv in sorted(stats.items()) for v in kv])
    info = {
        "schema_version": str(PUBLISH_SCHEMA_VERSION),
        "catalogue_schema_version": str(SCHEMA_VERSION),
        "phonotheque_version": __version__,
        "sqlite_version": sqlite3.sqlite_version,
        "built_at": ctx.built_at,
        "name": ctx.name,
        "prefix": ctx.prefix,
        "layout": ctx.layout,
    }
    ex("INSERT INTO info(key, value) VALUES " + ",".join("(?, ?)" for _ in info),
       [v for kv in sorted(info.items()) for v in kv])
    return {
        t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
        for t in PARQUET_TABLES
    }


def _stats(conn: sqlite3.Connection) -> dict[str, Any]:
    def one(sql: str) -> Any:
        return conn.execute(sql).fetchone()[0]

    # total(): a float sum, which cannot overflow as sum() can past 2^63
    listens_total = int(one("SELECT total(listens) FROM track"))
    archived = "(SELECT DISTINCT f.track_id FROM file f JOIN torrent o ON o.id = f.torrent_id " \
               "WHERE o.obsolete = 0)"
    listens_archived = int(one(f"SELECT total(listens) FROM track WHERE id IN {archived}"))
    s: dict[str, Any] = {
        "tracks": one("SELECT count(*) FROM track"),
        "artists": one("SELECT count(*) FROM artist"),
        "releases": one("SELECT count(*) FROM release"),
        "isrcs": one("SELECT count(*) FROM track_isrc"),
        "unique_isrcs": one("SELECT count(DISTINCT isrc) FROM track_isrc"),
        # not count(DISTINCT track_id): that builds a temporary B-tree of every id, where
        # this reads them in primary-key order (1.1 -> 0.1 s per million rows)
        "tracks_with_isrc": one("SELECT count(*) FROM (SELECT DISTINCT track_id FROM track_isrc)"),
        "tracks_selected": one("SELECT count(*) FROM track WHERE rank IS NOT NULL"),
        "tracks_excluded": one("SELECT count(*) FROM track WHERE status = 'excluded'"),
        "tracks_archived": one(f"SELECT count(*) FROM {archived}"),
        "listens": listens_total,
        "listens_archived": listens_archived,
        "coverage_share": (listens_archived / listens_total) if listens_total else 0.0,
        "archived_bytes": one(
            "SELECT coalesce(sum(f.size), 0) FROM file f JOIN torrent o ON o.id = f.torrent_id "
            "WHERE o.obsolete = 0"),
        "files_original": one(
            "SELECT count(*) FROM file f JOIN torrent o ON o.id = f.torrent_id "
            "WHERE o.obsolete = 0 AND f.tier = 'original'"),
        "files_reencode": one(
            "SELECT count(*) FROM file f JOIN torrent o ON o.id = f.torrent_id "
            "WHERE o.obsolete = 0 AND f.tier = 'reencode'"),
        "torrents": one("SELECT count(*) FROM torrent WHERE obsolete = 0"),
        "torrents_obsolete": one("SELECT count(*) FROM torrent WHERE obsolete = 1"),
        "data_torrents": one("SELECT count(*) FROM torrent WHERE obsolete = 0 AND kind = 'data'"),
        "waves": one("SELECT count(*) FROM wave"),
        "art_images": one("SELECT count(DISTINCT sha256) FROM art"),
    }
    return s


# -- Parquet --------------------------------------------------------------------


def _arrow_schema(conn: sqlite3.Connection, table: str) -> pa.Schema:
    fields = []
    for _cid, name, decl, notnull, _default, _pk in conn.execute(f"PRAGMA table_info({table})"):
        typ = _ARROW_TYPES.get((decl or "").upper(), pa.string())
        fields.append(pa.field(name, typ, nullable=not notnull))
    return pa.schema(fields)


def _batches(conn: sqlite3.Connection, table: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    cols = ", ".join(f'"{f.name}"' for f in schema)
    order = ", ".join(str(i + 1) for i in range(min(2, len(schema))))
    untyped = {name for _c, name, decl, *_ in conn.execute(f"PRAGMA table_info({table})")
               if not decl}
    cur = conn.execute(f"SELECT {cols} FROM {table} ORDER BY {order}")
    while rows := cur.fetchmany(BATCH_ROWS):
        columns = list(zip(*rows, strict=True))
        arrays = []
        for f, values in zip(schema, columns, strict=True):
            if f.name in untyped:  # e.g. stats.value: any SQLite value, kept as text
                values = tuple(None if v is None else str(v) for v in values)
            arrays.append(pa.array(values, type=f.type))
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def export_parquet(
    db: Path, folder: Path, progress: Progress | None = None,
    tables: Sequence[str] = PARQUET_TABLES,
) -> dict[str, Path]:
    """One zstd Parquet file per table of the published database (``tables`` of them),
    each written atomically; files of tables no longer published are removed."""
    out: dict[str, Path] = {}
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise wrap_os_error(exc, folder, writing=True) from exc
    conn = interrupts.sqlite_connect(file_uri(db, mode="ro"), uri=True)  # Ctrl-C stops it
    try:
        for table in tables:
            schema = _arrow_schema(conn, table)
            target = folder / f"{table}.parquet"
            with atomic_path(target) as tmp:
                writer = pq.ParquetWriter(
                    tmp, schema, compression="zstd", compression_level=9,
                    write_statistics=True, use_dictionary=True,
                )
                try:
                    for batch in _batches(conn, table, schema):
                        writer.write_batch(batch)
                        if progress is not None:
                            progress(batch.num_rows)
                finally:
                    writer.close()
            out[table] = target
    finally:
        conn.close()
    for stale in folder.glob("*.parquet"):
        if stale.stem not in PARQUET_TABLES:
            os.unlink(stale)
    return out


def read_parquet_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of one exported Parquet file (for tests and small tables)."""
    return pq.read_table(path).to_pylist()
