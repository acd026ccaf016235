"""The held tracks' bulk rows of a columnar workspace, mirrored into a SQLite connection.

The audio stage, the packer and ``phono gc`` read the catalogue through SQL joins of
operational tables (``source_audio``, ``audio_file``, ``torrent``...) with bulk ones
(``selection``, ``ledger``, ``track``, ``release``, ``artist``, ``track_artist``,
``track_isrc``, ``listens``). A columnar workspace keeps the bulk tables in
catalogue.duckdb, where the selection can hold tens of millions of tracks; but those
stages only ever look at **held** tracks: the tracks a file of the user's is matched
to (``source_audio``) or that have an archive file (``audio_file``). Their number is
bounded by the files a user has, not by the catalogue.

:func:`mirrored` copies the bulk rows of the held tracks (and of their releases and
artists) into TEMP tables of the same names on the stage's SQLite connection. SQLite
looks an unqualified name up in ``temp`` before ``main``, so the stages' SQL runs as
it is and reads the mirror; the TEMP tables live in that connection only and are
dropped at the end. The mirror is read-only by contract: a stage writes the columnar
ledger through :mod:`.bulk_selection` (the owner of the columnar ``ledger``), never
through the mirror.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from phonotheque.catalogue import bulk, columnar
from phonotheque.catalogue.store import Store

#: The held tracks: a file of the user's is matched to them, or they have an archive file.
HELD_SQL = ("SELECT track_id FROM cat.source_audio UNION "
            "SELECT track_id FROM cat.audio_file")

# What each mirrored table holds: its rows for the held tracks (``held``, a TEMP table
# of the DuckDB connection), their releases and their credited artists. ``track`` also
# holds the other tracks of the held tracks' releases: the readable pack layout numbers a
# file ``1-01`` when its release has more than one disc (``max(disc)`` over the release's
# tracks), which the held tracks alone do not tell. The stages only reach ``track`` from
# a held track, a file or the selection, so those extra rows are read for that alone.
_ROWS: dict[str, str] = {
    "track": """SELECT * FROM track WHERE id IN (SELECT track_id FROM held)
                   OR release_id IN (SELECT release_id FROM track
                                      WHERE id IN (SELECT track_id FROM held))""",
    "release": """SELECT * FROM release WHERE id IN (
                    SELECT release_id FROM track WHERE id IN (SELECT track_id FROM held))""",
    "track_artist": "SELECT * FROM track_artist WHERE track_id IN (SELECT track_id FROM held)",
    "artist": """SELECT * FROM artist WHERE id IN (SELECT artist_id FROM track_artist
                   WHERE track_id IN (SELECT track_id FROM held))""",
    "track_isrc": "SELECT * FROM track_isrc WHERE track_id IN (SELECT track_id FROM held)",
    "listens": "SELECT * FROM listens WHERE track_id IN (SELECT track_id FROM held)",
    "selection": "SELECT * FROM selection WHERE track_id IN (SELECT track_id FROM held)",
    "ledger": "SELECT * FROM ledger WHERE track_id IN (SELECT track_id FROM held)",
}
#: The tables a mirror shadows.
MIRRORED: tuple[str, ...] = tuple(_ROWS)

_BATCH = 50_000
_CREATE = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?(TABLE|INDEX)\s+", re.IGNORECASE)


def _temp_ddl(sql: str) -> str:
    """``CREATE TABLE x(...)`` as ``CREATE TEMP TABLE x(...)``; ``CREATE INDEX i ON x``
    as ``CREATE INDEX temp.i ON x`` (the index of the TEMP table of that name)."""
    m = _CREATE.match(sql)
    assert m is not None, sql
    unique = m.group(1) or ""
    rest = sql[m.end():]
    if m.group(2).upper() == "TABLE":
        return f"CREATE TEMP TABLE {rest}"
    return f"CREATE {unique}INDEX temp.{rest}"


def _create(conn: sqlite3.Connection, table: str) -> None:
    rows = conn.execute(
        "SELECT type, sql FROM main.sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
        "ORDER BY type = 'index', name", (table,)).fetchall()
    conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
    for _kind, sql in rows:
        conn.execute(_temp_ddl(sql))


def fill(con: columnar.Connection, conn: sqlite3.Connection) -> dict[str, int]:
    """Copy the held tracks' bulk rows from ``con`` (catalogue.duckdb, ``cat`` attached)
    into TEMP tables of ``conn``; return the rows copied per table."""
    copied: dict[str, int] = {}
    con.execute(f"CREATE OR REPLACE TEMP TABLE held AS {HELD_SQL}")
    try:
        for table, sql in _ROWS.items():
            _create(conn, table)
            cur = con.execute(sql)
            cols = [d[0] for d in cur.description]
            # OR IGNORE: DuckDB keeps no keys (see .bulk); a key the owners kept unique
            # cannot stop the stage, the first row stays
            insert = (f"INSERT OR IGNORE INTO temp.{table}({', '.join(f'[{c}]' for c in cols)}) "
                      f"VALUES ({', '.join('?' * len(cols))})")
            n = 0
            while rows := cur.fetchmany(_BATCH):
                conn.executemany(insert, rows)
                n += len(rows)
            copied[table] = n
    finally:
        con.execute("DROP TABLE IF EXISTS temp.held")
    return copied


def drop(conn: sqlite3.Connection) -> None:
    """Remove the mirror from ``conn``: the names read ``main`` again."""
    for table in MIRRORED:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")


@contextmanager
def mirrored(con: columnar.Connection, store: Store) -> Iterator[dict[str, int]]:
    """The held tracks' bulk rows readable on ``store``'s connection for the block
    (see the module's doc); yields the rows copied per table."""
    try:
        with store.transaction():
            copied = fill(con, store.conn)
    except columnar.Error as exc:
        raise columnar.failed(store.path.parent, "reading the held tracks", exc,
                              catalogue=bulk.path(store.path.parent)) from exc
    try:
        yield copied
    finally:
        drop(store.conn)


@contextmanager
def mirror_if_columnar(root: Path, store: Store) -> Iterator[None]:
    """For a stage that only reads the bulk tables (pack): on the columnar workspace at
    ``root``, the held tracks' rows mirrored into ``store`` for the block (the columnar
    catalogue is closed again before the block runs); on a SQLite workspace, nothing."""
    if not bulk.path(root).is_file():
        yield
        return
    con = bulk.open_bulk(root)
    try:
        with store.transaction():
            fill(con, store.conn)
    except columnar.Error as exc:
        raise columnar.failed(bulk.path(root), "reading the held tracks", exc) from exc
    finally:
        con.close()
    try:
        yield
    finally:
        drop(store.conn)
