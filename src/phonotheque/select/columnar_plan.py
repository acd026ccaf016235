"""Select on a columnar workspace: all ten steps of :mod:`.plan` in DuckDB.

A workspace created (or converted) with ``phono init --engine duckdb`` keeps its
bulk tables in catalogue.duckdb; select reads them there, on every core, and
writes ``selection`` and ``ledger`` there too (owner:
:mod:`phonotheque.catalogue.bulk_selection`), set-based: no row passes through
Python. Steps 1-5 are :mod:`.columnar_rank`'s SQL; the later ones are here, with
the rules and results of :mod:`.plan` (tested to be equal):

- cuts and budget are aggregates over ``sel_ranked`` (the first position where a
  condition holds is its ``min(pos)``: one parallel scan where SQLite binary-searches
  its primary key);
- the selection, then the ledger, are rewritten in track id order inside one
  DuckDB transaction, which commits once the report is computed;
- the run (options, result, curve) is then recorded in catalogue.sqlite's
  ``select_run`` through its owner (:mod:`phonotheque.catalogue.selection`), as
  the SQLite engine does. The two files cannot share a transaction: a crash
  between the two commits leaves the new plan without its run record, which the
  next select writes (it only skips a run whose plan equals the last recorded one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phonotheque.catalogue import bulk, bulk_selection, columnar
from phonotheque.catalogue.store import Store, now_iso
from phonotheque.listen_match import listen_match
from phonotheque.progress import ProgressEvent
from phonotheque.select import columnar_rank
from phonotheque.select.options import SelectOptions
from phonotheque.select.plan import (
    INT64_MAX,
    STEPS,
    Progress,
    ceil_share,
    curve_marks,
    record_run,
    replace_elapsed,
)
from phonotheque.select.report import BandSize, CurvePoint, SelectReport, TierSize


@dataclass
class _Plan:
    """What the steps share (the meaning of each field: :class:`.plan._Plan`)."""

    con: columnar.Connection
    opts: SelectOptions
    found: dict[str, Any] = field(default_factory=dict)  # mode, total (steps 1-5)
    works: int = 0
    positive: int = 0
    cut: int = 0
    boundary: int = 0
    zero_taken: int = 0
    chosen: int = 0
    chosen_positive: int = 0
    budget_stopped: bool = False
    covered: int = 0
    last_pos: int = 0
    in_transaction: bool = False  # the selection's, committed with the report
    report: SelectReport | None = None

    @property
    def mode(self) -> str:
        return str(self.found["mode"])

    @property
    def total(self) -> int:
        return int(self.found["total"])

    @property
    def held_only(self) -> bool:
        return self.mode != "coverage"

    def one(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        row = self.con.execute(sql, bulk_selection.bind(sql, params or {})).fetchone()
        return None if row is None else row[0]

    def ranked(self, positions: set[int]) -> dict[int, tuple[int, int, int, int]]:
        """``pos -> (listens, cum, cum_o, cum_r)`` of ``sel_ranked`` at ``positions``
        (0 and positions past the end read as zeros), in one scan."""
        # The positions as literals (integers we computed): a constant IN list is a
        # filter the scan checks against each row group's min/max of pos (the table is
        # stored in pos order), where a join with a list parameter reads every row.
        wanted = ", ".join(str(int(pos)) for pos in sorted(positions)) or "NULL"
        got = {int(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in self.con.execute(
            f"SELECT pos, listens, cum, cum_o, cum_r FROM sel_ranked WHERE pos IN ({wanted})"
        ).fetchall()}
        return {p: got.get(p, (0, 0, 0, 0)) for p in positions}


class _Sizes:
    """Bytes of works 1..pos (originals up to the tier boundary, re-encodes after), from
    running sums read once (:meth:`_Plan.ranked`)."""

    def __init__(self, at: dict[int, tuple[int, int, int, int]], boundary: int) -> None:
        self.at = at
        self.boundary = boundary

    def upto(self, pos: int) -> int:
        if pos <= 0:
            return 0
        b = min(pos, self.boundary)
        cum_o_b = self.at[b][2] if b > 0 else 0
        cum_r_b = self.at[b][3] if b > 0 else 0
        return cum_o_b + self.at[pos][3] - cum_r_b


# The candidates among sel_ranked's positions, their rank and their running bytes
# (the same expressions as plan.py's; $o boundary, $c cut, $p positive, $z zero_taken,
# $co/$cr the running sums at the boundary, $bc/$bp the bytes up to the cut/positive).
_CANDIDATES = "(pos <= $c OR pos BETWEEN $p + 1 AND $p + $z)"
_RANK = "(CASE WHEN pos <= $c THEN pos ELSE pos - $p + $c END)"
_UPTO = "(CASE WHEN pos <= $o THEN cum_o ELSE $co + cum_r - $cr END)"
_CUM_BYTES = f"(CASE WHEN pos <= $c THEN {_UPTO} ELSE $bc + {_UPTO} - $bp END)"


def _size_params(p: _Plan) -> dict[str, int]:
    at = p.ranked({p.boundary, p.cut, p.positive} - {0})
    sizes = _Sizes(at, p.boundary)
    b = at.get(p.boundary, (0, 0, 0, 0))
    return {"o": p.boundary, "c": p.cut, "p": p.positive, "z": p.zero_taken,
            "co": b[2], "cr": b[3], "bc": sizes.upto(p.cut), "bp": sizes.upto(p.positive)}


def _first(p: _Plan, pred: str, lo: int, hi: int, params: dict[str, Any] | None = None) -> int:
    """Smallest position in [lo, hi] where ``pred`` holds, else ``hi + 1`` (the
    conditions are monotone along the ranking, as plan._first requires)."""
    got = p.one(f"SELECT min(pos) FROM sel_ranked WHERE pos BETWEEN $lo AND $hi AND ({pred})",
                {**(params or {}), "lo": lo, "hi": hi})
    return hi + 1 if got is None else int(got)


def _cuts(p: _Plan) -> None:
    """Coverage cut, tier boundary and zero-listen block (plan._cuts)."""
    opts = p.opts
    row = p.con.execute("SELECT count(*), count(*) FILTER (WHERE listens > 0) "
                        "FROM sel_ranked").fetchone()
    assert row is not None
    p.works, p.positive = int(row[0]), int(row[1])
    if p.held_only:
        p.cut = p.positive
    else:
        need = min(ceil_share(opts.coverage, p.total), INT64_MAX)
        cut = 0 if need <= 0 else _first(p, "cum >= $n", 1, p.positive, {"n": need})
        p.cut = min(cut, p.positive)
    share = opts.share_of_originals(p.held_only)
    if opts.tail_threshold is not None:
        p.boundary = _first(p, "listens < $t", 1, p.works, {"t": opts.tail_threshold}) - 1
    elif share is None:
        p.boundary = p.works
    else:
        oneed = min(ceil_share(share, p.total), INT64_MAX)
        p.boundary = 0 if oneed <= 0 else min(
            _first(p, "cum >= $n", 1, p.positive, {"n": oneed}), p.positive)
    if p.held_only:
        p.zero_taken = p.works - p.positive
    else:  # held works first (all taken unless the threshold is above 1), then by priority
        p.zero_taken = _first(p, "($t > 1 OR held = 0) AND coalesce(priority, -1) < $t",
                              p.positive + 1, p.works,
                              {"t": float(opts.priority_threshold)}) - p.positive - 1


def _budget(p: _Plan) -> None:
    """The longest candidate prefix within the budget (its running bytes never decrease)."""
    candidates = p.cut + p.zero_taken
    params = _size_params(p)
    if p.opts.budget_bytes is not None and candidates:
        over = p.one(f"SELECT min({_RANK}) FROM sel_ranked WHERE {_CANDIDATES} "
                     f"AND {_CUM_BYTES} > $budget", {**params, "budget": p.opts.budget_bytes})
        p.chosen = candidates if over is None else int(over) - 1
    else:
        p.chosen = candidates
    p.budget_stopped = p.chosen < candidates
    p.chosen_positive = min(p.chosen, p.cut)
    p.last_pos = (p.chosen if p.chosen <= p.cut else p.positive + p.chosen - p.cut
                  ) if p.chosen else 0
    p.covered = p.ranked({p.chosen_positive})[p.chosen_positive][1] if p.chosen_positive else 0
    p.con.execute(f"CREATE OR REPLACE TABLE {columnar_rank.WORK}.sel_over(track_id BIGINT)")
    if p.budget_stopped:
        sql = (f"INSERT INTO sel_over SELECT track_id FROM sel_ranked "
               f"WHERE {_CANDIDATES} AND pos > $last")
        p.con.execute(sql, bulk_selection.bind(sql, {**params, "last": p.last_pos}))


def _selection(p: _Plan) -> None:
    """Rewrite the selection (plan._selection), in the transaction the ledger joins."""
    opts = p.opts
    at = p.ranked({1, p.chosen_positive} - {0})
    top = at[1][0] if 1 in at else 0
    last = at[p.chosen_positive][0] if p.chosen_positive else 0
    dtop = len(str(top)) - 1 if top > 0 else 0
    zero_band = dtop - (len(str(last)) - 1) + 2 if last > 0 else 1
    if opts.bands.kind == "decade":
        band = ("(CASE WHEN listens > 0 THEN $dtop - (length(CAST(listens AS VARCHAR)) - 1) + 1 "
                "ELSE $zband END)")
    else:
        band = f"((({_RANK} - 1) * $nb) // $nsel + 1)"
    p.con.execute("BEGIN TRANSACTION")
    p.in_transaction = True
    bulk_selection.replace_selection(p.con, f"""
            SELECT track_id, {_RANK}, {band},
                   CASE WHEN $t > 0 THEN least(cum, $cov) * 1.0 / $t ELSE 1.0 END,
                   CASE WHEN pos <= $o THEN 'original' ELSE 'reencode' END,
                   CASE WHEN pos <= $o THEN eo ELSE er END, priority, {_CUM_BYTES}
            FROM sel_ranked WHERE {_CANDIDATES} AND pos <= $last
            ORDER BY track_id""",
        {**_size_params(p), "last": p.last_pos, "dtop": dtop, "zband": zero_band,
         "nb": opts.bands.n, "nsel": max(p.chosen, 1), "t": p.total, "cov": p.covered})


def _ledger(p: _Plan) -> None:
    bulk_selection.apply_ledger(p.con, held_only=p.held_only)


def _report(p: _Plan) -> None:
    """What the selection reached (plan._report), read from the new tables; then commit."""
    con = p.con
    tracks, excluded = con.execute(
        "SELECT count(*), coalesce(sum(excluded), 0) FROM sel_track").fetchone() or (0, 0)
    grouped = p.one("SELECT count(*) FROM sel_rep WHERE rep_id != track_id")
    excluded_listens = int(p.one(
        "SELECT CAST(coalesce(sum(listens), 0) AS DOUBLE) FROM sel_track WHERE excluded = 1"))
    matching = listen_match(con)
    # Tiers and bands are contiguous runs of ranks (non-decreasing along rank).
    originals, orig_bytes, all_bytes = con.execute(
        """SELECT count(*) FILTER (WHERE tier = 'original'),
                  coalesce(arg_max(cum_bytes, rank) FILTER (WHERE tier = 'original'), 0),
                  coalesce(arg_max(cum_bytes, rank), 0)
           FROM selection""").fetchone() or (0, 0, 0)
    tiers = {"original": TierSize("original", int(originals), int(orig_bytes)),
             "reencode": TierSize("reencode", p.chosen - int(originals),
                                  int(all_bytes) - int(orig_bytes))}
    bands: list[BandSize] = []
    before = 0
    for band, first, end, end_bytes, end_share in con.execute(
            """SELECT band, min(rank), max(rank), arg_max(cum_bytes, rank),
                      arg_max(cum_share, rank)
               FROM selection GROUP BY band ORDER BY band""").fetchall():
        bands.append(BandSize(int(band), int(end) - int(first) + 1, int(end_bytes) - before,
                              float(end_share)))
        before = int(end_bytes)
    statuses = bulk_selection.status_counts(con)
    curve = _curve(p)
    con.execute("COMMIT")
    p.in_transaction = False
    p.report = SelectReport(
        options=p.opts,
        tracks=int(tracks),
        excluded=int(excluded),
        works=p.works,
        isrc_duplicates=int(grouped),
        works_with_listens=p.positive,
        total_listens=p.total,
        excluded_listens=excluded_listens,
        unresolved_listens=matching.unmatched,
        listen_match=matching,
        mode=p.mode,
        selected=p.chosen,
        selected_zero_listen=max(p.chosen - p.cut, 0),
        coverage_cut=p.cut,
        tier_boundary=p.boundary,
        zero_listen_above_threshold=p.zero_taken,
        covered_listens=p.covered,
        covered_share=(p.covered / p.total) if p.total else 1.0,
        budget_stopped=p.budget_stopped,
        tiers=tiers,
        est_bytes=int(all_bytes),
        statuses=statuses,
        bands=bands,
        curve=curve,
        elapsed_s=0.0,
    )


def _curve(p: _Plan) -> list[CurvePoint]:
    """Share and bytes at plan.curve_marks' ranks, read in one scan."""
    marks = curve_marks(p.works)
    at = p.ranked(set(marks) | ({p.boundary} - {0}))
    sizes = _Sizes(at, p.boundary)
    points = [CurvePoint(0, 0.0, 0)]
    for mark in marks:
        cum = at[mark][1]
        points.append(CurvePoint(mark, (cum / p.total) if p.total else 1.0, sizes.upto(mark)))
    return points


