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
rewritten whole, in track id order, inside the caller's transaction, unless a
re-selection changes only a few existing rows (then those are updated in place): a
row whose status and detail are unchanged keeps its ``updated_at``.

The readers (:func:`status_counts`, :func:`count_matching`, :func:`ledger_entries`,
:func:`iter_ledger`) answer ``phono ledger`` on a columnar workspace with the rows
and order of their SQLite counterparts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from phonotheque.catalogue import bulk, columnar
from phonotheque.catalogue.ledger import LedgerEntry, is_audio_outcome, ledger_rows_sql
from phonotheque.catalogue.selection import COLUMNS
from phonotheque.clock import now_iso
from phonotheque.errors import InputError
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


#: Memory per track id a range of the ledger rewrite may take (:func:`bulk.id_ranges`):
#: the range's rows of sel_track, the old ledger (with its strings), selection, sel_over
#: and their hash tables, and the sort of the new rows. About 300 B were measured for a
#: 10 M-track range; twice that leaves room for the rest of the process.
_BYTES_PER_ID = 600


def apply_ledger(con: columnar.Connection, held_only: bool = False) -> None:
    """Every track's status from the plan's TEMP tables (``sel_track``, ``sel_rep``,
    ``sel_over``) and the new ``selection``: the rules of
    :func:`phonotheque.catalogue.ledger.apply_ledger` (the same SELECT,
    :func:`~phonotheque.catalogue.ledger.ledger_rows_sql`), set-based.

    Rows of tracks the plan does not know (none, unless tracks were removed) are kept.

    A re-selection that changes few rows of an existing ledger updates those rows in
    place (:func:`_update_in_place`); nothing is written when nothing changes.
    Otherwise the new ledger is built beside the old one and swapped in (inside the caller's
    transaction), **one range of track ids at a time**, appended in id order. Every
    relation is cut to the range (the tables are stored in id order, so DuckDB skips
    the other row groups), so each range's joins and sort fit in memory. Done in one
    statement over every track, the joins' hash tables (the old ledger's strings, the
    selection) and the sort spilled: at 100 M tracks under a 3 GiB limit the temp
    directory passed 38 GB and was still growing (measured). A track's representative
    (``sel_rep.rep_id``) may lie in another range: the representatives that are
    selected or over budget are looked up once, in two small tables.
    """
    con.execute("""CREATE OR REPLACE TEMP TABLE sel_rep_selected AS
        SELECT DISTINCT r.rep_id AS track_id FROM sel_rep r
        JOIN selection s ON s.track_id = r.rep_id""")
    con.execute("""CREATE OR REPLACE TEMP TABLE sel_rep_over AS
        SELECT DISTINCT r.rep_id AS track_id FROM sel_rep r
        JOIN sel_over o ON o.track_id = r.rep_id""")
    row = con.execute("""SELECT min(lo), max(hi) FROM (
        SELECT min(track_id) AS lo, max(track_id) AS hi FROM sel_track
        UNION ALL SELECT min(track_id), max(track_id) FROM ledger)""").fetchone()
    lo, hi = (row or (None, None))
    in_range = "track_id BETWEEN $lo AND $hi"
    rows = ledger_rows_sql(
        "$held_only",
        f"(SELECT DISTINCT track_id FROM cat.audio_file WHERE {in_range})",
        with_old=True,
        tracks=f"(SELECT * FROM sel_track WHERE {in_range})",
        reps=f"(SELECT * FROM sel_rep WHERE {in_range})",
        selected=f"""(SELECT track_id FROM selection WHERE {in_range}
                      UNION SELECT track_id FROM sel_rep_selected)""",
        over=f"""(SELECT track_id FROM sel_over WHERE {in_range}
                  UNION SELECT track_id FROM sel_rep_over)""",
        old=f"(SELECT * FROM ledger WHERE {in_range})")
    now = now_iso()
    ranges = list(bulk.id_ranges(lo, hi, _BYTES_PER_ID))
    if not _update_in_place(con, rows, ranges, held_only, now):
        _rewrite(con, rows, ranges, held_only, now)
    con.execute("DROP TABLE IF EXISTS temp.ledger_change")
    con.execute("DROP TABLE sel_rep_selected")
    con.execute("DROP TABLE sel_rep_over")


#: Changed rows a re-selection updates in place, per byte of the memory limit: DuckDB
#: keeps an UPDATE's old values in memory until the transaction commits, so past this
#: many rows (about 3 M under the 3 GiB default) the ledger is rewritten instead.
_BYTES_PER_UPDATE = 1000
#: Overrides the limit above (tests set it small, so a tiny ledger takes both ways).
UPDATE_ROWS: int | None = None


