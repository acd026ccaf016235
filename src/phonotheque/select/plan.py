"""The selection plan, computed inside SQLite so it scales past memory.

Every step is one SQL statement over the catalogue and a few TEMP tables (on
disk: the store sets ``temp_store=FILE``); Python only holds counts, cut
positions found by binary search over an ordered table, and a downsampled
curve. Steps (each a function in ``_PLAN_STEPS``, which also names them for
progress):

1. ``sel_listens``: listens per track (SUM over every dataset's rows).
2. ISRC groups: tracks that share an ISRC, transitively (connected components
   of the track–ISRC graph), found by label propagation restricted to ISRCs
   held by more than one non-excluded track. A group is one *work*: a track
   with a held file represents it (the same recording: archiving the file we
   hold beats wanting one we do not), the most listened among those; the others
   are ``skipped_isrc_has_download`` and their listens count as covered when the
   representative is selected.
3. ``sel_track``: one compact row per track (listens, key, size, duration).
4. Secondary priority of zero-listen tracks::

       priority = (ln(1 + A) + ln(1 + R)) / (2 · ln(1 + T))

   A = the largest listen total among the track's credited artists, R = the
   listen total of its release, T = all listens counted by this selection. It
   lies in [0, 1]; 0 when T = 0.
5. ``sel_ranked``: works ranked by listens desc, then (zero-listen works only)
   held file first, then priority desc (only zero-listen works have one), then
   has-source-audio first, then track key
   ascending (the natural key, so the order does not depend on insertion
   order); position = rowid; with running sums (window functions over one
   external sort) of listens and of the size estimates as original and as
   re-encode.
6. Cuts, by binary search over positions (O(log n) primary-key look-ups): the
   coverage cut (shortest prefix whose cumulative listens reach
   ``ceil(coverage · T)``, exact decimal), the tier boundary, and the
   zero-listen works taken: every held one, then those without a file at or
   above the priority threshold (a priority threshold above 1 takes none).
   Candidates are the prefix up to the cut plus that zero-listen block.

   *Held-only* mode (``take_all``, or no listen data at all: nothing to rank a
   coverage by): only works with a held file are ranked, and every one of them
   is a candidate; the original share defaults to all of them.
7. Budget: any candidate prefix's size is arithmetic on the running sums, so the
   longest prefix within budget is found by binary search too.
8. ``selection`` is rewritten in track id order (rank index rebuilt after);
   the ledger is updated in one pass (see :mod:`.ledger`); bands, tiers and the
   curve are read back by look-ups, not scans.

Tier rule: works ranked within ``original_share`` of listens (the work that
crosses it included) are ``original``; or, with ``tail_threshold``, works with
at least that many listens. Everything after is ``reencode``. In held-only
mode without either option every selected work is ``original``.

Other decisions: T, the denominator of every share, is the listens of
non-excluded tracks (an excluded work cannot be archived, so it cannot be
"missed"): coverage is a share of *matched* listens; listen rows that match no
track are reported by key kind (:mod:`phonotheque.listen_match`), not counted.
Tracks without a held file are selected like any other: their ledger status is
``wanted`` (the archive's acquisition list), and they are estimated from their
duration, or ``assumed_duration_ms`` if unknown.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

import orjson

from phonotheque.catalogue import selection
from phonotheque.catalogue.ledger import apply_ledger, status_counts
from phonotheque.catalogue.store import Store, now_iso
from phonotheque.errors import InputError
from phonotheque.listen_match import listen_match
from phonotheque.progress import ProgressEvent, ProgressFn
from phonotheque.select.options import SelectOptions
from phonotheque.select.report import BandSize, CurvePoint, SelectReport, TierSize
from phonotheque.sources.bounds import track_listens_sql
from phonotheque.workspace import Workspace

# One event per finished step (unit "steps", message: the step's name).
Progress = ProgressFn

_TEMP = (
    "sel_listens", "sel_edge", "sel_grp", "sel_rep", "sel_audio", "sel_track", "sel_art",
    "sel_rel", "sel_prio", "sel_ranked", "sel_over",
)

CURVE_BUCKETS_PER_E = 120  # curve points per factor e of rank (log-spaced)


def select(
    target: Workspace | Store,
    options: SelectOptions | None = None,
    progress: Progress | None = None,
    engine: str | None = None,
) -> SelectReport:
    """Recompute the selection and the ledger; return what was reached.

    The workspace's engine (:data:`ENGINES`) runs it: a SQLite workspace in one
    SQLite write transaction, a columnar one (``phono init --engine duckdb``) in
    DuckDB (:mod:`.columnar_plan`); the results are the same. Readers see the
    previous plan until the new one is complete, and a crash leaves it intact.
    ``engine``, if given, must be the workspace's (the old ``--engine duckdb`` on
    a SQLite workspace now says to convert it).
    """
    opts = options or SelectOptions()
    root = target.root if isinstance(target, Workspace) else target.path.parent
    kind = Workspace(root).engine
    if engine is not None and engine != kind:
        if engine not in ENGINES:
            raise InputError(engine, f"not a select engine (use {' or '.join(ENGINES)})")
        raise InputError(engine, f"this workspace's catalogue is {kind}: select runs on "
                                 "the workspace's engine (for DuckDB, convert the workspace "
                                 "with `phono init DIR --engine duckdb`)")
    run = ENGINES[kind]
    if isinstance(target, Workspace):
        with target.store() as store:
            return run(store, opts, progress)
    return run(target, opts, progress)


def _tune(conn: sqlite3.Connection) -> None:
    # The external sorter spills sorted runs to temporary files once it holds
    # main's cache_size (the store's 64 MiB): memory stays flat whatever the size.
    # (Measured: 512 MiB made the 10 M-work sort slower and tripled the RSS.)
    conn.execute("PRAGMA temp.cache_size = -131072")  # 128 MiB for the temp tables
    conn.execute("PRAGMA threads = 2")  # let the sorter use a helper thread


def _run(store: Store, opts: SelectOptions, progress: Progress | None) -> SelectReport:
    started = time.monotonic()
    conn = store.conn
    _tune(conn)
    with store.transaction():
        try:
            report = _plan(_Plan(conn, opts, now_iso()), progress)
        finally:
            _drop_temp(conn)
    return replace_elapsed(report, time.monotonic() - started)


def _run_columnar(store: Store, opts: SelectOptions, progress: Progress | None) -> SelectReport:
    from phonotheque.select import columnar_plan  # it imports this module's shared parts

    return columnar_plan.run(store, opts, progress)


def replace_elapsed(report: SelectReport, elapsed: float) -> SelectReport:
    from dataclasses import replace

    return replace(report, elapsed_s=round(elapsed, 3))


def _drop_temp(conn: sqlite3.Connection) -> None:
    for name in _TEMP:
        conn.execute(f"DROP TABLE IF EXISTS temp.{name}")


def _scalar(conn: sqlite3.Connection, sql: str, params: Any = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def _first(conn: sqlite3.Connection, table: str, key: str, pred: str, lo: int, hi: int,
           params: dict[str, Any] | None = None) -> int:
    """Smallest ``key`` in [lo, hi] where ``pred`` holds (``pred`` must be monotone
    false…true along ``key``); ``hi + 1`` if none. O(log n) primary-key look-ups."""
    p = dict(params or {})
    sql = f"SELECT {pred} FROM {table} WHERE {key} = :k"
    a, b = lo, hi + 1
    while a < b:
        mid = (a + b) // 2
        p["k"] = mid
        if _scalar(conn, sql, p):
            b = mid
        else:
            a = mid + 1
    return a


INT64_MAX = 2**63 - 1


def ceil_share(share: float, total: int) -> int:
    """``ceil(share · total)`` exactly (share as written in decimal, not its binary float)."""
    return int((Decimal(repr(share)) * total).to_integral_value(rounding=ROUND_CEILING))


@dataclass
class _Plan:
    """What the steps of one selection share: the inputs, and what earlier steps found.

    Positions are rows of ``sel_ranked`` (1 = most listened work); ranks count
    the candidates only (the listened prefix up to the cut, then the zero-listen
    block after ``positive``).
    """

    conn: sqlite3.Connection
    opts: SelectOptions
    started_at: str
    total: int = 0  # T: listens of non-excluded tracks
    works: int = 0  # rows of sel_ranked
    positive: int = 0  # works with listens: positions 1..positive
    cut: int = 0  # coverage cut: positions 1..cut are candidates
    boundary: int = 0  # tier boundary: positions 1..boundary are originals
    zero_taken: int = 0  # zero-listen candidates: positions positive+1..positive+zero_taken
    chosen: int = 0  # candidates within budget: ranks 1..chosen
    chosen_positive: int = 0  # of which have listens
    budget_stopped: bool = False
    covered: int = 0  # listens covered by the chosen works
    last_pos: int = 0  # position of the last chosen work
    mode: str = "coverage"  # see select.report.MODES
    report: SelectReport | None = None

    @property
    def held_only(self) -> bool:
        """Only held works are ranked, and all are candidates (``take_all`` or no listens)."""
        return self.mode != "coverage"

    def x(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    @property
    def sizes(self) -> _Sizes:
        return _Sizes(self.conn, self.boundary)

    def cand_pos(self, rank: int) -> int:
        """Position of the candidate of ``rank``."""
        return rank if rank <= self.cut else self.positive + rank - self.cut

    def cand_bytes(self, rank: int) -> int:
        """Estimated bytes of candidates 1..``rank``."""
        sizes = self.sizes
        if rank <= self.cut:
            return sizes.upto(rank)
        return sizes.upto(self.cut) + sizes.upto(self.cand_pos(rank)) - sizes.upto(self.positive)


# The candidates among sel_ranked's positions (params :c cut, :p positive, :z zero_taken).
_CANDIDATES = "(pos <= :c OR pos BETWEEN :p + 1 AND :p + :z)"


def _listens_per_track(p: _Plan) -> None:
    p.x("CREATE TEMP TABLE sel_listens(track_id INTEGER PRIMARY KEY, listens INTEGER NOT NULL)")
    p.x(f"""INSERT INTO sel_listens SELECT track_id, {track_listens_sql('count')} FROM listens
           WHERE track_id IS NOT NULL GROUP BY track_id""")
    # No listen data at all (matched or not): there is no coverage to rank by, so
    # the archive is the held files (someone archiving their own collection).
    no_listens = _scalar(p.conn, "SELECT 1 FROM listens WHERE count > 0 LIMIT 1") is None
    p.mode = "all" if p.opts.take_all else ("no_listens" if no_listens else "coverage")


def _isrc_groups(p: _Plan) -> None:
    """Connected components of the track–ISRC graph, only where an ISRC is shared."""
    x = p.x
    x("""CREATE TEMP TABLE sel_edge AS
         SELECT ti.isrc AS isrc, ti.track_id AS track_id
         FROM (SELECT isrc FROM track_isrc GROUP BY isrc HAVING count(*) > 1) s
         JOIN track_isrc ti ON ti.isrc = s.isrc
         JOIN track t ON t.id = ti.track_id AND t.excluded = 0""")
    x("CREATE INDEX temp.sel_edge_isrc ON sel_edge(isrc, track_id)")
    x("CREATE INDEX temp.sel_edge_track ON sel_edge(track_id, isrc)")
    x("CREATE TEMP TABLE sel_grp(track_id INTEGER PRIMARY KEY, grp INTEGER NOT NULL)")
    x("INSERT INTO sel_grp SELECT DISTINCT track_id, track_id FROM sel_edge")
    # Label propagation: each track takes the smallest label among tracks sharing
    # one of its ISRCs, until nothing changes (as many rounds as the longest chain).
    while True:
        before = p.conn.total_changes
        x("""UPDATE sel_grp SET grp = nb.m FROM (
               SELECT e1.track_id AS tid, min(g.grp) AS m
               FROM sel_edge e1 JOIN sel_edge e2 ON e2.isrc = e1.isrc
               JOIN sel_grp g ON g.track_id = e2.track_id
               GROUP BY e1.track_id) AS nb
             WHERE nb.tid = sel_grp.track_id AND nb.m < sel_grp.grp""")
        if p.conn.total_changes == before:
            break
    # Singleton "groups" (an ISRC shared only with excluded tracks) are dropped.
    x("""DELETE FROM sel_grp WHERE grp IN
         (SELECT grp FROM sel_grp GROUP BY grp HAVING count(*) = 1)""")


def _track_table(p: _Plan) -> None:
    """A compact per-track table, in track id order; T, the listens of non-excluded tracks."""
    x = p.x
    x("""CREATE TEMP TABLE sel_audio(track_id INTEGER PRIMARY KEY, size INTEGER,
                                     dur INTEGER)""")
    x("""INSERT INTO sel_audio SELECT track_id, max(size), max(duration_ms)
         FROM source_audio GROUP BY track_id""")
    x("""CREATE TEMP TABLE sel_track(
           track_id INTEGER PRIMARY KEY, excluded INTEGER NOT NULL, listens INTEGER NOT NULL,
           key TEXT NOT NULL, release_id INTEGER, size INTEGER, dur INTEGER)""")
    x("""INSERT INTO sel_track
         SELECT t.id, t.excluded, coalesce(l.listens, 0), t.key, t.release_id,
                a.size, coalesce(a.dur, t.duration_ms)
         FROM track t LEFT JOIN sel_listens l ON l.track_id = t.id
                      LEFT JOIN sel_audio a ON a.track_id = t.id""")
    # Sums over tracks with total(): floats never overflow (see sources.bounds).
    p.total = int(_scalar(p.conn, "SELECT total(listens) FROM sel_track WHERE excluded = 0"))


def _secondary_priority(p: _Plan) -> None:
    """Priority of zero-listen tracks from their artists' and release's listens."""
    x = p.x
    x("CREATE TEMP TABLE sel_prio(track_id INTEGER PRIMARY KEY, priority REAL NOT NULL)")
    x("""CREATE TEMP TABLE sel_art(artist_id INTEGER PRIMARY KEY, total INTEGER NOT NULL)""")
    x("""CREATE TEMP TABLE sel_rel(release_id INTEGER PRIMARY KEY, total INTEGER NOT NULL)""")
    has_zero = _scalar(
        p.conn, "SELECT 1 FROM sel_track WHERE excluded = 0 AND listens = 0 LIMIT 1") is not None
    if not has_zero:
        return
    x("""INSERT INTO sel_art
         SELECT ta.artist_id, total(l.listens) FROM track_artist ta
         LEFT JOIN sel_listens l ON l.track_id = ta.track_id
         WHERE ta.artist_id IN (SELECT z.artist_id FROM track_artist z
                                JOIN sel_track s ON s.track_id = z.track_id
                                WHERE s.excluded = 0 AND s.listens = 0)
         GROUP BY ta.artist_id""")
    x("""INSERT INTO sel_rel
         SELECT t.release_id, total(l.listens) FROM track t
         LEFT JOIN sel_listens l ON l.track_id = t.id
         WHERE t.release_id IN (SELECT release_id FROM sel_track
                                WHERE excluded = 0 AND listens = 0)
         GROUP BY t.release_id""")
    denom = 2.0 * math.log1p(p.total) if p.total > 0 else 0.0
    x("""INSERT INTO sel_prio
         SELECT s.track_id,
                CASE WHEN :d > 0 THEN
                  (ln(1 + coalesce((SELECT max(a.total) FROM track_artist ta
                                    JOIN sel_art a ON a.artist_id = ta.artist_id
                                    WHERE ta.track_id = s.track_id), 0))
                   + ln(1 + coalesce(r.total, 0))) / :d
                ELSE 0.0 END
         FROM sel_track s LEFT JOIN sel_rel r ON r.release_id = s.release_id
         WHERE s.excluded = 0 AND s.listens = 0""", {"d": denom})


def _group_representatives(p: _Plan) -> None:
    """Each ISRC group's representative: a held track first, then the ranking's order."""
    p.x("""CREATE TEMP TABLE sel_rep(track_id INTEGER PRIMARY KEY, rep_id INTEGER NOT NULL,
                                     rep_key TEXT NOT NULL, grp_listens INTEGER NOT NULL)""")
    p.x("""INSERT INTO sel_rep
           SELECT track_id, first_value(track_id) OVER w, first_value(key) OVER w,
                  total(listens) OVER (PARTITION BY grp)
           FROM (SELECT g.grp, s.track_id, s.listens, p.priority,
                        s.size IS NOT NULL AS has_audio, s.key
                 FROM sel_grp g JOIN sel_track s ON s.track_id = g.track_id
                 LEFT JOIN sel_prio p ON p.track_id = s.track_id)
           WINDOW w AS (PARTITION BY grp ORDER BY has_audio DESC, listens DESC, priority DESC,
                        key ASC ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)""")


def _ranking(p: _Plan) -> None:
    """Works ranked (pos = rowid, assigned in insertion order), with running sums.

    Besides the running listen sum, two running size estimates (every work as an
    original, every work as a re-encode): any prefix's size under any tier
    boundary is then arithmetic on two look-ups, so neither the budget nor the
    curve needs another pass.
    """
    _group_representatives(p)
    eo, er = _est_sql(p.opts)
    p.x("""CREATE TEMP TABLE sel_ranked(
             pos INTEGER PRIMARY KEY, track_id INTEGER NOT NULL, listens INTEGER NOT NULL,
             priority REAL, held INTEGER NOT NULL, eo INTEGER NOT NULL, er INTEGER NOT NULL,
             cum INTEGER NOT NULL, cum_o INTEGER NOT NULL, cum_r INTEGER NOT NULL)""")
    # Zero-listen works with a held file come before those without one: a file
    # we hold should not lose to one we would have to acquire.
    p.x(f"""INSERT INTO sel_ranked(track_id, listens, priority, held, eo, er, cum, cum_o,
                                   cum_r)
            SELECT track_id, lis, prio, has_audio, eo, er, total(lis) OVER w, sum(eo) OVER w,
                   sum(er) OVER w
            FROM (SELECT track_id, lis, prio, has_audio, key, {eo} AS eo, {er} AS er
                  FROM (SELECT s.track_id, coalesce(r.grp_listens, s.listens) AS lis,
                               CASE WHEN coalesce(r.grp_listens, s.listens) = 0
                                    THEN p.priority END AS prio,
                               s.size IS NOT NULL AS has_audio, s.size, s.dur, s.key
                        FROM sel_track s LEFT JOIN sel_rep r ON r.track_id = s.track_id
                        LEFT JOIN sel_prio p ON p.track_id = s.track_id
                        WHERE s.excluded = 0 AND (r.rep_id IS NULL OR r.rep_id = s.track_id)
                          AND (:held_only = 0 OR s.size IS NOT NULL)))
            WINDOW w AS (ORDER BY lis DESC, (lis = 0 AND has_audio) DESC, prio DESC,
                         has_audio DESC, key ASC ROWS UNBOUNDED PRECEDING)
            ORDER BY lis DESC, (lis = 0 AND has_audio) DESC, prio DESC, has_audio DESC,
                     key ASC""", {"held_only": int(p.held_only)})


def _cuts(p: _Plan) -> None:
    """Coverage cut, tier boundary and zero-listen block, by binary search over positions."""
    conn, opts = p.conn, p.opts
    p.works = int(_scalar(conn, "SELECT coalesce(max(pos), 0) FROM sel_ranked"))
    p.positive = _first(conn, "sel_ranked", "pos", "listens = 0", 1, p.works) - 1
    if p.held_only:  # every ranked work is held, and every one is a candidate
        p.cut = p.positive
    else:
        need = min(ceil_share(opts.coverage, p.total), INT64_MAX)  # an SQLite parameter
        cut = 0 if need <= 0 else _first(conn, "sel_ranked", "pos", "cum >= :n", 1,
                                         p.positive, {"n": need})
        p.cut = min(cut, p.positive)
    share = opts.share_of_originals(p.held_only)
    if opts.tail_threshold is not None:
        p.boundary = _first(conn, "sel_ranked", "pos", "listens < :t", 1, p.works,
                            {"t": opts.tail_threshold}) - 1
    elif share is None:
        p.boundary = p.works
    else:
        oneed = min(ceil_share(share, p.total), INT64_MAX)
        p.boundary = 0 if oneed <= 0 else min(
            _first(conn, "sel_ranked", "pos", "cum >= :n", 1, p.positive, {"n": oneed}),
            p.positive)
    if p.held_only:
        p.zero_taken = p.works - p.positive
    else:  # held works first (all taken unless the threshold is above 1), then by priority
        p.zero_taken = _first(conn, "sel_ranked", "pos",
                              "(:t > 1 OR held = 0) AND coalesce(priority, -1) < :t",
                              p.positive + 1, p.works, {"t": opts.priority_threshold}
                              ) - p.positive - 1


def _budget(p: _Plan) -> None:
    """The longest prefix of the candidates that fits the budget; the rest in sel_over."""
    candidates = p.cut + p.zero_taken
    if p.opts.budget_bytes is not None:
        a, b = 1, candidates + 1  # first rank whose running size exceeds the budget
        while a < b:
            mid = (a + b) // 2
            if p.cand_bytes(mid) > p.opts.budget_bytes:
                b = mid
            else:
                a = mid + 1
        p.chosen = a - 1
    else:
        p.chosen = candidates
    p.budget_stopped = p.chosen < candidates
    p.chosen_positive = min(p.chosen, p.cut)
    p.covered = int(_scalar(p.conn, "SELECT cum FROM sel_ranked WHERE pos = :p",
                            {"p": p.chosen_positive}) or 0)
    p.last_pos = p.cand_pos(p.chosen) if p.chosen else 0
    p.x("CREATE TEMP TABLE sel_over(track_id INTEGER PRIMARY KEY)")
    if p.budget_stopped:
        p.x(f"""INSERT INTO sel_over SELECT track_id FROM sel_ranked
                WHERE {_CANDIDATES} AND pos > :last ORDER BY track_id""",
            {"c": p.cut, "p": p.positive, "z": p.zero_taken, "last": p.last_pos})


def _selection(p: _Plan) -> None:
    """Rewrite the selection table: rank, band, tier and running shares of each chosen work."""
    conn, opts, sizes = p.conn, p.opts, p.sizes
    # Decade bands: band 1 holds the decade of the most listened work; zero-listen
    # works come in the band after the last listened one.
    top = _scalar(conn, "SELECT listens FROM sel_ranked WHERE pos = 1") or 0
    last = _scalar(conn, "SELECT listens FROM sel_ranked WHERE pos = :c",
                   {"c": p.chosen_positive}) or 0
    dtop = len(str(top)) - 1 if top > 0 else 0
    zero_band = dtop - (len(str(last)) - 1) + 2 if last > 0 else 1
    rank = "(CASE WHEN pos <= :c THEN pos ELSE pos - :p + :c END)"
    if opts.bands.kind == "decade":
        band = ("(CASE WHEN listens > 0 THEN :dtop - (length(listens) - 1) + 1 "
                "ELSE :zband END)")
    else:
        band = f"((({rank} - 1) * :nb) / :nsel + 1)"
    # size of works 1..pos taken in rank order, then of the candidates 1..rank
    upto = "(CASE WHEN pos <= :o THEN cum_o ELSE :co + cum_r - :cr END)"
    cum_bytes = f"(CASE WHEN pos <= :c THEN {upto} ELSE :bc + {upto} - :bp END)"
    selection.replace_selection(conn, f"""
            SELECT track_id, {rank}, {band},
                   CASE WHEN :t > 0 THEN min(cum, :cov) * 1.0 / :t ELSE 1.0 END,
                   CASE WHEN pos <= :o THEN 'original' ELSE 'reencode' END,
                   CASE WHEN pos <= :o THEN eo ELSE er END, priority, {cum_bytes}
            FROM sel_ranked WHERE {_CANDIDATES} AND pos <= :last
            ORDER BY track_id""",
        {"o": p.boundary, "c": p.cut, "p": p.positive, "z": p.zero_taken, "last": p.last_pos,
         "dtop": dtop, "zband": zero_band, "nb": opts.bands.n, "nsel": max(p.chosen, 1),
         "t": p.total, "cov": p.covered, "co": sizes.cum_o(p.boundary),
         "cr": sizes.cum_r(p.boundary), "bc": sizes.upto(p.cut), "bp": sizes.upto(p.positive)})


def _ledger(p: _Plan) -> None:
    apply_ledger(p.conn, held_only=p.held_only)


def _record_run(p: _Plan) -> None:
    """Build the report; record the run in select_run unless the plan is unchanged."""
    p.report = _report(p.conn, p.opts, total=p.total, works=p.works, positive=p.positive,
                       cut=p.cut, boundary=p.boundary, zero_taken=p.zero_taken,
                       chosen=p.chosen, covered=p.covered, budget_stopped=p.budget_stopped,
                       mode=p.mode)
    record_run(p.conn, p.started_at, p.opts, p.report)


def record_run(conn: sqlite3.Connection, started_at: str, opts: SelectOptions,
               report: SelectReport) -> None:
    """Record the run in ``select_run`` (catalogue.sqlite) unless its plan is the last one's."""
    run = selection.SelectRun(
        options=orjson.dumps(opts.as_dict()).decode(),
        result=orjson.dumps(report.summary()).decode(),
        curve=orjson.dumps([pt.as_list() for pt in report.curve]).decode(),
    )
    # A run that reaches the same plan as the last one is not a new selection:
    # recording it would change the catalogue's "data as of" time (which the
    # published files carry) although nothing else changed.
    last = selection.last_run(conn)
    if last is None or (last.options, _timeless(last.result), last.curve) != (
            run.options, _timeless(run.result), run.curve):
        selection.add_run(conn, started_at, run)


