"""The selection and the ledger of a columnar workspace (owner of the columnar
``selection`` and ``ledger`` tables in catalogue.duckdb).

The columnar counterpart of :mod:`.selection` and :mod:`.ledger`: the same columns,
the same statuses and the same re-selection rules (see :mod:`.ledger`), written
set-based by DuckDB so no row passes through Python. Select (:mod:`phonotheque.select.
columnar_plan`) computes its plan in TEMP tables (``sel_track``, ``sel_rep``,
``sel_over``) and hands :func:`replace_selection` a query; :func:`apply_ledger`
then derives every track's status from them, the new selection, the previous
ledger and ``cat.audio_file`` (which stays in catalogue.sqlite). The record of
select runs (``select_run``) stays in catalogue.sqlite (:mod:`.selection`).

DuckDB tables have no primary key here (see :mod:`.bulk`), so the ledger is
rewritten whole, in track id order, inside the caller's transaction: a row whose
status and detail are unchanged keeps its ``updated_at``.

The readers (:func:`status_counts`, :func:`count_matching`, :func:`ledger_entries`,
:func:`iter_ledger`) answer ``phono ledger`` on a columnar workspace with the rows
and order of their SQLite counterparts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from phonotheque.catalogue import columnar
from phonotheque.catalogue.ledger import LedgerEntry, ledger_rows_sql
from phonotheque.catalogue.selection import COLUMNS
from phonotheque.clock import now_iso
from phonotheque.sources.bounds import MAX_TRACK_LISTENS

_PARAM = re.compile(r"\$(\w+)")


def bind(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The named parameters ``sql`` uses (DuckDB refuses a value it has no ``$name`` for)."""
    return {name: params[name] for name in set(_PARAM.findall(sql))}


def replace_selection(con: columnar.Connection, rows_sql: str,
                      params: Mapping[str, Any]) -> None:
    """Replace the whole selection by the rows of ``rows_sql``, a SELECT of
    :data:`~phonotheque.catalogue.selection.COLUMNS` in that order with an
    ``ORDER BY`` (the rows are stored in that order)."""
    con.execute("DELETE FROM selection")
    con.execute(f"INSERT INTO selection({', '.join(COLUMNS)}) {rows_sql}",
                bind(rows_sql, params))


def apply_ledger(con: columnar.Connection, held_only: bool = False) -> None:
    """Every track's status from the plan's TEMP tables (``sel_track``, ``sel_rep``,
    ``sel_over``) and the new ``selection``: the rules of
    :func:`phonotheque.catalogue.ledger.apply_ledger` (the same SELECT,
    :func:`~phonotheque.catalogue.ledger.ledger_rows_sql`), one set-based rewrite.

    Rows of tracks the plan does not know (none, unless tracks were removed) are kept.

    The new ledger is built beside the old one and swapped in (inside the caller's
    transaction): one statement reading the old rows once, where a DELETE of every row
    and an INSERT through two temporary copies cost three times as much (measured).
    """
    rows = ledger_rows_sql("$held_only", "(SELECT DISTINCT track_id FROM cat.audio_file)",
                           with_old=True)
    con.execute("DROP TABLE IF EXISTS ledger_new")
    con.execute(_renamed_ddl(con, "ledger", "ledger_new"))
    sql = f"""INSERT INTO ledger_new(track_id, status, detail, updated_at)
        SELECT track_id, status, detail,
               CASE WHEN old_status IS NOT DISTINCT FROM status
                         AND old_detail IS NOT DISTINCT FROM detail
                    THEN old_updated_at ELSE $now END
        FROM ({rows})
        UNION ALL
        SELECT track_id, status, detail, updated_at FROM ledger
        WHERE track_id NOT IN (SELECT track_id FROM sel_track)
        ORDER BY track_id"""
    con.execute(sql, {"held_only": held_only, "now": now_iso()})
    con.execute("DROP TABLE ledger")
    con.execute("ALTER TABLE ledger_new RENAME TO ledger")


def _renamed_ddl(con: columnar.Connection, table: str, new: str) -> str:
    """The CREATE TABLE statement of ``table`` (its columns and constraints as the
    schema made them, :mod:`.bulk`) for a table named ``new``."""
    row = con.execute("SELECT sql FROM duckdb_tables() WHERE database_name = current_database() "
                      "AND schema_name = 'main' AND table_name = ?", [table]).fetchone()
    assert row is not None, f"no table {table}"
    ddl = str(row[0])
    head = f"CREATE TABLE {table}("
    assert ddl.startswith(head), ddl
    return f"CREATE TABLE {new}(" + ddl[len(head):]


# -- readers ------------------------------------------------------------------


def status_counts(con: columnar.Connection) -> dict[str, int]:
    """Tracks per status, by status."""
    return {str(row[0]): int(row[1]) for row in con.execute(
        "SELECT status, count(*) FROM ledger GROUP BY status ORDER BY status").fetchall()}


def _status_filter(status: str | None) -> tuple[str, dict[str, Any]]:
    """The condition on ``l.status`` (``*`` at the end: a prefix), as in catalogue.ledger."""
    if not status:
        return "true", {}
    if status.endswith("*"):
        prefix = status[:-1]
        return "l.status >= $lo AND l.status < $hi", {"lo": prefix, "hi": prefix + "\uffff"}
    return "l.status = $status", {"status": status}


