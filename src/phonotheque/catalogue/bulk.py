"""The columnar catalogue: the bulk tables of a workspace created with ``--engine duckdb``.

At hundreds of millions of tracks, row upserts into SQLite cost more than everything
else (docs/scale.md: 690 bytes and 74 µs per track at 10 M). A columnar workspace
keeps its **bulk tables** in DuckDB's own file, ``catalogue.duckdb`` beside
``catalogue.sqlite``: DuckDB compresses each column, reads dumps in parallel and
merges whole inputs with one set-based statement. The **operational tables**
(exclusions, rejects, select runs, audio files, torrents, waves, swarm) stay in
``catalogue.sqlite``, which every connection here ATTACHes as ``cat``.

The bulk tables have the SQLite catalogue's names and columns (``schema.py``), so
set-based SQL reads the same in either engine. Their writers are the ``catalogue/bulk*.py``
modules, one owner per table (as ``Store`` and the other owners hold them in a SQLite
workspace; docs/architecture.md lists both); this one owns the schema and the
conversion. Ingest checkpoints live in this file too, so a checkpoint commits in the
same transaction as the rows it covers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from phonotheque import clock
from phonotheque.catalogue import columnar
from phonotheque.errors import InputError, SchemaTooNew, WorkspaceError
from phonotheque.model import Checkpoint
from phonotheque.units import parse_size, shorten

#: DuckDB's file in the workspace (beside catalogue.sqlite).
BULK_FILE = "catalogue.duckdb"

_PROV = "source VARCHAR, locator VARCHAR, licence VARCHAR"

# No PRIMARY KEY or UNIQUE constraints: DuckDB enforces them with in-memory ART
# indexes (gigabytes at 10^8 rows) and row-at-a-time checks; the owners keep keys
# unique by merging whole inputs with anti-joins instead.
V1 = f"""
CREATE TABLE bulk_meta(key VARCHAR, value VARCHAR);
CREATE TABLE artist(id BIGINT NOT NULL, key VARCHAR NOT NULL, mbid VARCHAR,
    name VARCHAR NOT NULL, sort_name VARCHAR, {_PROV});
CREATE TABLE release(id BIGINT NOT NULL, key VARCHAR NOT NULL, mbid VARCHAR,
    title VARCHAR NOT NULL, date VARCHAR, label VARCHAR, barcode VARCHAR,
    artist_credit VARCHAR, art_path VARCHAR, {_PROV});
CREATE TABLE track(id BIGINT NOT NULL, key VARCHAR NOT NULL, mbid VARCHAR,
    title VARCHAR NOT NULL, artist_credit VARCHAR, release_id BIGINT, disc BIGINT,
    position BIGINT, duration_ms BIGINT, excluded INTEGER NOT NULL DEFAULT 0, {_PROV});
CREATE TABLE track_artist(track_id BIGINT NOT NULL, position INTEGER NOT NULL,
    artist_id BIGINT NOT NULL);
CREATE TABLE track_isrc(track_id BIGINT NOT NULL, isrc VARCHAR NOT NULL,
    known_country INTEGER NOT NULL DEFAULT 1, {_PROV});
CREATE TABLE listens(id BIGINT NOT NULL, dataset VARCHAR NOT NULL, key_kind VARCHAR NOT NULL,
    key VARCHAR NOT NULL, count BIGINT NOT NULL, users BIGINT, track_id BIGINT, {_PROV});
CREATE TABLE ingest_checkpoint(source VARCHAR NOT NULL, kind VARCHAR NOT NULL, size BIGINT,
    mtime_ns BIGINT, "offset" BIGINT NOT NULL DEFAULT 0, line BIGINT NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0, updated_at VARCHAR NOT NULL);
CREATE TABLE selection(track_id BIGINT NOT NULL, rank BIGINT NOT NULL, band INTEGER NOT NULL,
    cum_share DOUBLE NOT NULL, tier VARCHAR NOT NULL, est_bytes BIGINT NOT NULL DEFAULT 0,
    priority DOUBLE, cum_bytes BIGINT NOT NULL DEFAULT 0);
