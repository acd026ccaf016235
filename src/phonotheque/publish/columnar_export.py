"""Export a columnar workspace (``catalogue.duckdb``) to ``metadata.sqlite`` and Parquet.

The published files are the same as :mod:`phonotheque.publish.export` writes for a
SQLite workspace (same schema, same rows), built the way bulk data wants it:

- DuckDB computes the published ``track`` rows once (listens summed, selection,
  ledger and audio tier joined, provenance paths reduced to file names) into a
  scratch database (in memory when a catalogue's tracks fit DuckDB's memory limit at
  :data:`SCRATCH_BYTES_PER_TRACK`, else a DuckDB file in the workspace's
  ``tmp/duckdb``), one range of track ids at a time
  (:func:`phonotheque.catalogue.bulk.id_ranges`), so neither memory nor spill grows
  with one statement over every track; the other bulk tables are copied there in key
  order the same way.
- **Parquet** of the bulk tables is written by DuckDB itself (``COPY ... TO``) from
  those copies, in their key order (no sort), with fixed writer settings
  (:data:`PARQUET_OPTIONS`): the bytes do not depend on the number of threads. It
  runs in a second thread while the SQLite file is filled (the two use different cores).
- **metadata.sqlite** is filled in rowid (primary key) order by DuckDB's SQLite
  extension (no row passes through Python): appends at the end of each B-tree, no
  page splits. Its
  secondary indexes are dropped before and created after the load (one sort each);
  ``search_order`` and ``track_fts`` come from DuckDB already in popularity order
  (ranked by every core; track_fts's rows computed first, then indexed by FTS5 in its
  own file in a second thread while the bulk load runs), then the torrent tables from the
  operational catalogue with :func:`export.fill_released`, the same statements as the
  SQLite engine.
- The small operational tables (waves, torrents, files, art, exclusions, stats,
  info) go to Parquet as the SQLite engine writes them, from the finished database.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from phonotheque import interrupts
from phonotheque.atomic import atomic_path
from phonotheque.catalogue import bulk, columnar
from phonotheque.errors import wrap_os_error, wrap_sqlite_error
from phonotheque.pack.aac import public_source
from phonotheque.publish.dbschema import DDL, PUBLISH_SCHEMA_VERSION
from phonotheque.publish.export import (
    PARQUET_TABLES,
    ExportContext,
    Progress,
    export_parquet,
    fill_released,
    fill_summary,
    search_limit,
)
from phonotheque.sources.bounds import MAX_TRACK_LISTENS

#: Tables whose Parquet DuckDB writes from the columnar catalogue (the others come
#: from the finished metadata.sqlite, as in a SQLite workspace).
BULK_PARQUET = ("artist", "release", "track", "track_artist", "track_isrc")

#: DuckDB's Parquet writer settings: fixed, so the same rows give the same bytes.
#: zstd level 3 (DuckDB's default; level 9 costs 2-3x the time for ~5 % less).
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 3, ROW_GROUP_SIZE 122880"

_SCRATCH = "publish.duckdb"
#: Memory the scratch tables take per track when they are kept in memory (uncompressed):
#: the published track rows (~160 B at 10 M tracks, measured: DuckDB's memory use rose
#: from 1.0 to 2.5 GiB), the copies of the links and the search order beside them, and
#: the text index's rows. A catalogue whose tracks fit the memory limit at this rate
#: keeps them in memory, a larger one in the scratch file (compressed: at 100 M, ~50
#: B/track). At 10 M tracks under the 3 GiB default, in memory: publish 246 -> 164 s,
#: 410 -> 283 CPU s, though DuckDB spills some of those blocks (peak tmp/ 2.1 -> 4.0 GB)
#: and peak RSS rose 2.6 -> 3.7 GiB (quiet back-to-back runs, bench/RESULTS.md).
SCRATCH_BYTES_PER_TRACK = 300
_OUT = "published"  # the alias metadata.sqlite is ATTACHed under in DuckDB
_FTS_FILE = "publish-fts.sqlite"
_FTS_ROWS = "fts_rows"  # track_fts's rows in the FTS file before FTS5 indexes them
# FTS5's own tables behind track_fts (plain tables: copied as they are, they are the index;
# contentless, it has no content table). Not its config table: the build's settings below
# stay in the scratch file, the published track_fts keeps the defaults the DDL gave it.
_FTS_SHADOWS = ("data", "idx", "docsize")
# FTS5 settings for the build only (same index after 'optimize', same answers; other
# segment numbers): 32 MiB of pending terms per flush instead of 1 MiB, and no automatic
# merges while loading (the one 'optimize' at the end merges everything once). Measured on
# 1 M documents: insert + optimize 16.5 -> 12 CPU s.
_FTS_BUILD = (("hashsize", 32 << 20), ("automerge", 0))

# The published columns of each bulk table read from the catalogue, the column its id
# ranges cut (:func:`bulk.id_ranges`) and the key that orders it (the primary key: rows
# go into SQLite in B-tree order). Each is copied into the scratch database in key order, one
# range at a time (see _prepare); pub.track is built there the same way (_TRACK).
_COPIES: dict[str, tuple[str, str, str]] = {
    "artist": ("SELECT id, mbid, name, sort_name FROM artist", "id", "id"),
    "release": ("SELECT id, mbid, title, date, label, barcode, artist_credit FROM release",
                "id", "id"),
    "track_artist": ("SELECT track_id, CAST(position AS BIGINT) AS position, artist_id "
                     "FROM track_artist", "track_id", "track_id, position"),
    "track_isrc": ("SELECT track_id, isrc FROM track_isrc", "track_id", "track_id, isrc"),
}

# The published track rows of the ids $lo..$hi: listens capped as track_listens_sql caps
# them (an exact sum here, then the same cap), status as the SQLite engine derives it.
# Every relation is cut to the range: pub.track is filled one range of ids at a time
# (see _prepare).
_TRACK = f"""
    SELECT t.id, t.mbid, t.title, t.artist_credit, t.release_id, t.disc, t.position,
           t.duration_ms, m.public AS source, t.licence,
           CAST(least(coalesce(l.listens, 0), {MAX_TRACK_LISTENS}) AS BIGINT) AS listens,
           s.rank, CAST(s.band AS BIGINT) AS band, coalesce(a.tier, s.tier) AS tier,
           CASE WHEN t.excluded <> 0 THEN 'excluded'
                ELSE coalesce(g.status, CASE WHEN s.track_id IS NULL THEN 'not_selected'
                                             ELSE 'todo' END) END AS status
    FROM track t
    LEFT JOIN (SELECT track_id, sum(CAST(count AS HUGEINT)) AS listens FROM listens
               WHERE track_id BETWEEN $lo AND $hi GROUP BY track_id) l ON l.track_id = t.id
    LEFT JOIN (SELECT * FROM selection WHERE track_id BETWEEN $lo AND $hi) s
           ON s.track_id = t.id
    LEFT JOIN (SELECT * FROM ledger WHERE track_id BETWEEN $lo AND $hi) g ON g.track_id = t.id
    LEFT JOIN (SELECT * FROM {columnar.CATALOGUE_ALIAS}.audio_file
               WHERE track_id BETWEEN $lo AND $hi) a ON a.track_id = t.id
    LEFT JOIN pub.source_map m ON m.source IS NOT DISTINCT FROM t.source
    WHERE t.id BETWEEN $lo AND $hi
    ORDER BY t.id"""
#: Memory per track id a range of pub.track may take (:func:`bulk.id_ranges`): the
#: range's rows with their strings, the joined tables' hash tables and the sort.
_BYTES_PER_ID = 600

# Every track by popularity (ties: lowest id).
_SEARCH = """SELECT row_number() OVER (ORDER BY listens DESC, id) AS pos, id
             FROM pub.track ORDER BY pos"""
# The text track_fts indexes for the indexed tracks (the search limit: the 10 M most
# listened by default) among the ids $lo..$hi: the same values the SQLite engine's
# statement concatenates (artist names by position, '' for none). The list sorted after
# an unordered aggregate: DuckDB's ordered aggregates (string_agg ... ORDER BY) sort per
# group, several times slower. One range of track ids at a time, every relation cut to it
# (the scratch database's copies are in id order): a list() state does not spill in DuckDB
# 1.4, and over the 10 M indexed tracks of 100 M at once the lists ran the publish out of
# its 3 GiB (measured, 2026-12-02; over every track's ISRCs too, earlier).
_FTS = """WITH o AS (
        SELECT s.pos, t.id, t.title, t.artist_credit, t.release_id
        FROM pub.search s JOIN pub.track t ON t.id = s.id
        WHERE s.pos <= {limit} AND s.id BETWEEN $lo AND $hi AND t.id BETWEEN $lo AND $hi)
    SELECT o.pos, o.title, coalesce(o.artist_credit, ar.names, '') AS artists,
           coalesce(r.title, '') AS release
    FROM o
    LEFT JOIN pub.release r ON r.id = o.release_id
    LEFT JOIN (SELECT ta.track_id, array_to_string(list_transform(
                   list_sort(list(struct_pack(p := ta.position, n := a.name))), x -> x.n),
                   ' ') AS names
               FROM pub.track_artist ta JOIN pub.artist a ON a.id = ta.artist_id
               WHERE ta.track_id BETWEEN $lo AND $hi
                 AND ta.track_id IN (SELECT id FROM o WHERE artist_credit IS NULL)
               GROUP BY ta.track_id) ar ON ar.track_id = o.id"""
#: Memory per track id a range of the text index's rows may take: the lists and joins of
#: the range's indexed tracks (every track of a catalogue up to the search limit).
_FTS_BYTES_PER_ID = 2000


def export_columnar(root: Path, out: Path, parquet: Path | None, ctx: ExportContext,
                    progress: Progress | None = None, *, threads: int | None = None,
                    memory_bytes: int | None = None) -> dict[str, int]:
    """Write ``out`` (metadata.sqlite, atomically) and, unless ``parquet`` is None, one
    Parquet file per published table into that folder, from the columnar workspace at
    ``root``; return row counts per table."""
    scratch = root / "tmp" / "duckdb" / _SCRATCH
    fts = scratch.with_name(_FTS_FILE)
    con = bulk.open_bulk(root, threads=threads, memory_bytes=memory_bytes)
    try:
        counts = _export(con, root, scratch, fts, out, parquet, ctx, threads, memory_bytes,
                         _Tell(progress))
    except columnar.Error as exc:
        raise columnar.failed(out, "publishing", exc,
                              catalogue=bulk.path(root)) from exc
    finally:
        con.close()
        columnar.remove_database(scratch)
        columnar.remove_database(fts)
    if parquet is not None:
        _Tell(progress)("parquet")  # the small tables, from the finished database
        export_parquet(out, parquet, progress,
                       tables=[t for t in PARQUET_TABLES if t not in BULK_PARQUET])
    return counts


def _export(con: columnar.Connection, root: Path, scratch: Path, fts: Path, out: Path,
            parquet: Path | None, ctx: ExportContext, threads: int | None,
            memory_bytes: int | None, tell: _Tell) -> dict[str, int]:
    """Everything done with the DuckDB connection ``con``: prepare, then the jobs."""
    columnar.remove_database(fts)
    row = con.execute("SELECT count(*) FROM track").fetchone()
    tracks = int(row[0]) if row else 0
    columnar.attach_scratch(con, scratch, "pub", in_memory=tracks * SCRATCH_BYTES_PER_TRACK
                            <= bulk.stage_memory(memory_bytes))
    _prepare(con, memory_bytes, tell)
    # Then the jobs, two at a time: the text index's rows (DuckDB) beside the Parquet
    # (DuckDB); then FTS5's build of the text index (one core, SQLite, in its own file; it
    # joins metadata.sqlite at the end) beside the bulk load of metadata.sqlite (DuckDB's
    # SQLite extension, one core) and its indexes. A DuckDB error in the rows (at 100 M:
    # out of memory) stops the publish before the load starts. (When the rows ran beside
    # the load and the build, three jobs on two cores, they took 55 s of wall time for
    # 29 s of CPU at 10 M; in this order the whole publish took as long, 214 vs 223 s at
    # load 20-40: the load and indexes are then the longer path. Measured 2026-12-02.)
    attached = [True]
    # Ctrl-C (or an error) stops the jobs' statements too: the pool does not wait for an
    # FTS5 build of minutes (interrupts.helpers).
    with interrupts.helpers(max_workers=2) as pool:
        copied = None
        if parquet is not None:
            _mkdir(parquet)
            copied = pool.submit(_bulk_parquet, columnar.cursor(con), parquet, tell)
        try:
            _fts_rows(con, fts, search_limit(ctx.search_tracks), memory_bytes, tell)
        except BaseException:
            if copied is not None:
                copied.cancel()
            raise
        indexed = pool.submit(_fts, fts, tell)

        def release() -> None:
            """Drop the scratch database once nothing reads it any more, before the
            secondary indexes (whose sorts need memory and temporary disk space of their
            own): in a file it is ~50 B/track, 5 GB at 100 M. Then hand DuckDB's memory
            back to the system."""
            if copied is not None:
                copied.result()
            con.execute("DETACH pub")
            attached[0] = False
            columnar.remove_database(scratch)
            # DuckDB's part is done: its freed memory would otherwise stay in the RSS
            # beside SQLite's sorts (3 GiB at 10 M: the publish's peak; see the function)
            columnar.hand_back_memory(con, bulk.stage_memory(memory_bytes))

        counts = _sqlite(con, root / "catalogue.sqlite", out, ctx, indexed, threads, release,
                         tell)
        if copied is not None:
            copied.result()
    if attached[0]:
        con.execute("DETACH pub")
    return counts


def catalogue_times(root: Path) -> list[str | None]:
    """The newest times the columnar catalogue records (ledger, ingest), for built_at."""
    con = bulk.open_bulk(root, readonly=True)
    try:
        row = con.execute("SELECT (SELECT max(updated_at) FROM ledger), "
                          "(SELECT max(updated_at) FROM ingest_checkpoint)").fetchone()
    except columnar.Error as exc:  # e.g. a corrupt or truncated catalogue.duckdb
        raise columnar.failed(bulk.path(root), "reading the catalogue", exc) from exc
    finally:
        con.close()
    return list(row) if row else []


def _prepare(con: columnar.Connection, memory_bytes: int | None, tell: _Tell) -> None:
    # public_source() is Python: apply it once per distinct source (a handful in a
    # dump: 'musicbrainz', file names of a tags ingest), then join.
    sources = [r[0] for r in con.execute("SELECT DISTINCT source FROM track").fetchall()]
    con.execute("CREATE TABLE pub.source_map(source VARCHAR, public VARCHAR)")
    if sources:
        con.executemany("INSERT INTO pub.source_map VALUES (?, ?)",
                        [(s, public_source(s)) for s in sources])
    # One range of ids at a time, appended in key order. In one statement, the joins'
    # hash tables and the sort of every track's row spilled 34 GB of temp files in 5
    # minutes at 100 M tracks under the 3 GiB default (measured; stopped there). The
    # copies of the other bulk tables are made the same way for the same reason: the
    # Parquet and the SQLite load then read every table in key order with no sort (an
    # ORDER BY over each whole table, two at a time, took DuckDB's spill past 38 GB at
    # 100 M; measured, stopped for disk).
    con.execute(f"CREATE TABLE pub.track AS {_TRACK}", {"lo": 0, "hi": -1})
    ranges = _ranges(con, "track", "id", memory_bytes)
    for i, (first, last) in enumerate(ranges, 1):
        tell(f"published tracks {i}/{len(ranges)}")
        con.execute(f"INSERT INTO pub.track {_TRACK}", {"lo": first, "hi": last})
    for table, (select, column, key) in _COPIES.items():
        ranged = f"{select} WHERE {column} BETWEEN $lo AND $hi ORDER BY {key}"
        con.execute(f"CREATE TABLE pub.{table} AS {ranged}", {"lo": 0, "hi": -1})
        ranges = _ranges(con, table, column, memory_bytes)
        for i, (first, last) in enumerate(ranges, 1):
            tell(f"published {table} {i}/{len(ranges)}")
            con.execute(f"INSERT INTO pub.{table} {ranged}", {"lo": first, "hi": last})
    tell("search order")
    con.execute(f"CREATE TABLE pub.search AS {_SEARCH}")


def _ranges(con: columnar.Connection, relation: str, column: str, memory_bytes: int | None,
            bytes_per_id: int = _BYTES_PER_ID) -> list[tuple[int, int]]:
    """The id ranges (:func:`bulk.id_ranges`) covering ``column`` of ``relation``."""
    lo, hi = con.execute(f"SELECT min({column}), max({column}) FROM {relation}").fetchone() \
        or (None, None)
    return list(bulk.id_ranges(lo, hi, bytes_per_id, memory_bytes=memory_bytes))


def _published(table: str) -> str:
    """The rows of ``table`` as published, in key order with no sort: the scratch database's
    copy was inserted in key order, and DuckDB keeps a single table's insertion order
    through a plain scan (its documented order preservation; ``preserve_insertion_order``
    is left at its default) into COPY ... TO and into the SQLite extension's INSERT
    (a sink that runs on one thread)."""
    return f"SELECT * FROM pub.{table}"


def _bulk_parquet(con: columnar.Connection, folder: Path, tell: _Tell) -> None:
    try:
        for table in BULK_PARQUET:
            with atomic_path(folder / f"{table}.parquet") as tmp:
                tell(f"parquet/{table}.parquet")
                done = con.execute(f"COPY ({_published(table)}) TO '{_sql_text(str(tmp))}' "
                                   f"({PARQUET_OPTIONS})").fetchone()
                tell(f"parquet/{table}.parquet", _rows(done))
    finally:
        interrupts.close(con)  # in the pool's thread: see interrupts.close


def _sqlite(con: columnar.Connection, catalogue: Path, out: Path, ctx: ExportContext,
            fts: Future[Path], threads: int | None, release: Callable[[], None],
            tell: _Tell) -> dict[str, int]:
    with atomic_path(out) as tmp:
        try:
            indexes = _create(tmp)
            _load_bulk(con, tmp, tell)
            release()
            return _finish(tmp, catalogue, ctx, indexes, fts, threads, tell)
        except sqlite3.OperationalError as exc:
            storage = wrap_sqlite_error(exc, out)
            if storage is None:
                raise
            raise storage from exc


def _create(db: Path) -> list[tuple[str, str]]:
    """The published schema without its secondary indexes (built after the load, by
    one sort each); return those indexes' names and statements."""
    conn = interrupts.sqlite_connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA page_size = 4096")
        conn.executescript(DDL)
        indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                               "AND sql IS NOT NULL ORDER BY rowid").fetchall()
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
    finally:
        conn.close()
    return [(str(n), str(q)) for n, q in indexes]