# The plan, step by step; each is one or a few SQL statements over the TEMP tables.
_PLAN_STEPS: tuple[tuple[str, Callable[[_Plan], None]], ...] = (
    ("listens per track", _listens_per_track),
    ("ISRC groups", _isrc_groups),
    ("track table", _track_table),
    ("secondary priority", _secondary_priority),
    ("ranking", _ranking),
    ("cuts", _cuts),
    ("budget", _budget),
    ("selection", _selection),
    ("ledger", _ledger),
    ("report", _record_run),
)
# The names progress reports, in order (`phono select` counts its bar in them).
STEPS = tuple(name for name, _ in _PLAN_STEPS)


# How to run select, by the workspace's engine (Workspace.engine).
ENGINES: dict[str, Callable[[Store, SelectOptions, Progress | None], SelectReport]] = {
    "sqlite": _run,
    "duckdb": _run_columnar,
}


def _plan(plan: _Plan, progress: Progress | None) -> SelectReport:
    _drop_temp(plan.conn)
    for done, (name, run) in enumerate(_PLAN_STEPS, 1):
        run(plan)
        if progress is not None:
            progress(ProgressEvent("select", done, len(_PLAN_STEPS), "steps", name))
    assert plan.report is not None
    return plan.report


def _timeless(result_json: str) -> dict[str, Any]:
    """A run's plan: its result without timing and without the ledger's counts.

    The counts move when the audio stage records outcomes (todo -> success), but
    the plan (what is selected, in which tier and band) is the same.
    """
    result = orjson.loads(result_json)
    result.pop("elapsed_s", None)
    result.pop("statuses", None)
    return result