CREATE TABLE ledger(track_id BIGINT NOT NULL, status VARCHAR NOT NULL, detail VARCHAR,
    updated_at VARCHAR NOT NULL);
"""

MIGRATIONS: tuple[str, ...] = (V1,)
SCHEMA_VERSION = len(MIGRATIONS)

#: ``listens`` as V1 creates it, with DuckDB told how to compress its strings (same
#: columns and types; only how the rows are stored differs). DuckDB's automatic choice
#: analyses every candidate method for every string segment it writes; on the keys and
#: locators (unique strings: a dictionary never fits) the dictionary analysis alone was
#: ~30 % of writing a listens row (1 M rows: 1.9-2.2 -> 1.3-1.6 CPU s, the same number
#: of blocks: measured). The per-input constants keep the dictionary they always got.
#: :mod:`phonotheque.catalogue.bulk_listens` recreates an empty ``listens`` with it.
LISTENS_DDL = """CREATE TABLE listens(id BIGINT NOT NULL,
    dataset VARCHAR NOT NULL USING COMPRESSION dictionary,
    key_kind VARCHAR NOT NULL USING COMPRESSION dictionary,
    key VARCHAR NOT NULL USING COMPRESSION fsst, count BIGINT NOT NULL, users BIGINT,
    track_id BIGINT, source VARCHAR USING COMPRESSION dictionary,
    locator VARCHAR USING COMPRESSION fsst, licence VARCHAR USING COMPRESSION dictionary)"""

#: The bulk tables, in the order a conversion copies them (ids are kept as they are).
BULK_TABLES: tuple[str, ...] = ("artist", "release", "track", "track_artist", "track_isrc",
                                "listens")
#: What a conversion copies: the bulk tables, then the plan of the last select and the
#: ledger (its audio outcomes would be lost otherwise), which a columnar workspace keeps
#: in this file too (catalogue/bulk_selection.py), and the inputs' checkpoints (without
#: them a converted workspace read every input again from its first line, and publish's
#: built_at, their newest time, moved).
CONVERTED_TABLES: tuple[str, ...] = (*BULK_TABLES, "selection", "ledger", "ingest_checkpoint")


#: DuckDB's memory limit for a columnar stage unless told (or the machine has less than
#: twice this). DuckDB's own default, half the machine, let one 1 M-track ingest reach
#: 2.3 GB RSS and a 10 M-track select 5.3 GiB; the issue's goal is 4 GiB peak RSS for
#: the whole process, and past this limit DuckDB spills into ``<ws>/tmp/duckdb``. Not
#: lower: ordered aggregates (string_agg/list ... ORDER BY) do not spill, and a 1 M-track
#: ingest ran out of memory at 512 MiB (measured).
STAGE_MEMORY = 3 << 30
#: Environment variable that sets the limit for every columnar stage (``8GiB``, ``1.5GB``).
MEMORY_ENV = "PHONO_MEMORY"


def stage_memory(option: int | None = None) -> int:
    """The memory limit a columnar stage gives DuckDB: ``option``, else ``$PHONO_MEMORY``,
    else :data:`STAGE_MEMORY` capped at half the machine."""
    if option is not None:
        return columnar.memory_limit(option)
    text = os.environ.get(MEMORY_ENV, "").strip()
    if text:
        try:
            return columnar.memory_limit(parse_size(text, maximum=columnar.MAX_MEMORY))
        except InputError as exc:
            raise InputError(f"${MEMORY_ENV}", f"{shorten(text)!r}: {exc.problem}") from None
    return min(columnar.memory_limit(), STAGE_MEMORY)


#: Track ids per range where a statement over every track is cut into ranges of ids
#: (None: from the memory limit, :func:`id_ranges`). Tests set it small, so a tiny
#: catalogue crosses ranges as a big one does.
RANGE_IDS: int | None = None


def id_ranges(lo: int | None, hi: int | None, bytes_per_id: int, *,
              memory_bytes: int | None = None) -> Iterator[tuple[int, int]]:
    """Consecutive ``(first, last)`` id ranges covering ``lo..hi`` (none if either is
    None), each of about ``stage_memory(memory_bytes) / bytes_per_id`` ids (at least 1 Mi).

    A statement that joins and sorts every track at once makes DuckDB spill hash tables
    and sorts of the whole table (at 100 M tracks, tens of GB of temp files); run once per
    range, with every relation cut to the range (tables stored in id order: DuckDB skips
    the other row groups), each run fits in memory and the results append in id order.
    """
    if lo is None or hi is None:
        return
    step = (RANGE_IDS if RANGE_IDS is not None
            else max(1 << 20, stage_memory(memory_bytes) // bytes_per_id))
    for first in range(int(lo), int(hi) + 1, step):
        yield first, min(first + step - 1, int(hi))


def temp_directory(root: Path) -> Path:
    """Where DuckDB spills (and select keeps its scratch database) for the workspace at
    ``root``: inside it, on the disk the user gave the workspace."""
    return Path(root) / "tmp" / "duckdb"


def path(root: Path) -> Path:
    """Where a workspace at ``root`` keeps its columnar catalogue."""
    return Path(root) / BULK_FILE


def open_bulk(root: Path, *, memory_bytes: int | None = None, threads: int | None = None,
              writable_catalogue: bool = False, create: bool = False,
              file: Path | None = None, readonly: bool = False) -> columnar.Connection:
    """Open the columnar catalogue of the workspace at ``root`` (schema brought up to date).

    ``catalogue.sqlite`` is attached as ``cat`` (read-only unless
    ``writable_catalogue``); spills go to ``<root>/tmp/duckdb``. ``file`` overrides
    the catalogue's file (a conversion builds it under a temporary name).

    DuckDB's memory is bounded by :func:`stage_memory` of ``memory_bytes``.

    ``readonly`` is for readers (stats, compare, ledger reads): the file is opened
    read-only, so readers run side by side and never take the write lock; a reader
    still gets :class:`BusyError` while a writer (an ingest, a publish) holds the file.
    A read-only open does not migrate: it refuses a schema other than this phono's.
    """
    root = Path(root)
    file = file or path(root)
    if not create and not file.is_file():
        raise WorkspaceError(root, "not a columnar workspace (no catalogue.duckdb; "
                                   "create it with `phono init --engine duckdb`)")
    con = columnar.connect(root / "catalogue.sqlite", temp_directory=temp_directory(root),
                           memory_bytes=stage_memory(memory_bytes), threads=threads,
                           writable=writable_catalogue and not readonly, database=file,
                           read_only=readonly)
    try:
        if readonly:
            _check_version(con, file)
        else:
            migrate(con, file)
    except BaseException as exc:
        con.close()
        if isinstance(exc, columnar.Error):  # e.g. a corrupt or truncated file
            raise columnar.failed(file, "reading its schema version", exc) from exc
        raise
    return con


def schema_version(con: columnar.Connection, database: str | None = None) -> int:
    """The schema version of the columnar catalogue open as ``con``'s current database, or
    attached to it as ``database`` (0: none recorded)."""
    where = "current_database()" if database is None else columnar.quote(database)
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = "
                      f"{where} AND table_name = 'bulk_meta'").fetchone()
    if not row or not row[0]:
        return 0
    table = "bulk_meta" if database is None else f"{database}.bulk_meta"
    got = con.execute(f"SELECT value FROM {table} WHERE key = 'schema_version'").fetchone()
    return int(got[0]) if got else 0


def refuse_newer(con: columnar.Connection, file: Path, database: str | None = None) -> int:
    """The catalogue's schema version (:func:`schema_version`); :class:`SchemaTooNew` if
    it is newer than this phono's: its tables may mean other things."""
    current = schema_version(con, database)
    if current > SCHEMA_VERSION:
        raise SchemaTooNew(file, f"columnar catalogue schema version {current} is newer than "
                                 f"this phono understands (up to {SCHEMA_VERSION}); "
                                 "upgrade phonotheque")
    return current


