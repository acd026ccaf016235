"""Select's first five steps as set-based DuckDB SQL (a columnar workspace).

The same steps as :mod:`phonotheque.select.plan` — listens per track, ISRC groups,
track table, secondary priority, ranking with running sums — computed by DuckDB
on every core over the columnar catalogue's bulk tables (``track``, ``track_isrc``,
``track_artist``, ``listens``; held files from ``cat.source_audio``, which stays in
catalogue.sqlite). They leave ``sel_track``, ``sel_rep`` and ``sel_ranked`` (with
the SQLite plan's columns and ``pos`` as the rank position) as working tables (in
the scratch database :func:`work_database` attaches) for the later steps
(:mod:`.columnar_plan`).

Where the two dialects differ the SQL here says so: ``//`` is SQLite's integer
``/``, ``least`` its scalar ``min``, ``NULLS LAST`` its order of NULLs in
descending sorts, and sums SQLite takes with ``total()`` (floats, never
overflowing) are taken exactly and kept as DOUBLE, which SQLite's INTEGER
columns store as integers, as they do ``total()``'s result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from phonotheque.catalogue import columnar
from phonotheque.select.options import SelectOptions
from phonotheque.sources.bounds import MAX_TRACK_LISTENS

Step = Callable[[columnar.Connection, SelectOptions, dict[str, Any]], None]

#: The scratch database (``<ws>/tmp/select-work.duckdb``, attached under this name for
#: one select, then deleted) that holds the steps' working tables. Not TEMP tables:
#: those live in memory and spill to the temp directory uncompressed, which at 100 M
#: tracks under the 3 GiB default took 21 GB of temp files by the ranking (measured);
#: a DuckDB file stores them compressed, and its blocks leave memory without being
#: written again. Unqualified names find them (the connection's search path).
WORK = "sel_work"
WORK_FILE = "select-work.duckdb"
#: Memory the working tables take per track when they are kept in memory (an attached
#: in-memory database, uncompressed): sel_track (with its 16-byte keys), sel_order and
#: sel_ranked side by side at the ranking, ~200 B, with room for the sorts. A catalogue
#: whose tracks fit the memory limit at this rate keeps them in memory (no compression,
#: no file: at 10 M tracks under the 3 GiB default ~20 % less CPU, measured); a larger
#: one in the scratch file.
WORK_BYTES_PER_TRACK = 256


def work_in_memory(tracks: int, memory_bytes: int) -> bool:
    """Whether select's working tables for ``tracks`` tracks stay in memory (else they go
    to the scratch file) under DuckDB's ``memory_bytes`` limit."""
    return tracks * WORK_BYTES_PER_TRACK <= memory_bytes


@contextmanager
def work_database(con: columnar.Connection, tmp: Path, in_memory: bool = False
                  ) -> Iterator[None]:
    """Attach a fresh scratch database for the working tables, in ``tmp`` (or in memory:
    :func:`work_in_memory`); detach it and delete its file afterwards (a killed select
    leaves the file behind: the next one removes it)."""
    path = tmp / WORK_FILE
    columnar.attach_scratch(con, path, WORK, in_memory=in_memory)
    main = con.execute("SELECT current_database()").fetchone()
    assert main is not None
    con.execute(f"SET search_path = '{main[0]}.main,{WORK}.main'")
    try:
        yield
    finally:
        con.execute("RESET search_path")
        con.execute(f"DETACH {WORK}")
        columnar.remove_database(path)



def _listens_per_track(con: columnar.Connection, opts: SelectOptions, found: dict[str, Any]) -> None:
    con.execute(f"""CREATE TABLE {WORK}.sel_listens AS
        SELECT track_id, CAST(least(sum(count), {MAX_TRACK_LISTENS}) AS BIGINT) AS listens
        FROM listens WHERE track_id IS NOT NULL GROUP BY track_id""")
    no_listens = con.execute(
        "SELECT 1 FROM listens WHERE count > 0 LIMIT 1").fetchone() is None
    found["mode"] = "all" if opts.take_all else ("no_listens" if no_listens else "coverage")