def _load_bulk(con: columnar.Connection, db: Path, tell: _Tell) -> None:
    """The bulk tables and search_order, by DuckDB's SQLite extension: one INSERT ...
    SELECT each in primary key order (half the CPU of Python's executemany, measured)."""
    columnar.attach(con, db, _OUT)
    try:
        with columnar.transaction(con):
            for table in BULK_PARQUET:
                tell(f"metadata.sqlite: {table}")
                con.execute(f"INSERT INTO {_OUT}.{table} {_published(table)}")
            tell("metadata.sqlite: search_order")
            con.execute(f"INSERT INTO {_OUT}.search_order SELECT pos, id FROM pub.search")
    finally:
        con.execute(f"DETACH {_OUT}")


def _fts(db: Path, tell: _Tell) -> Path:
    """track_fts built alone in the file ``db`` (same DDL, so the same shadow tables) from
    the rows :func:`_fts_rows` put there, in popularity order, then optimized.

    The rows reach SQLite without passing through Python: DuckDB's SQLite extension
    writes them into a plain table of ``db`` (``pos`` its rowid), and one INSERT ...
    SELECT in SQLite fills track_fts from it. Converting them to Python tuples for
    ``executemany`` cost a fifth of this job (measured). Not straight into track_fts:
    the extension binds a value of an untyped column (every FTS5 column) as a BLOB,
    which FTS5 would store as such, and it cannot set the rowid.
    """
    conn = interrupts.sqlite_connect(db, isolation_level=None)
    try:
        _scratch_pragmas(conn)
        for key, value in _FTS_BUILD:
            conn.execute("INSERT INTO track_fts(track_fts, rank) VALUES (?, ?)", (key, value))
        tell("text index: FTS5")
        conn.execute("BEGIN")
        conn.execute("INSERT INTO track_fts(rowid, title, artists, release) "
                     f"SELECT pos, title, artists, release FROM {_FTS_ROWS} ORDER BY pos")
        conn.execute("COMMIT")
        conn.execute("INSERT INTO track_fts(track_fts) VALUES ('optimize')")
    finally:
        conn.close()
    return db