def _check_version(con: columnar.Connection, file: Path) -> None:
    current = refuse_newer(con, file)
    if current < SCHEMA_VERSION:
        raise WorkspaceError(file, f"columnar catalogue schema version {current} is older "
                                   f"than this phono's ({SCHEMA_VERSION}) and a reader does "
                                   "not upgrade it: run any writing command (phono ingest) "
                                   "first")


def migrate(con: columnar.Connection, file: Path) -> int:
    """Bring the columnar catalogue up to :data:`SCHEMA_VERSION`; return the version it was at.

    Each migration commits together with its version bump.
    """
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        _check_version(con, file)
    for version in range(current, SCHEMA_VERSION):
        with columnar.transaction(con):
            con.execute(MIGRATIONS[version])
            con.execute("DELETE FROM bulk_meta WHERE key = 'schema_version'")
            con.execute("INSERT INTO bulk_meta VALUES ('schema_version', ?)", [str(version + 1)])
    return current


def convert_from_sqlite(con: columnar.Connection) -> dict[str, int]:
    """Copy the SQLite catalogue's bulk tables, selection, ledger and ingest checkpoints
    (attached as ``cat``) into the columnar one.

    Ids are kept, so operational tables that point at tracks stay right. Used when an
    existing workspace becomes columnar; refuses a columnar catalogue that holds rows.
    Returns the rows copied per table.
    """
    held = {t: _count(con, t) for t in CONVERTED_TABLES}
    if any(held.values()):
        raise WorkspaceError(BULK_FILE, "the columnar catalogue already holds rows: "
                                        "nothing converted")
    copied: dict[str, int] = {}
    with columnar.transaction(con):
        for table in CONVERTED_TABLES:
            cols = ", ".join(_columns(con, table))
            con.execute(f"INSERT INTO {table}({cols}) SELECT {cols} FROM "
                        f"{columnar.CATALOGUE_ALIAS}.{table} ORDER BY ALL")
            copied[table] = _count(con, table)
    return copied