def count_matching(con: columnar.Connection, status: str | None) -> int:
    cond, params = _status_filter(status)
    row = con.execute(f"SELECT count(*) FROM ledger l WHERE {cond}", params).fetchone()
    return int(row[0]) if row else 0


def _entries_sql(cond: str, page: str) -> str:
    """Ledger rows matching ``cond``: selected ones by rank, then the others by track id;
    the details (track, listens, ISRCs) joined to the page's rows only."""
    return f"""
        WITH page AS (
          SELECT l.track_id, l.status, l.detail, l.updated_at, s.rank, s.band, s.tier,
                 s.est_bytes
          FROM ledger l LEFT JOIN selection s ON s.track_id = l.track_id
          WHERE {cond}
          ORDER BY s.rank NULLS LAST, l.track_id {page}),
        lis AS (SELECT track_id, CAST(least(sum(count), {MAX_TRACK_LISTENS}) AS BIGINT) AS n
                FROM listens WHERE track_id IN (SELECT track_id FROM page) GROUP BY track_id),
        isr AS (SELECT track_id, string_agg(isrc, ' ' ORDER BY isrc) AS codes
                FROM track_isrc WHERE track_id IN (SELECT track_id FROM page)
                GROUP BY track_id)
        SELECT p.track_id, t.key, t.title, t.artist_credit, p.status, p.detail, p.updated_at,
               p.rank, p.band, p.tier, p.est_bytes, coalesce(lis.n, 0), t.mbid, isr.codes
        FROM page p JOIN track t ON t.id = p.track_id
        LEFT JOIN lis ON lis.track_id = p.track_id
        LEFT JOIN isr ON isr.track_id = p.track_id
        ORDER BY p.rank NULLS LAST, p.track_id"""


def _entry(row: Any) -> LedgerEntry:
    (track_id, key, title, artist, status, detail, updated_at, rank, band, tier, est_bytes,
     listens, mbid, isrcs) = row
    return LedgerEntry(int(track_id), key, title, artist, status, detail, updated_at,
                       None if rank is None else int(rank), band, tier,
                       None if est_bytes is None else int(est_bytes), int(listens), mbid,
                       tuple(isrcs.split()) if isrcs else ())


def ledger_entries(con: columnar.Connection, status: str | None = None,
                   limit: int | None = 50, offset: int = 0) -> list[LedgerEntry]:
    """Tracks with their status: selected ones in rank order, then the others by id
    (``status`` may end in ``*`` to match a prefix)."""
    cond, params = _status_filter(status)
    page = "LIMIT $limit OFFSET $offset" if limit is not None else "OFFSET $offset"
    params = {**params, "offset": offset, **({} if limit is None else {"limit": limit})}
    return [_entry(r) for r in con.execute(_entries_sql(cond, page), params).fetchall()]


def iter_ledger(con: columnar.Connection, status: str | None = None,
                batch: int = 10_000) -> Iterator[LedgerEntry]:
    """Every track with ``status`` (the order of :func:`ledger_entries`), fetched in
    batches: for exports of any size (``phono ledger --csv``)."""
    cond, params = _status_filter(status)
    cur = con.execute(_entries_sql(cond, ""), params)
    while rows := cur.fetchmany(batch):
        yield from (_entry(r) for r in rows)


def sync_exclusions(con: columnar.Connection) -> int:
    """Bring the ledger in line with ``track.excluded`` at once (the rules of
    :func:`phonotheque.catalogue.ledger.sync_exclusions`): for ``phono exclude`` on a
    columnar workspace, in the transaction that refreshes ``track.excluded``. Returns
    the rows changed.
    """
    stamp = now_iso()
    changed = 0
    for sql in (
        """UPDATE ledger SET status = 'excluded',
             detail = 'exclusion' || CASE WHEN track_id IN
                 (SELECT track_id FROM cat.audio_file) THEN '; audio_file kept'
               ELSE '' END,
             updated_at = $now
           WHERE status != 'excluded'
             AND track_id IN (SELECT id FROM track WHERE excluded = 1)""",
        """UPDATE ledger SET
             status = CASE
               WHEN track_id NOT IN (SELECT track_id FROM selection)
                 THEN 'skipped_low_priority'
               WHEN track_id IN (SELECT track_id FROM cat.audio_file) THEN 'success'
               WHEN track_id NOT IN (SELECT track_id FROM cat.source_audio) THEN 'wanted'
               ELSE 'todo' END,
             detail = CASE
               WHEN track_id NOT IN (SELECT track_id FROM selection)
                 THEN 'exclusion removed; run `phono select`'
               WHEN track_id IN (SELECT track_id FROM cat.audio_file)
                 THEN 'audio_file present'
               WHEN track_id NOT IN (SELECT track_id FROM cat.source_audio)
                 THEN 'no source audio file held' END,
             updated_at = $now
           WHERE status = 'excluded'
             AND track_id IN (SELECT id FROM track WHERE excluded = 0)"""):
        row = con.execute(sql, {"now": stamp}).fetchone()
        changed += int(row[0]) if row else 0
    return changed