def _fts_rows(con: columnar.Connection, db: Path, limit: int,
              memory_bytes: int | None, tell: _Tell) -> None:
    """The new file ``db``: track_fts's DDL and its rows in a plain table (see :func:`_fts`),
    computed one range of track ids at a time into the scratch database (:data:`_FTS`), then
    copied in popularity order (one sort of the indexed tracks' rows, which spills)."""
    conn = interrupts.sqlite_connect(db, isolation_level=None)
    try:
        conn.executescript(DDL)
        conn.execute(f"CREATE TABLE {_FTS_ROWS}(pos INTEGER PRIMARY KEY, title TEXT, "
                     "artists TEXT, release TEXT)")
    finally:
        conn.close()
    ranged = _FTS.format(limit=limit)
    con.execute(f"CREATE TABLE pub.{_FTS_ROWS} AS {ranged}", {"lo": 0, "hi": -1})
    ranges = _ranges(con, "pub.track", "id", memory_bytes, _FTS_BYTES_PER_ID)
    for i, (first, last) in enumerate(ranges, 1):
        tell(f"text index rows {i}/{len(ranges)}")
        con.execute(f"INSERT INTO pub.{_FTS_ROWS} {ranged}", {"lo": first, "hi": last})
    alias = "fts_out"
    columnar.attach(con, db, alias)
    try:
        with columnar.transaction(con):
            con.execute(f"INSERT INTO {alias}.{_FTS_ROWS} SELECT * FROM pub.{_FTS_ROWS} "
                        "ORDER BY pos")
    finally:
        con.execute(f"DETACH {alias}")