def _columns(con: columnar.Connection, table: str) -> list[str]:
    return [f'"{r[0]}"' for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND table_name = ? ORDER BY column_index", [table]).fetchall()]


def _count(con: columnar.Connection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


# -- ingest checkpoints (one per input; committed with the input's rows) ---------


def checkpoint(con: columnar.Connection, source: str) -> Checkpoint | None:
    """The checkpoint of ``source`` (an input's name as ingest reports it), if any."""
    row = con.execute('SELECT source, kind, "offset", done, size, mtime_ns, line '
                      "FROM ingest_checkpoint WHERE source = ?", [source]).fetchone()
    if row is None:
        return None
    return Checkpoint(source=row[0], kind=row[1], offset=row[2], done=bool(row[3]),
                      size=row[4], mtime_ns=row[5], line=row[6])


def save_checkpoint(con: columnar.Connection, cp: Checkpoint) -> None:
    """Record ``cp``; call it inside the transaction that writes the rows it covers."""
    old = checkpoint(con, cp.source)
    if old is not None and old == cp:
        return  # a re-read that ends where the last one did is not news: keep its time
    con.execute("DELETE FROM ingest_checkpoint WHERE source = ?", [cp.source])
    con.execute('INSERT INTO ingest_checkpoint(source, kind, size, mtime_ns, "offset", line, '
                "done, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [cp.source, cp.kind, cp.size, cp.mtime_ns, cp.offset, cp.line, int(cp.done),
                 clock.now_iso()])