def _isrc_groups(con: columnar.Connection, opts: SelectOptions, found: dict[str, Any]) -> None:
    con.execute(f"""CREATE TABLE {WORK}.sel_edge AS
        SELECT ti.isrc AS isrc, ti.track_id AS track_id
        FROM (SELECT isrc FROM track_isrc GROUP BY isrc HAVING count(*) > 1) s
        JOIN track_isrc ti ON ti.isrc = s.isrc
        JOIN track t ON t.id = ti.track_id AND t.excluded = 0""")
    # Label propagation to the smallest track id of each connected component (the
    # same fixpoint as plan.py's), through the ISRCs: two aggregations per round. The
    # first round starts from each track's own id, so the table starts after it.
    con.execute(f"""CREATE TABLE {WORK}.sel_grp AS
        SELECT e.track_id, min(i.m) AS grp
        FROM sel_edge e JOIN (SELECT isrc, min(track_id) AS m FROM sel_edge GROUP BY isrc) i
             ON i.isrc = e.isrc
        GROUP BY e.track_id""")
    while True:
        changed = con.execute("""UPDATE sel_grp SET grp = nb.m FROM (
              SELECT e.track_id AS tid, min(i.m) AS m
              FROM sel_edge e JOIN (SELECT e2.isrc, min(g.grp) AS m
                                    FROM sel_edge e2 JOIN sel_grp g USING (track_id)
                                    GROUP BY e2.isrc) i ON i.isrc = e.isrc
              GROUP BY e.track_id) AS nb
            WHERE nb.tid = sel_grp.track_id AND nb.m < sel_grp.grp""").fetchone()
        if not changed or not changed[0]:
            break
    con.execute("""DELETE FROM sel_grp WHERE grp IN
        (SELECT grp FROM sel_grp GROUP BY grp HAVING count(*) = 1)""")
    _drop(con, "sel_edge")


def _track_table(con: columnar.Connection, opts: SelectOptions, found: dict[str, Any]) -> None:
    con.execute(f"""CREATE TABLE {WORK}.sel_audio AS
        SELECT track_id, max(size) AS size, max(duration_ms) AS dur
        FROM cat.source_audio GROUP BY track_id""")
    # Each track's key as ku (the key as a UUID, when it is an MBID in canonical text) or
    # kt (any other key): see _key_order.
    con.execute(f"""CREATE TABLE {WORK}.sel_track AS
        SELECT t.id AS track_id, t.excluded, coalesce(l.listens, 0) AS listens,
               CASE WHEN CAST(t.u AS VARCHAR) = t.key THEN t.u END AS ku,
               CASE WHEN CAST(t.u AS VARCHAR) = t.key THEN NULL ELSE t.key END AS kt,
               t.release_id, a.size, coalesce(a.dur, t.duration_ms) AS dur
        FROM (SELECT id, excluded, key, TRY_CAST(key AS UUID) AS u, release_id, duration_ms
              FROM track) t
        LEFT JOIN sel_listens l ON l.track_id = t.id
        LEFT JOIN sel_audio a ON a.track_id = t.id""")
    _drop(con, "sel_listens", "sel_audio")
    found["key_order"] = _key_order(con)
    row = con.execute("SELECT CAST(coalesce(sum(listens), 0) AS DOUBLE) FROM sel_track "
                      "WHERE excluded = 0").fetchone()
    found["total"] = int(row[0]) if row else 0


#: The key of a sel_track row as text (the track's key).
KEY_TEXT = "coalesce(CAST(ku AS VARCHAR), kt)"