def _update_in_place(con: columnar.Connection, rows: str, ranges: list[tuple[int, int]],
                     held_only: bool, now: str) -> bool:
    """Write only the rows whose status or detail change, in place, if the old ledger
    has a row for each of them and they are few (:data:`_BYTES_PER_UPDATE`); else
    write nothing and return False (the caller rewrites the ledger).

    A re-selection usually moves a few statuses (another coverage, audio outcomes
    kept): rewriting and sorting every track's row was most of its ledger step (at
    10 M tracks, ~10 s CPU for a select that changed nothing). The changes are
    collected range by range, as the rewrite does; a new track (no old row) would be
    appended out of id order, so it sends the ledger to the rewrite, as does an empty
    old ledger (the first select)."""
    limit = (UPDATE_ROWS if UPDATE_ROWS is not None
             else bulk.stage_memory() // _BYTES_PER_UPDATE)
    if con.execute("SELECT count(*) FROM (SELECT 1 FROM ledger LIMIT 1)").fetchone() == (0,):
        return False
    con.execute("""CREATE OR REPLACE TEMP TABLE ledger_change(track_id BIGINT, status VARCHAR,
                   detail VARCHAR, added BOOLEAN)""")
    changed = 0
    sql = f"""INSERT INTO temp.ledger_change
        SELECT track_id, status, detail, old_status IS NULL FROM ({rows})
        WHERE old_status IS DISTINCT FROM status OR old_detail IS DISTINCT FROM detail"""
    for first, last in ranges:
        con.execute(sql, {"held_only": held_only, "lo": first, "hi": last})
        changed, added = con.execute(
            "SELECT count(*), coalesce(bool_or(added), false) FROM temp.ledger_change"
        ).fetchone() or (0, False)
        if added or changed > limit:
            return False
    if changed:
        con.execute("""UPDATE ledger SET status = c.status, detail = c.detail, updated_at = $now
                       FROM temp.ledger_change c WHERE ledger.track_id = c.track_id""",
                    {"now": now})
    return True


def _rewrite(con: columnar.Connection, rows: str, ranges: list[tuple[int, int]],
             held_only: bool, now: str) -> None:
    """Build the new ledger beside the old one, range by range in id order, and swap it in."""
    in_range = "track_id BETWEEN $lo AND $hi"
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
        WHERE {in_range}
          AND track_id NOT IN (SELECT track_id FROM sel_track WHERE {in_range})
        ORDER BY track_id"""
    for first, last in ranges:
        con.execute(sql, {"held_only": held_only, "now": now, "lo": first, "hi": last})
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


# -- the audio stage and gc on a columnar workspace --------------------------------
#
# The audio stage records an archive file (``cat.audio_file``, catalogue.sqlite) and
# the track's ledger status (here) in two files, which cannot commit together. The
# stage commits catalogue.sqlite FIRST, then the statuses here: a crash in between
# leaves a selected track ``todo`` with an ``audio_file`` row, never a ``success``
# without one. :func:`reconcile_audio` (at the start of every audio run) turns such a
# track into the ``success`` the interrupted batch would have written; an error
# outcome lost that way only means the track is tried again.


def _outcomes_table(outcomes: list[tuple[int, str, str | None]]) -> Any:
    import pyarrow as pa

    last = {tid: (status, detail) for tid, status, detail in outcomes}  # the last one wins
    return pa.table({"track_id": pa.array(list(last), pa.int64()),
                     "status": pa.array([v[0] for v in last.values()], pa.string()),
                     "detail": pa.array([v[1] for v in last.values()], pa.string())})


def sync_selection(con: columnar.Connection) -> None:
    """The rules of :func:`phonotheque.catalogue.ledger.sync_selection`: every selected
    track gets a ledger row (``todo``), and a selected track an exclusion covers since
    becomes ``excluded`` unless its audio is done. Joins the caller's transaction."""
    stamp = now_iso()
    con.execute("""INSERT INTO ledger(track_id, status, updated_at)
                   SELECT track_id, 'todo', $now FROM selection
                   WHERE track_id NOT IN (SELECT track_id FROM ledger) ORDER BY track_id""",
                {"now": stamp})
    con.execute("""UPDATE ledger SET status = 'excluded',
                     detail = 'track is on the exclusion list', updated_at = $now
                   WHERE status NOT IN ('success', 'excluded') AND track_id IN (
                     SELECT s.track_id FROM selection s JOIN track t ON t.id = s.track_id
                      WHERE t.excluded = 1)""", {"now": stamp})


def reconcile_audio(con: columnar.Connection) -> int:
    """A selected, not excluded track still ``todo`` whose ``audio_file`` row exists was
    archived by a batch killed between its two commits (see above): make it the
    ``success`` that batch recorded in catalogue.sqlite. Returns the rows changed."""
    row = con.execute(
        """UPDATE ledger SET status = 'success', detail = af.tier, updated_at = $now
           FROM (SELECT track_id, tier FROM cat.audio_file) af
           WHERE ledger.track_id = af.track_id AND ledger.status = 'todo'
             AND ledger.track_id IN (SELECT s.track_id FROM selection s
                                     JOIN track t ON t.id = s.track_id WHERE t.excluded = 0)""",
        {"now": now_iso()}).fetchone()
    return int(row[0]) if row else 0


def record_outcomes(con: columnar.Connection,
                    outcomes: list[tuple[int, str, str | None]]) -> int:
    """The columnar :func:`phonotheque.catalogue.ledger.record_outcomes`: set
    ``(track_id, status, detail)`` of selected tracks, audio outcomes only; a row whose
    status and detail are unchanged keeps its ``updated_at``. Returns the rows changed."""
    for _tid, status, _detail in outcomes:
        if not is_audio_outcome(status):
            raise InputError(status, "audio outcome must be success, todo, wanted, "
                                     "skipped_duplicate or error_<reason>")
    if not outcomes:
        return 0
    con.register("phono_outcomes", _outcomes_table(outcomes))
    try:
        row = con.execute(
            """UPDATE ledger SET status = o.status, detail = o.detail, updated_at = $now
               FROM phono_outcomes o
               WHERE ledger.track_id = o.track_id
                 AND (ledger.status IS DISTINCT FROM o.status
                      OR ledger.detail IS DISTINCT FROM o.detail)""",
            {"now": now_iso()}).fetchone()
    finally:
        con.unregister("phono_outcomes")
    return int(row[0]) if row else 0


def unheld_plan(con: columnar.Connection, held_sql: str, retry_errors: bool,
                not_held: str) -> dict[str, int]:
    """The audio plan of the selected tracks no file is held for (not in ``held_sql``),
    set-based: what :func:`phonotheque.audio.stage` does with each of them, without
    bringing them into Python. Such a track is counted ``excluded``, ``duplicates``
    (``skipped_duplicate``) or ``previous_errors`` (``error_*`` unless
    ``retry_errors``), else it is ``wanted`` (written with ``not_held`` as its detail).
    Returns those counts and ``selected``; joins the caller's transaction."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE unheld AS
        SELECT s.track_id, coalesce(l.status, 'todo') AS status, t.excluded
        FROM selection s JOIN track t ON t.id = s.track_id
        LEFT JOIN ledger l ON l.track_id = s.track_id
        WHERE s.track_id NOT IN ({held_sql})""")
    try:
        row = con.execute(
            r"""SELECT count(*),
                   count(*) FILTER (WHERE excluded <> 0),
                   count(*) FILTER (WHERE excluded = 0 AND status = 'skipped_duplicate'),
                   count(*) FILTER (WHERE excluded = 0 AND status LIKE 'error\_%' ESCAPE '\'
                                    AND NOT $retry)
                FROM unheld""", {"retry": retry_errors}).fetchone()
        assert row is not None
        selected, excluded, duplicates, errors = (int(v or 0) for v in row)
        con.execute(
            r"""UPDATE ledger SET status = 'wanted', detail = $detail, updated_at = $now
                WHERE track_id IN (
                  SELECT track_id FROM unheld WHERE excluded = 0
                    AND status != 'skipped_duplicate'
                    AND NOT (status LIKE 'error\_%' ESCAPE '\' AND NOT $retry))
                  AND (status != 'wanted' OR detail IS DISTINCT FROM $detail)""",
            {"detail": not_held, "now": now_iso(), "retry": retry_errors})
    finally:
        con.execute("DROP TABLE IF EXISTS temp.unheld")
    return {"selected": selected, "excluded": excluded, "duplicates": duplicates,
            "previous_errors": errors,
            "wanted": selected - excluded - duplicates - errors}


def note_audio_removed(con: columnar.Connection, track_ids: list[int]) -> int:
    """The columnar :func:`phonotheque.catalogue.ledger.note_audio_removed` (``phono gc``)."""
    if not track_ids:
        return 0
    row = con.execute(
        """UPDATE ledger SET detail = 'exclusion; audio removed by gc', updated_at = $now
           WHERE track_id IN (SELECT unnest($ids)) AND status = 'excluded'
             AND detail IS DISTINCT FROM 'exclusion; audio removed by gc'""",
        {"now": now_iso(), "ids": track_ids}).fetchone()
    return int(row[0]) if row else 0
