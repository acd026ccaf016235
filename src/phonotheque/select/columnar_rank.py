"""Select's first five steps as set-based DuckDB SQL (``phono select --engine duckdb``).

The same steps as :mod:`phonotheque.select.plan` — listens per track, ISRC groups,
track table, secondary priority, ranking with running sums — computed by DuckDB
on every core over the catalogue ATTACHed read-only. The tables the later steps
read (``sel_track``, ``sel_rep``, ``sel_ranked``, with the same columns and
``pos`` as the rowid) are written into a scratch SQLite file in the workspace's
``tmp/``, which the plan ATTACHes; cuts, budget, selection, ledger and report then
run unchanged on SQLite. Opt-in while it is being measured: the default engine is
SQLite.

Where the two dialects differ the SQL here says so: ``//`` is SQLite's integer
``/``, ``least`` its scalar ``min``, ``NULLS LAST`` its order of NULLs in
descending sorts, and sums SQLite takes with ``total()`` (floats, never
overflowing) are taken exactly and handed over as DOUBLE, which SQLite's INTEGER
columns store as integers, as they do ``total()``'s result.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phonotheque.catalogue import columnar
from phonotheque.select.options import SelectOptions
from phonotheque.sources.bounds import MAX_TRACK_LISTENS

#: The scratch file's tables and their SQLite definitions (as plan.py's TEMP tables).
SCRATCH_TABLES = {
    "sel_track": """sel_track(track_id INTEGER PRIMARY KEY, excluded INTEGER NOT NULL,
                     listens INTEGER NOT NULL, key TEXT NOT NULL, release_id INTEGER,
                     size INTEGER, dur INTEGER)""",
    "sel_rep": """sel_rep(track_id INTEGER PRIMARY KEY, rep_id INTEGER NOT NULL,
                   rep_key TEXT NOT NULL, grp_listens INTEGER NOT NULL)""",
    "sel_ranked": """sel_ranked(pos INTEGER PRIMARY KEY, track_id INTEGER NOT NULL,
                      listens INTEGER NOT NULL, priority REAL, held INTEGER NOT NULL,
                      eo INTEGER NOT NULL, er INTEGER NOT NULL, cum INTEGER NOT NULL,
                      cum_o INTEGER NOT NULL, cum_r INTEGER NOT NULL)""",
}
_SCRATCH = "scr"


@dataclass
class Ranked:
    """What the DuckDB steps found that the later steps need besides the tables."""

    mode: str  # coverage | all | no_listens
    total: int  # T: listens of non-excluded tracks


Step = Callable[[Any, SelectOptions, dict[str, Any]], None]


def _listens_per_track(con: Any, opts: SelectOptions, found: dict[str, Any]) -> None:
    con.execute(f"""CREATE TEMP TABLE sel_listens AS
        SELECT track_id, CAST(least(sum(count), {MAX_TRACK_LISTENS}) AS BIGINT) AS listens
        FROM cat.listens WHERE track_id IS NOT NULL GROUP BY track_id""")
    no_listens = con.execute(
        "SELECT 1 FROM cat.listens WHERE count > 0 LIMIT 1").fetchone() is None
    found["mode"] = "all" if opts.take_all else ("no_listens" if no_listens else "coverage")


def _isrc_groups(con: Any, opts: SelectOptions, found: dict[str, Any]) -> None:
    con.execute("""CREATE TEMP TABLE sel_edge AS
        SELECT ti.isrc AS isrc, ti.track_id AS track_id
        FROM (SELECT isrc FROM cat.track_isrc GROUP BY isrc HAVING count(*) > 1) s
        JOIN cat.track_isrc ti ON ti.isrc = s.isrc
        JOIN cat.track t ON t.id = ti.track_id AND t.excluded = 0""")
    con.execute("""CREATE TEMP TABLE sel_grp AS
        SELECT DISTINCT track_id, track_id AS grp FROM sel_edge""")
    # Label propagation to the smallest track id of each connected component (the
    # same fixpoint as plan.py's), through the ISRCs: two aggregations per round.
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


def _track_table(con: Any, opts: SelectOptions, found: dict[str, Any]) -> None:
    con.execute("""CREATE TEMP TABLE sel_audio AS
        SELECT track_id, max(size) AS size, max(duration_ms) AS dur
        FROM cat.source_audio GROUP BY track_id""")
    con.execute("""CREATE TEMP TABLE sel_track AS
        SELECT t.id AS track_id, t.excluded, coalesce(l.listens, 0) AS listens, t.key,
               t.release_id, a.size, coalesce(a.dur, t.duration_ms) AS dur
        FROM cat.track t LEFT JOIN sel_listens l ON l.track_id = t.id
                         LEFT JOIN sel_audio a ON a.track_id = t.id""")
    row = con.execute("SELECT CAST(coalesce(sum(listens), 0) AS DOUBLE) FROM sel_track "
                      "WHERE excluded = 0").fetchone()
    found["total"] = int(row[0])


def _secondary_priority(con: Any, opts: SelectOptions, found: dict[str, Any]) -> None:
    zero = "SELECT {col} FROM sel_track WHERE excluded = 0 AND listens = 0"
    con.execute(f"""CREATE TEMP TABLE sel_art AS
        SELECT ta.artist_id, CAST(coalesce(sum(l.listens), 0) AS DOUBLE) AS total
        FROM cat.track_artist ta LEFT JOIN sel_listens l ON l.track_id = ta.track_id
        WHERE ta.artist_id IN (SELECT z.artist_id FROM cat.track_artist z
                               WHERE z.track_id IN ({zero.format(col='track_id')}))
        GROUP BY ta.artist_id""")
    con.execute(f"""CREATE TEMP TABLE sel_rel AS
        SELECT t.release_id, CAST(coalesce(sum(l.listens), 0) AS DOUBLE) AS total
        FROM cat.track t LEFT JOIN sel_listens l ON l.track_id = t.id
        WHERE t.release_id IN ({zero.format(col='release_id')})
        GROUP BY t.release_id""")
    total = found["total"]
    denom = 2.0 * math.log1p(total) if total > 0 else 0.0
    # SQLite stores total() in INTEGER columns as integers: ln(1 + integer) here too.
    con.execute("""CREATE TEMP TABLE sel_prio AS
        SELECT s.track_id,
               CASE WHEN $d > 0 THEN
                 (ln(1 + CAST(coalesce(am.m, 0) AS BIGINT))
                  + ln(1 + CAST(coalesce(r.total, 0) AS BIGINT))) / $d
               ELSE 0.0 END AS priority
        FROM sel_track s LEFT JOIN sel_rel r ON r.release_id = s.release_id
        LEFT JOIN (SELECT ta.track_id, max(a.total) AS m FROM cat.track_artist ta
                   JOIN sel_art a ON a.artist_id = ta.artist_id GROUP BY ta.track_id) am
               ON am.track_id = s.track_id
        WHERE s.excluded = 0 AND s.listens = 0""", {"d": denom})


def _est_sql(opts: SelectOptions) -> tuple[str, str]:
    """plan._est_sql in DuckDB's dialect (``//`` integer division, ``least``)."""
    dur = f"coalesce(dur, {int(opts.assumed_duration_ms)})"
    opus = f"(({dur} * {int(opts.opus_bitrate)}) // 8000)"
    orig = f"coalesce(size, ({dur} * {int(opts.original_bitrate)}) // 8000)"
    return orig, f"least({opus}, coalesce(size, {opus}))"