def _key_order(con: columnar.Connection) -> str:
    """An ORDER BY list over sel_track's ku and kt that sorts rows as their keys sort as
    text (the order plan.py's ties fall back to; keys are unique).

    A sort with the 36-character key as its last column cost twice one with a 16-byte
    UUID (6.6 M works at 10 M tracks: 3.7 vs 1.8 s, measured). The canonical text of a
    UUID (lowercase hex, hyphens at fixed places) sorts as the UUID does, so keys that
    are all MBIDs sort by ku alone. Other keys (``tags:<sha1>`` for own files without an
    MBID) all sort after every MBID when each of them is at least ``'g'`` (a byte past
    every hex digit): then ku, NULLs last, then kt. Otherwise the text itself (correct
    for any keys, and as slow as before)."""
    row = con.execute("SELECT count(kt), count(kt) FILTER (WHERE kt < 'g') "
                      "FROM sel_track").fetchone()
    assert row is not None
    if int(row[0]) == 0:
        return "ku"
    if int(row[1]) == 0:
        return "ku NULLS LAST, kt"
    return KEY_TEXT


def _secondary_priority(con: columnar.Connection, opts: SelectOptions, found: dict[str, Any]) -> None:
    # The listen totals of the releases and artists that have a zero-listen work, summed
    # from sel_track (every track's listens, excluded ones too, as plan.py sums them):
    # one scan and one grouping each, no semi-join back through the big tables.
    zero = "s.excluded = 0 AND s.listens = 0"
    con.execute(f"""CREATE TABLE {WORK}.sel_art AS
        SELECT ta.artist_id, CAST(sum(s.listens) AS DOUBLE) AS total
        FROM track_artist ta JOIN sel_track s ON s.track_id = ta.track_id
        GROUP BY ta.artist_id HAVING bool_or({zero})""")
    con.execute(f"""CREATE TABLE {WORK}.sel_rel AS
        SELECT s.release_id, CAST(sum(s.listens) AS DOUBLE) AS total
        FROM sel_track s WHERE s.release_id IS NOT NULL
        GROUP BY s.release_id HAVING bool_or({zero})""")
    total = found["total"]
    denom = 2.0 * math.log1p(total) if total > 0 else 0.0
    # SQLite stores total() in INTEGER columns as integers: ln(1 + integer) here too.
    # With each zero-listen track's size, duration and key: the zero-listen block of the
    # ranking reads this table alone (see _ranking). A track's best artist total is
    # grouped for the zero-listen tracks only (a semi-join), not for every track's
    # artists (at 10 M tracks, a third of them: 6.7 -> 4.7 CPU s, measured).
    con.execute(f"""CREATE TABLE {WORK}.sel_prio AS
        SELECT s.track_id, s.size, s.dur, s.ku, s.kt,
               CASE WHEN $d > 0 THEN
                 (ln(1 + CAST(coalesce(am.m, 0) AS BIGINT))
                  + ln(1 + CAST(coalesce(r.total, 0) AS BIGINT))) / $d
               ELSE 0.0 END AS priority
        FROM sel_track s LEFT JOIN sel_rel r ON r.release_id = s.release_id
        LEFT JOIN (SELECT ta.track_id, max(a.total) AS m FROM track_artist ta
                   JOIN sel_art a ON a.artist_id = ta.artist_id
                   WHERE ta.track_id IN (SELECT s.track_id FROM sel_track s WHERE {zero})
                   GROUP BY ta.track_id) am
               ON am.track_id = s.track_id
        WHERE {zero}""", {"d": denom})
    _drop(con, "sel_art", "sel_rel")


def _est_sql(opts: SelectOptions) -> tuple[str, str]:
    """plan._est_sql in DuckDB's dialect (``//`` integer division, ``least``)."""
    dur = f"coalesce(dur, {int(opts.assumed_duration_ms)})"
    opus = f"(({dur} * {int(opts.opus_bitrate)}) // 8000)"
    orig = f"coalesce(size, ({dur} * {int(opts.original_bitrate)}) // 8000)"
    return orig, f"least({opus}, coalesce(size, {opus}))"