_LATER_STEPS = (("cuts", _cuts), ("budget", _budget), ("selection", _selection),
                ("ledger", _ledger), ("report", _report))


def run(store: Store, opts: SelectOptions, progress: Progress | None) -> SelectReport:
    """Select on the columnar workspace whose catalogue.sqlite ``store`` holds."""
    started, started_at = time.monotonic(), now_iso()
    names = [name for name, _ in columnar_rank.STEPS] + [name for name, _ in _LATER_STEPS]
    assert tuple(names) == STEPS, "the DuckDB steps must be plan.STEPS, in order"

    def done(i: int) -> None:
        if progress is not None:
            progress(ProgressEvent("select", i, len(STEPS), "steps", STEPS[i - 1]))

    root = store.path.parent
    con = bulk.open_bulk(root)
    try:
        tracks = con.execute("SELECT count(*) FROM track").fetchone()
        in_memory = columnar_rank.work_in_memory(int(tracks[0]) if tracks else 0,
                                                 bulk.stage_memory())
        with columnar_rank.work_database(con, bulk.temp_directory(root), in_memory):
            p = _select(con, opts, done)
    except columnar.Error as exc:
        raise columnar.failed(bulk.path(store.path.parent), "selecting", exc) from exc
    finally:
        con.close()
    assert p.report is not None
    with store.transaction():
        record_run(store.conn, started_at, opts, p.report)
    done(len(STEPS))
    return replace_elapsed(p.report, time.monotonic() - started)


def _select(con: columnar.Connection, opts: SelectOptions,
            done: Callable[[int], None]) -> _Plan:
    """Steps 1-10 on DuckDB; the selection and ledger commit in their own transaction."""
    p = _Plan(con, opts)
    for i, (_, step) in enumerate(columnar_rank.STEPS, 1):
        step(con, opts, p.found)
        done(i)
    for i, (name, later) in enumerate(_LATER_STEPS, len(columnar_rank.STEPS) + 1):
        try:
            later(p)
        except BaseException:
            if p.in_transaction:
                con.execute("ROLLBACK")
            raise
        if name != "report":
            done(i)
    return p