def _ranking(con: Any, opts: SelectOptions, found: dict[str, Any]) -> None:
    con.execute("""CREATE TEMP TABLE sel_rep AS
        SELECT track_id, first_value(track_id) OVER w AS rep_id, first_value(key) OVER w AS rep_key,
               CAST(sum(listens) OVER (PARTITION BY grp) AS DOUBLE) AS grp_listens
        FROM (SELECT g.grp, s.track_id, s.listens, p.priority,
                     s.size IS NOT NULL AS has_audio, s.key
              FROM sel_grp g JOIN sel_track s ON s.track_id = g.track_id
              LEFT JOIN sel_prio p ON p.track_id = s.track_id)
        WINDOW w AS (PARTITION BY grp ORDER BY has_audio DESC, listens DESC,
                     priority DESC NULLS LAST, key ASC
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)""")
    eo, er = _est_sql(opts)
    held_only = found["mode"] != "coverage"
    order = ("lis DESC, (lis = 0 AND has_audio) DESC, prio DESC NULLS LAST, has_audio DESC, "
             "key ASC")
    con.execute(f"""CREATE TEMP TABLE sel_ranked AS
        SELECT row_number() OVER w AS pos, track_id, lis AS listens, prio AS priority,
               CAST(has_audio AS INTEGER) AS held, eo, er,
               CAST(sum(lis) OVER w AS DOUBLE) AS cum, CAST(sum(eo) OVER w AS BIGINT) AS cum_o,
               CAST(sum(er) OVER w AS BIGINT) AS cum_r
        FROM (SELECT track_id, lis, prio, has_audio, key, {eo} AS eo, {er} AS er
              FROM (SELECT s.track_id, CAST(coalesce(r.grp_listens, s.listens) AS BIGINT) AS lis,
                           CASE WHEN coalesce(r.grp_listens, s.listens) = 0
                                THEN p.priority END AS prio,
                           s.size IS NOT NULL AS has_audio, s.size, s.dur, s.key
                    FROM sel_track s LEFT JOIN sel_rep r ON r.track_id = s.track_id
                    LEFT JOIN sel_prio p ON p.track_id = s.track_id
                    WHERE s.excluded = 0 AND (r.rep_id IS NULL OR r.rep_id = s.track_id)
                      AND ($held_only = 0 OR s.size IS NOT NULL)))
        WINDOW w AS (ORDER BY {order} ROWS UNBOUNDED PRECEDING)""",
                {"held_only": int(held_only)})