def _ranking(con: columnar.Connection, opts: SelectOptions, found: dict[str, Any]) -> None:
    by_key = found["key_order"]
    con.execute(f"""CREATE TABLE {WORK}.sel_rep AS
        SELECT track_id, first_value(track_id) OVER w AS rep_id,
               first_value({KEY_TEXT}) OVER w AS rep_key,
               CAST(sum(listens) OVER (PARTITION BY grp) AS DOUBLE) AS grp_listens
        FROM (SELECT g.grp, s.track_id, s.listens, p.priority,
                     s.size IS NOT NULL AS has_audio, s.ku, s.kt
              FROM sel_grp g JOIN sel_track s ON s.track_id = g.track_id
              LEFT JOIN sel_prio p ON p.track_id = s.track_id)
        WINDOW w AS (PARTITION BY grp ORDER BY has_audio DESC, listens DESC,
                     priority DESC NULLS LAST, {by_key}
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)""")
    _drop(con, "sel_grp")
    eo, er = _est_sql(opts)
    held_only = found["mode"] != "coverage"
    # The ranking is plan.py's ORDER BY lis DESC, (lis = 0 AND has_audio) DESC, prio DESC
    # NULLS LAST, has_audio DESC, key: works with listens first (prio is NULL for them, so
    # by lis, has_audio, key), then the zero-listen block (by has_audio, prio, key), whose
    # works are all tracks of sel_prio (a group's listens are at least its members').
    # Each block is sorted on its own and appended to a table stored in rank order (the
    # zero-listen one without joining every track to sel_prio); the running sums are then
    # a streaming window over it (no ORDER BY in OVER: DuckDB reads the table in
    # insertion order and sums in one pass), where a window with ORDER BY sorted all rows
    # and built a segment tree per sum (measured: about twice the CPU).
    est = f"{eo} AS eo, {er} AS er"
    held = {"held_only": int(held_only)}
    con.execute(f"""CREATE TABLE {WORK}.sel_order AS
        SELECT track_id, lis, CAST(NULL AS DOUBLE) AS prio, size IS NOT NULL AS has_audio, {est}
        FROM (SELECT s.track_id, CAST(coalesce(r.grp_listens, s.listens) AS BIGINT) AS lis,
                     s.size, s.dur, s.ku, s.kt
              FROM sel_track s LEFT JOIN sel_rep r ON r.track_id = s.track_id
              WHERE s.excluded = 0 AND (r.rep_id IS NULL OR r.rep_id = s.track_id)
                AND coalesce(r.grp_listens, s.listens) > 0
                AND ($held_only = 0 OR s.size IS NOT NULL))
        ORDER BY lis DESC, has_audio DESC, {by_key}""", held)
    con.execute(f"""INSERT INTO sel_order
        SELECT p.track_id, 0, p.priority, p.size IS NOT NULL AS has_audio, {est}
        FROM sel_prio p LEFT JOIN sel_rep r ON r.track_id = p.track_id
        WHERE (r.rep_id IS NULL OR r.rep_id = p.track_id) AND coalesce(r.grp_listens, 0) = 0
          AND ($held_only = 0 OR p.size IS NOT NULL)
        ORDER BY has_audio DESC, p.priority DESC NULLS LAST, {by_key}""", held)
    _drop(con, "sel_prio")
    if not _running_sums_by_arrays(con):
        con.execute(f"""CREATE TABLE {WORK}.sel_ranked AS
            SELECT row_number() OVER w AS pos, track_id, lis AS listens, prio AS priority,
                   CAST(has_audio AS INTEGER) AS held, eo, er,
                   CAST(sum(lis) OVER w AS DOUBLE) AS cum,
                   CAST(sum(eo) OVER w AS BIGINT) AS cum_o, CAST(sum(er) OVER w AS BIGINT) AS cum_r
            FROM sel_order
            WINDOW w AS (ROWS UNBOUNDED PRECEDING)""")
    _drop(con, "sel_order")