def _finish(db: Path, catalogue: Path, ctx: ExportContext, indexes: list[tuple[str, str]],
            fts: Future[Path], threads: int | None, tell: _Tell) -> dict[str, int]:
    """Everything after the bulk load, in SQLite: the operational tables, the secondary
    indexes and stats first (none needs the text index, so they overlap its build in
    the other thread, the longest job), then the full-text index built beside it (its
    shadow tables copied in whole) and ANALYZE.

    The indexes come before the stats: ``count(DISTINCT isrc)`` then reads
    ``track_isrc_isrc`` in order instead of sorting every ISRC once more. ``threads``:
    helper threads of SQLite's sorter for CREATE INDEX (the same index, by more cores
    when they are free).

    In a helper thread the caller waits on (:func:`interrupts.run`): the sort of a
    CREATE INDEX is one SQLite instruction that no interruption cuts (13-17 s at 10 M
    tracks, longer at 100 M), so Ctrl-C stops the caller at once instead, the
    interrupted statement left to end in its thread (the file is a temporary one)."""
    return interrupts.run(_finishing, db, catalogue, ctx, indexes, fts, threads, tell)


def _finishing(db: Path, catalogue: Path, ctx: ExportContext, indexes: list[tuple[str, str]],
               fts: Future[Path], threads: int | None, tell: _Tell) -> dict[str, int]:
    conn = interrupts.sqlite_connect(db, isolation_level=None)
    try:
        _scratch_pragmas(conn)  # built in a temporary file, renamed at the end
        conn.execute("PRAGMA cache_size = -262144")
        conn.execute("ATTACH DATABASE ? AS cat", (str(catalogue),))
        conn.execute("BEGIN")
        fill_released(conn)
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE cat")
        conn.execute(f"PRAGMA threads = {_sort_threads(threads)}")
        for name, sql in indexes:
            tell(f"metadata.sqlite: index {name}")
            conn.execute(sql)
        tell("metadata.sqlite: stats")
        conn.execute("BEGIN")
        counts = fill_summary(conn, ctx)
        conn.execute("COMMIT")
        tell("metadata.sqlite: waiting for the text index")
        built = fts.result()
        tell("metadata.sqlite: text index")
        conn.execute("ATTACH DATABASE ? AS fts", (str(built),))
        conn.execute("BEGIN")
        for shadow in _FTS_SHADOWS:
            conn.execute(f"DELETE FROM main.track_fts_{shadow}")
            conn.execute(f"INSERT INTO main.track_fts_{shadow} SELECT * FROM fts.track_fts_{shadow}")
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE fts")
        columnar.remove_database(built)  # its disk space back before ANALYZE and the database torrent
        tell("metadata.sqlite: ANALYZE")
        conn.execute("ANALYZE")
        conn.execute(f"PRAGMA user_version = {PUBLISH_SCHEMA_VERSION}")
    finally:
        conn.close()
    return counts


class _Tell:
    """Progress of a columnar publish: the step it is on (several jobs run at once: the
    latest says) and, as on a SQLite workspace, the rows written into Parquet so far. At
    100 M tracks the publish runs for half an hour; a user sees which range of which step
    it is on."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    def __call__(self, step: str, rows: int = 0) -> None:
        if self._progress is not None:
            self._progress(rows, step=step)


def _rows(result: tuple[object, ...] | None) -> int:
    """The row count DuckDB returns for a COPY (0 if none)."""
    value = result[0] if result else 0
    return value if isinstance(value, int) else 0


def _sort_threads(threads: int | None) -> int:
    """Helper threads for SQLite's sorter: as many as DuckDB's, at most SQLite's limit (8)."""
    return max(0, min(8, (threads or os.cpu_count() or 1) - 1))


def _scratch_pragmas(conn: sqlite3.Connection) -> None:
    """For a file built from nothing and renamed (or deleted) at the end: no journal, no
    syncs, and freed pages not overwritten with zeros (this SQLite's build defaults to
    ``secure_delete``; FTS5's merges free many)."""
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA secure_delete = OFF")


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise wrap_os_error(exc, folder, writing=True) from exc



def _sql_text(text: str) -> str:
    return text.replace("'", "''")