def _est_sql(opts: SelectOptions) -> tuple[str, str]:
    """SQL for a work's estimated bytes as an original and as a re-encode.

    Original: the held file's size, else duration × assumed original bitrate.
    Re-encode: duration × Opus bitrate, but never more than the held file (a
    re-encode that would grow the file keeps it).
    """
    dur = f"coalesce(dur, {int(opts.assumed_duration_ms)})"
    opus = f"(({dur} * {int(opts.opus_bitrate)}) / 8000)"
    orig = f"coalesce(size, ({dur} * {int(opts.original_bitrate)}) / 8000)"
    return orig, f"min({opus}, coalesce(size, {opus}))"


class _Sizes:
    """Running size estimates of the ranked works, by primary-key look-ups."""

    def __init__(self, conn: sqlite3.Connection, boundary: int) -> None:
        self.conn = conn
        self.boundary = boundary

    def _col(self, col: str, pos: int) -> int:
        if pos <= 0:
            return 0
        return int(_scalar(self.conn, f"SELECT {col} FROM sel_ranked WHERE pos = :p",
                           {"p": pos}) or 0)

    def cum_o(self, pos: int) -> int:
        return self._col("cum_o", pos)

    def cum_r(self, pos: int) -> int:
        return self._col("cum_r", pos)

    def upto(self, pos: int) -> int:
        """Bytes of works 1..pos, originals up to the tier boundary, re-encodes after."""
        b = min(pos, self.boundary)
        return self.cum_o(b) + self.cum_r(pos) - self.cum_r(b)