#: Rows per batch of :func:`_running_sums_by_arrays` (memory: ~60 B per row, twice).
SUM_BATCH_ROWS = 1 << 20
_INT64_MAX = (1 << 63) - 1
_RANKED = """pos BIGINT, track_id BIGINT, listens BIGINT, priority DOUBLE, held INTEGER,
    eo BIGINT, er BIGINT, cum DOUBLE, cum_o BIGINT, cum_r BIGINT"""


def _running_sums_by_arrays(con: columnar.Connection) -> bool:
    """``sel_ranked`` from ``sel_order`` (read in its stored order, the ranking's): each
    row's position and the running sums of listens and of the two byte estimates, summed
    as int64 arrays one batch at a time, unless a partial sum could leave int64 (then
    False: the window in SQL sums exactly, and fails as SQLite does on bytes that overflow).

    A window over every row in one order runs on one thread in DuckDB, and its
    bookkeeping, not the sums, was its cost: over 10 M rows the window took 4.5 s and a
    window of row_number() alone 3.9 s, where these arrays and their insert took 2.4 s
    (measured side by side; the whole ranking step at 10 M: 19.7 -> 18.1 CPU s, three
    alternating pairs on one loaded core)."""
    import numpy as np
    import pyarrow as pa

    row = con.execute("""SELECT count(*), min(lis), max(lis), min(eo), max(eo), min(er),
                                 max(er) FROM sel_order""").fetchone()
    assert row is not None
    n = int(row[0])
    for low, high in zip(row[1::2], row[2::2], strict=True):
        if n and max(abs(int(low)), abs(int(high))) * n > _INT64_MAX:
            return False
    con.execute(f"CREATE TABLE {WORK}.sel_ranked({_RANKED})")
    writer = columnar.cursor(con)  # the reader's connection is busy streaming sel_order
    try:
        # One transaction for every batch, committed once the read is over: a commit of its
        # own per batch let DuckDB checkpoint a scratch file (past its WAL threshold, as at
        # 100 M tracks) while sel_order was still being read from it, and the checkpoint
        # waited for that read forever, spinning a core.
        writer.execute("BEGIN")
        reader = con.execute("""SELECT track_id, lis, prio, CAST(has_audio AS INTEGER), eo, er
                                FROM sel_order""").fetch_record_batch(SUM_BATCH_ROWS)
        done, sums = 0, [0, 0, 0]
        for batch in reader:
            size = batch.num_rows
            cum = []
            for i, column in enumerate((1, 4, 5)):
                running = np.cumsum(batch.column(column).to_numpy(), dtype=np.int64)
                running += sums[i]
                sums[i] = int(running[-1])
                cum.append(running)
            ranked = pa.RecordBatch.from_arrays(
                [pa.array(np.arange(done + 1, done + size + 1, dtype=np.int64)),
                 *batch.columns, pa.array(cum[0].astype(np.float64)), pa.array(cum[1]),
                 pa.array(cum[2])],
                names=["pos", "track_id", "listens", "priority", "held", "eo", "er", "cum",
                       "cum_o", "cum_r"])
            writer.register("sel_batch", ranked)
            writer.execute(f"INSERT INTO {WORK}.sel_ranked SELECT * FROM sel_batch")
            writer.unregister("sel_batch")
            done += size
        reader.close()
        writer.execute("COMMIT")
    finally:
        writer.close()  # rolls back what an error left uncommitted
    return True


def _drop(con: columnar.Connection, *tables: str) -> None:
    """Drop working tables no later step reads (their blocks are freed for reuse in the
    scratch file and in DuckDB's memory)."""
    for table in tables:
        con.execute(f"DROP TABLE {table}")


# The steps in plan.STEPS' order and with its names (progress counts them the same).
STEPS: tuple[tuple[str, Step], ...] = (
    ("listens per track", _listens_per_track),
    ("ISRC groups", _isrc_groups),
    ("track table", _track_table),
    ("secondary priority", _secondary_priority),
    ("ranking", _ranking),
)