# The steps in plan.STEPS' order and with its names (progress counts them the same).
STEPS: tuple[tuple[str, Step], ...] = (
    ("listens per track", _listens_per_track),
    ("ISRC groups", _isrc_groups),
    ("track table", _track_table),
    ("secondary priority", _secondary_priority),
    ("ranking", _ranking),
)


def rank(catalogue: Path, scratch: Path, opts: SelectOptions, *, temp_directory: Path,
         on_step: Callable[[str], None] | None = None,
         memory_bytes: int | None = None) -> Ranked:
    """Run the five steps on DuckDB; write their tables into the new SQLite ``scratch``."""
    with sqlite3.connect(scratch) as conn:  # the exact SQLite shapes, pos as the rowid
        for ddl in SCRATCH_TABLES.values():
            conn.execute(f"CREATE TABLE {ddl}")
    conn.close()
    con = columnar.connect(catalogue, temp_directory=temp_directory, memory_bytes=memory_bytes)
    try:
        found: dict[str, Any] = {}
        for i, (name, step) in enumerate(STEPS, 1):
            step(con, opts, found)
            if i == len(STEPS):  # the hand-over counts as part of the ranking step
                _hand_over(con, scratch)
            if on_step is not None:
                on_step(name)
    finally:
        con.close()
    return Ranked(mode=found["mode"], total=found["total"])


def _hand_over(con: Any, scratch: Path) -> None:
    """Write the tables the later (SQLite) steps read into ``scratch``, in key order."""
    columnar.attach(con, scratch, _SCRATCH)
    for table, order in (("sel_track", "track_id"), ("sel_rep", "track_id"),
                         ("sel_ranked", "pos")):
        con.execute(f"INSERT INTO {_SCRATCH}.{table} SELECT * FROM {table} ORDER BY {order}")
    con.execute(f"DETACH {_SCRATCH}")