def _report(conn: sqlite3.Connection, opts: SelectOptions, *, total: int, works: int,
            positive: int, cut: int, boundary: int, zero_taken: int, chosen: int,
            covered: int, budget_stopped: bool, mode: str) -> SelectReport:
    q = conn.execute
    tracks, excluded, grouped = q(
        """SELECT count(*), coalesce(sum(excluded), 0),
                  (SELECT count(*) FROM sel_rep WHERE rep_id != track_id)
           FROM sel_track""").fetchone()
    excluded_listens = int(_scalar(
        conn, "SELECT total(listens) FROM sel_track WHERE excluded = 1"))
    matching = listen_match(conn)
    # Tier and band are non-decreasing along rank, so their extents are found by
    # binary search on the rank index instead of a GROUP BY over every row.
    def at(col: str, rank: int) -> Any:
        return _scalar(conn, f"SELECT {col} FROM selection WHERE rank = :r", {"r": rank})

    originals = _first(conn, "selection", "rank", "tier = 'reencode'", 1, chosen) - 1
    orig_bytes = int(at("cum_bytes", originals) or 0)
    all_bytes = int(at("cum_bytes", chosen) or 0)
    tiers = {"original": TierSize("original", originals, orig_bytes),
             "reencode": TierSize("reencode", chosen - originals, all_bytes - orig_bytes)}
    bands: list[BandSize] = []
    first = 1
    while first <= chosen:
        b = int(at("band", first))
        end = _first(conn, "selection", "rank", "band > :b", first, chosen, {"b": b}) - 1
        start_bytes = int(at("cum_bytes", first - 1) or 0) if first > 1 else 0
        bands.append(BandSize(b, end - first + 1, int(at("cum_bytes", end)) - start_bytes,
                              float(at("cum_share", end))))
        first = end + 1
    curve = _curve(conn, boundary, total)
    return SelectReport(
        options=opts,
        tracks=int(tracks),
        excluded=int(excluded),
        works=works,
        isrc_duplicates=int(grouped),
        works_with_listens=positive,
        total_listens=total,
        excluded_listens=excluded_listens,
        unresolved_listens=matching.unmatched,
        listen_match=matching,
        mode=mode,
        selected=chosen,
        selected_zero_listen=max(chosen - cut, 0),
        coverage_cut=cut,
        tier_boundary=boundary,
        zero_listen_above_threshold=zero_taken,
        covered_listens=covered,
        covered_share=(covered / total) if total else 1.0,
        budget_stopped=budget_stopped,
        tiers=tiers,
        est_bytes=all_bytes,
        statuses=status_counts(conn),
        bands=bands,
        curve=curve,
        elapsed_s=0.0,
    )


def _curve(conn: sqlite3.Connection, boundary: int, total: int) -> list[CurvePoint]:
    """Cumulative share against rank and against bytes (as if every work were taken
    in rank order, with its tier) at log-spaced ranks: a few thousand look-ups."""
    works = int(_scalar(conn, "SELECT coalesce(max(pos), 0) FROM sel_ranked"))
    sizes = _Sizes(conn, boundary)
    points = [CurvePoint(0, 0.0, 0)]
    for mark in curve_marks(works):
        cum = int(_scalar(conn, "SELECT cum FROM sel_ranked WHERE pos = :p", {"p": mark}))
        points.append(CurvePoint(mark, (cum / total) if total else 1.0, sizes.upto(mark)))
    return points


def curve_marks(works: int) -> list[int]:
    """The ranks the curve is drawn at: log-spaced, ascending, from 1 to ``works``."""
    return sorted({min(works, round(math.exp(i / CURVE_BUCKETS_PER_E)))
                   for i in range(int(math.log(max(works, 1)) * CURVE_BUCKETS_PER_E) + 2)}
                  - {0})
