"""Select on a columnar workspace (DuckDB) reaches exactly what the SQLite engine reaches.

Each scenario is one catalogue built through the Store and one set of options; a
copy of the workspace is converted (`phono init --engine duckdb`, ids kept) and
both are selected: the selection, the ledger, the recorded run, the report and the
progress must be identical. (Every exact-expectation test of tests/test_select.py and
the property test also run on a columnar workspace under ``-m slow``: see
tests/select_engines.py.)
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from phonotheque.catalogue import bulk
from phonotheque.cli import main
from phonotheque.errors import InputError
from phonotheque.model import Exclusion, Record
from phonotheque.progress import ProgressEvent
from phonotheque.select import STEPS, BandScheme, SelectOptions, select
from phonotheque.workspace import Workspace
from tests.select_helpers import T, lb_top_records, lb_user_records, plan_tables, records

GONE = "0f0e0d0c-0b0a-4908-8706-050403020100"
HAND = [  # ISRC groups (one held), zero-listen works with and without files, an exclusion
    T("a", 900, isrcs=("USAAA0000001",)), T("a2", 50, isrcs=("USAAA0000001",), audio_size=4_000_000),
    T("b", 400, isrcs=("USBBB0000001",)), T("b2", 0, isrcs=("USBBB0000001", "USCCC0000001")),
    T("b3", 7, isrcs=("USCCC0000001",)), T("c", 120, audio_size=30_000_000, duration_ms=None),
    T("d", 30, artist="x", release="y"), T("e", 0, artist="x", audio_size=9_000_000),
    T("f", 0, artist="x", release="y"), T("g", 0, artist="z", release="w", duration_ms=None),
    T("h", 5, audio_size=1_000), T("i", 0), T("gone", 700, mbid=GONE),
    T("j", 60, duration_ms=201_007),  # sizes with a remainder: integer division matters
]

SCENARIOS: dict[str, tuple[list[Record], SelectOptions]] = {
    "lb top, default": (lb_top_records(), SelectOptions()),
    "lb top, budget and tail": (lb_top_records(), SelectOptions(
        coverage=0.9, budget_bytes=200_000_000, tail_threshold=1_000_000)),
    "lb user, quantiles": (lb_user_records(), SelectOptions(
        coverage=0.8, original_share=0.3, bands=BandScheme.parse("quantiles:4"))),
    "hand, groups and priority": (records(HAND), SelectOptions(priority_threshold=0.2)),
    "hand, all held, budget": (records(HAND), SelectOptions(take_all=True,
                                                            budget_bytes=35_000_000)),
    "hand, nothing zero": (records(HAND), SelectOptions(coverage=0.5, priority_threshold=2)),
}


def _pair(tmp_path: Path, recs: list[Record], exclude: bool = False
          ) -> dict[str, Workspace]:
    """A SQLite workspace with ``recs`` and a columnar copy of it."""
    base = Workspace.create(tmp_path / "sqlite")
    with base.store() as store:
        store.write(recs)
        if exclude:
            store.add_exclusion(Exclusion("mbid", GONE, "takedown"))
    shutil.copytree(base.root, tmp_path / "duckdb")
    return {"sqlite": base, "duckdb": Workspace.create(tmp_path / "duckdb", engine="duckdb")}


def _runs(ws: Workspace) -> list[tuple[str, dict[str, Any], str]]:
    with sqlite3.connect(ws.catalogue) as conn:
        return [(o, {k: v for k, v in orjson.loads(r).items() if k != "elapsed_s"}, c)
                for o, r, c in conn.execute("SELECT options, result, curve FROM select_run")]


def _state(ws: Workspace) -> dict[str, Any]:
    tables = plan_tables(ws.root)
    return {"selection": tables["selection"],
            "ledger": [row[:3] for row in tables["ledger"]],  # updated_at: the clock's
            "runs": _runs(ws)}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_columnar_workspace_reaches_the_same_plan(name: str, tmp_path: Path) -> None:
    recs, opts = SCENARIOS[name]
    pair = _pair(tmp_path, recs, exclude=name.startswith("hand"))
    results = {}
    for engine, ws in pair.items():
        assert ws.engine == engine
        events: list[ProgressEvent] = []
        report = select(ws, opts, progress=events.append)
        summary = {k: v for k, v in report.summary().items() if k != "elapsed_s"}
        results[engine] = (_state(ws), summary, report.curve,
                           [(e.done, e.total, e.message) for e in events])
    assert results["duckdb"][0] == results["sqlite"][0]
    assert results["duckdb"][1:] == results["sqlite"][1:]
    assert results["sqlite"][0]["selection"], "the scenario selects nothing: it tests nothing"
    assert [m for _d, _t, m in results["duckdb"][3]] == list(STEPS)
    # the columnar workspace's plan lives in catalogue.duckdb only
    with sqlite3.connect(pair["duckdb"].catalogue) as conn:
        assert conn.execute("SELECT count(*) FROM selection").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (0,)


HUGE = [T(f"h{i}", 10 + i, audio_size=1 << 61) for i in range(3)] + [T("small", 3, audio_size=1_000)]


@pytest.mark.parametrize("case", ["batches of two rows", "bytes past int64 bounds"])
def test_columnar_running_sums_match_sqlite(case: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranking's positions and running sums are summed as arrays, a batch of rows at a
    time (the sums carried across batches), unless a partial sum could leave int64: then
    DuckDB's window sums them exactly. Both give the SQLite plan."""
    from phonotheque.select import columnar_rank

    took: list[bool] = []
    by_arrays = columnar_rank._running_sums_by_arrays
    monkeypatch.setattr(columnar_rank, "_running_sums_by_arrays",
                        lambda con: took.append(by_arrays(con)) or took[-1])
    if case == "batches of two rows":
        monkeypatch.setattr(columnar_rank, "SUM_BATCH_ROWS", 2)
        recs, opts = SCENARIOS["lb top, budget and tail"]
    else:  # 4 works, 3 of 2^61 bytes: the sum fits int64, 4 x 2^61 would not
        recs, opts = records(HUGE), SelectOptions(take_all=True)
    pair = _pair(tmp_path, recs)
    reports = {engine: select(ws, opts) for engine, ws in pair.items()}
    assert took == [case == "batches of two rows"]
    assert _state(pair["duckdb"]) == _state(pair["sqlite"])
    assert ({k: v for k, v in reports["duckdb"].summary().items() if k != "elapsed_s"}
            == {k: v for k, v in reports["sqlite"].summary().items() if k != "elapsed_s"})
    assert reports["duckdb"].curve == reports["sqlite"].curve
    assert _state(pair["sqlite"])["selection"]


# MBIDs at the edges of the UUID range (the sign bit of its 128-bit integer) and in the
# middle, all with the same listens (and zero-listen ones with the same priority), so that
# only the keys order them.
EDGE_KEYS = ("00000000-0000-4000-8000-000000000000", "7fffffff-ffff-4fff-bfff-ffffffffffff",
             "80000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff",
             "a0000000-0000-4000-8000-000000000001", "0f0e0d0c-0b0a-4908-8706-050403020101")
KEY_MIXES = {  # name -> (other keys beside EDGE_KEYS, the order _key_order must choose)
    "MBIDs only": ((), "ku"),
    "own files' keys after every MBID": (("tags:0a", "tags:ff", "zz", "g"), "ku NULLS LAST, kt"),
    # 'A' and '9' sort between MBIDs (an upper-case MBID is not canonical text)
    "keys among the MBIDs": (("tags:0a", "A0000000-0000-4000-8000-000000000000", "9", "b-own"),
                             "coalesce(CAST(ku AS VARCHAR), kt)"),
}


@pytest.mark.parametrize("mix", sorted(KEY_MIXES))
def test_columnar_ties_follow_the_key_text_order(mix: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Ties in listens and priority fall back to the track key in text order, as in the
    SQLite plan, whichever way the columnar ranking sorts the keys (as UUIDs, UUIDs then
    text, or text)."""
    from phonotheque.select import columnar_rank

    others, order = KEY_MIXES[mix]
    keys = [*EDGE_KEYS, *others]
    specs = [T(k, 40, audio_size=1_000 if i % 3 == 0 else None) for i, k in enumerate(keys)]
    specs += [T(f"{k[:-1]}9" if k[0] in "0123456789abcdef" and len(k) == 36 else k + "-zero", 0,
                audio_size=1_000 if i % 2 else None) for i, k in enumerate(keys)]
    for spec in specs[:2]:  # one ISRC group: its representative is chosen by key too
        spec.isrcs = ("USKEY0000001",)
    chosen: list[str] = []
    key_order = columnar_rank._key_order
    monkeypatch.setattr(columnar_rank, "_key_order",
                        lambda con: chosen.append(key_order(con)) or chosen[-1])
    opts = SelectOptions(coverage=1.0, priority_threshold=0.0)
    pair = _pair(tmp_path, records(specs))
    reports = {engine: select(ws, opts) for engine, ws in pair.items()}
    assert chosen == [order]
    state = _state(pair["sqlite"])
    assert len(state["selection"]) == len(specs) - 1  # every work (one group of two) ranked
    assert _state(pair["duckdb"]) == state
    assert ({k: v for k, v in reports["duckdb"].summary().items() if k != "elapsed_s"}
            == {k: v for k, v in reports["sqlite"].summary().items() if k != "elapsed_s"})


# Run in a child process: a select that hangs must fail the test, not the suite.
_SUMS_INTO_A_FILE = """
import sys
from pathlib import Path

import duckdb

from phonotheque.select import columnar_rank as cr

tmp = Path(sys.argv[1])
con = duckdb.connect(str(tmp / "main.duckdb"))
con.execute("SET checkpoint_threshold = '1KB'")  # what 100 M rows reach at the default
cr.SUM_BATCH_ROWS = 1000
with cr.work_database(con, tmp, in_memory=False):
    con.execute(f\"\"\"CREATE TABLE {cr.WORK}.sel_order AS
        SELECT range AS track_id, range % 7 AS lis, CAST(NULL AS DOUBLE) AS prio,
               range % 2 = 0 AS has_audio, range % 5 AS eo, range % 3 AS er
        FROM range(20000)\"\"\")
    assert cr._running_sums_by_arrays(con)
    print(con.execute("SELECT count(*), max(pos), max(cum), max(cum_o), max(cum_r), "
                      "count(*) FILTER (WHERE pos <> track_id + 1) FROM sel_ranked").fetchone())
"""


def test_columnar_running_sums_into_a_scratch_file_finish(tmp_path: Path) -> None:
    """At 100 M tracks select's working tables live in a scratch file. Each batch of the
    running sums committed on its own, so DuckDB checkpointed that file while the ranking
    was still being read from it, and the checkpoint waited for the read forever: select
    hung at 100 M, spinning one core (found by the 100 M run; tiny tables never reach the
    checkpoint threshold, hence its 1 KB here)."""
    done = subprocess.run([sys.executable, "-c", _SUMS_INTO_A_FILE, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    n = 20000
    assert done.stdout.split() == (
        f"({n}, {n}, {float(sum(i % 7 for i in range(n)))}, {sum(i % 5 for i in range(n))}, "
        f"{sum(i % 3 for i in range(n))}, 0)").split()


def test_columnar_select_reads_the_columnar_tables_and_reselects_in_place(
        tmp_path: Path) -> None:
    ws = _pair(tmp_path, lb_top_records())["duckdb"]
    # the converted workspace's SQLite bulk tables are not what select reads
    with sqlite3.connect(ws.catalogue) as conn:
        for table in ("listens", "track_isrc", "track_artist", "track"):
            conn.execute(f"DELETE FROM {table}")
    report = select(ws, SelectOptions(coverage=0.9))
    assert (report.tracks, report.selected, report.covered_listens) == (20, 14, 24_819_038)
    first = plan_tables(ws.root)
    assert len(first["ledger"]) == 20 and len(first["selection"]) == 14
    assert [r[0] for r in first["ledger"]] == sorted(r[0] for r in first["ledger"])
    # the same plan again: no row changes (updated_at kept), no second run recorded
    select(ws, SelectOptions(coverage=0.9))
    assert plan_tables(ws.root) == first
    assert len(_runs(ws)) == 1
    # another plan replaces the selection and moves only the statuses that change
    report = select(ws, SelectOptions(coverage=0.5))
    again = plan_tables(ws.root)
    assert len(again["selection"]) == report.selected < 14
    assert len(again["ledger"]) == 20 and len(_runs(ws)) == 2
    kept = {r[0]: r for r in first["ledger"]}
    for row in again["ledger"]:
        assert (row == kept[row[0]]) == (row[1:3] == kept[row[0]][1:3])
    # the ledger is rebuilt beside the old one and swapped in: the schema stays the
    # migration's (columns, NOT NULL), nothing is left beside it
    con = bulk.open_bulk(ws.root, readonly=True)
    try:
        tables = dict(con.execute("SELECT table_name, sql FROM duckdb_tables() WHERE "
                                  "database_name = current_database()").fetchall())
    finally:
        con.close()
    fresh = bulk.open_bulk(ws.root, create=True, file=tmp_path / "fresh.duckdb")
    try:
        schema = dict(fresh.execute("SELECT table_name, sql FROM duckdb_tables() WHERE "
                                    "database_name = current_database()").fetchall())
    finally:
        fresh.close()
    assert tables == schema


def test_the_columnar_ledger_written_range_by_range_is_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger is rewritten a range of track ids at a time (bounded memory); with
    ranges of 2 ids, groups whose representative lies in another range, tracks over
    the budget and a re-selection over an old ledger still give the SQLite ledger."""
    monkeypatch.setattr(bulk, "RANGE_IDS", 2)
    pair = _pair(tmp_path, records(HAND), exclude=True)
    details = set()
    for opts in (SelectOptions(priority_threshold=0.2, budget_bytes=5_000_000),
                 SelectOptions(take_all=True, budget_bytes=35_000_000),
                 SelectOptions(coverage=0.5, priority_threshold=2)):
        states = {}
        for engine, ws in pair.items():
            select(ws, opts)
            states[engine] = [r[:3] for r in plan_tables(ws.root)["ledger"]]
        assert states["duckdb"] == states["sqlite"]
        assert len(states["sqlite"]) == len(HAND)
        details |= {(r[1], r[2]) for r in states["sqlite"]}
    statuses = {status for status, _ in details}
    assert {"skipped_isrc_has_download", "excluded", "todo"} <= statuses, statuses
    assert ("skipped_low_priority", "over_budget") in details, details


def _mark_ledger(ws: Workspace) -> None:
    """Put a comment on the ledger table: a ledger rebuilt and swapped in has none."""
    con = bulk.open_bulk(ws.root)
    try:
        con.execute("COMMENT ON TABLE ledger IS 'this table'")
    finally:
        con.close()


def _same_ledger_table(ws: Workspace) -> bool:
    con = bulk.open_bulk(ws.root, readonly=True)
    try:
        row = con.execute("SELECT comment FROM duckdb_tables() WHERE database_name = "
                          "current_database() AND table_name = 'ledger'").fetchone()
    finally:
        con.close()
    return row == ("this table",)


def test_a_columnar_reselection_updates_only_the_ledger_rows_that_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-selection writes only the ledger rows whose status or detail change, in
    place (the same table: nothing at all when nothing changes); past the in-place
    limit, or on the first select, the ledger is rewritten. Either way the ledger is
    the SQLite engine's."""
    from phonotheque.catalogue import bulk_selection

    pair = _pair(tmp_path, records(HAND), exclude=True)
    ws = pair["duckdb"]

    def same_as_sqlite(opts: SelectOptions) -> list[tuple[Any, ...]]:
        ledgers = {}
        for engine, w in pair.items():
            select(w, opts)
            ledgers[engine] = plan_tables(w.root)["ledger"]
        assert [r[:3] for r in ledgers["duckdb"]] == [r[:3] for r in ledgers["sqlite"]]
        return ledgers["duckdb"]

    first = same_as_sqlite(SelectOptions(priority_threshold=0.2))
    _mark_ledger(ws)
    assert same_as_sqlite(SelectOptions(priority_threshold=0.2)) == first
    assert _same_ledger_table(ws), "a select that changes nothing rewrote the ledger"
    moved = same_as_sqlite(SelectOptions(coverage=0.5, priority_threshold=2))
    assert _same_ledger_table(ws)
    assert moved != first and len(moved) == len(first)
    monkeypatch.setattr(bulk_selection, "UPDATE_ROWS", 0)  # every change: a rewrite
    same_as_sqlite(SelectOptions(take_all=True, budget_bytes=35_000_000))
    assert not _same_ledger_table(ws)


def test_columnar_select_works_in_a_scratch_database_it_removes(tmp_path: Path) -> None:
    """Select's working tables live in <ws>/tmp/duckdb/select-work.duckdb (compressed on
    disk, not TEMP tables spilled raw); the file is gone after a select, and one left by
    a killed select (here: garbage) is replaced, not an error."""
    from phonotheque.select import columnar_rank

    ws = _pair(tmp_path, lb_top_records())["duckdb"]
    scratch = bulk.temp_directory(ws.root) / columnar_rank.WORK_FILE
    scratch.parent.mkdir(parents=True, exist_ok=True)
    scratch.write_bytes(b"left by a killed select")
    scratch.with_name(scratch.name + ".wal").write_bytes(b"and its log")
    assert select(ws, SelectOptions(coverage=0.9)).selected == 14
    assert sorted(p.name for p in scratch.parent.iterdir()) == []


def test_columnar_select_keeps_its_working_tables_in_memory_when_they_fit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalogue whose working tables fit DuckDB's memory limit keeps them in memory
    (no scratch file while select runs); a larger one writes them to the scratch file.
    Both reach the SQLite plan."""
    from phonotheque.select import columnar_rank

    pair = _pair(tmp_path, lb_top_records())
    ws = pair["duckdb"]
    scratch = bulk.temp_directory(ws.root) / columnar_rank.WORK_FILE
    seen: list[bool] = []
    opts = SelectOptions(coverage=0.9)
    select(pair["sqlite"], opts)
    expected = _state(pair["sqlite"])
    select(ws, opts, progress=lambda _event: seen.append(scratch.exists()))
    assert seen and not any(seen)
    assert _state(ws) == expected
    monkeypatch.setattr(columnar_rank, "WORK_BYTES_PER_TRACK", 1 << 40)  # never fits
    seen.clear()
    select(ws, opts, progress=lambda _event: seen.append(scratch.exists()))
    assert seen[:-1] and all(seen[:-1])  # the last event comes after the file is gone
    assert _state(ws) == expected


def test_engine_argument_must_be_the_workspaces(ws: Workspace) -> None:
    with pytest.raises(InputError, match="not a select engine"):
        select(ws, engine="spark")
    with pytest.raises(InputError, match="--engine duckdb"):
        select(ws, engine="duckdb")  # the old hand-over: now a columnar workspace
    assert select(ws, engine="sqlite").selected == 0


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _timeless(ledger_json: str) -> dict[str, Any]:
    """`phono ledger --json` without the clock's ``updated_at``."""
    data: dict[str, Any] = orjson.loads(ledger_json)
    for track in data["tracks"]:
        assert track.pop("updated_at")
    return data


def test_cli_select_and_ledger_on_a_columnar_workspace(tmp_path: Path) -> None:
    pair = _pair(tmp_path, lb_top_records())
    outs: dict[str, dict[str, Any]] = {}
    for engine, ws in pair.items():
        code, out = _cli("select", "-w", str(ws.root), "--json", "--coverage", "0.9")
        assert code == 0, out
        summary = {k: v for k, v in orjson.loads(out).items() if k != "elapsed_s"}
        code, wanted = _cli("ledger", "-w", str(ws.root), "--json", "--status", "wanted",
                            "--limit", "3", "--offset", "1")
        assert code == 0, wanted
        code, csv = _cli("ledger", "-w", str(ws.root), "--status", "wanted", "--csv")
        assert code == 0, csv
        code, every = _cli("ledger", "-w", str(ws.root), "--json")
        assert code == 0, every
        code, table = _cli("ledger", "-w", str(ws.root), "--status", "skipped_*")
        assert code == 0, table
        outs[engine] = {"select": summary, "wanted": _timeless(wanted), "csv": csv,
                        "every": _timeless(every), "table": table}
    assert outs["duckdb"] == outs["sqlite"]
    assert outs["sqlite"]["select"]["selected"] == 14
    assert outs["sqlite"]["wanted"]["matching"] == 14
    assert [t["rank"] for t in outs["sqlite"]["wanted"]["tracks"]] == [2, 3, 4]
    assert len(outs["sqlite"]["csv"].splitlines()) == 15  # header + the wanted list
    assert "6 tracks with status skipped_*" in outs["sqlite"]["table"]
    # --engine names the workspace's engine or says how to get a columnar one
    code, out = _cli("select", "-w", str(pair["sqlite"].root), "--engine", "duckdb")
    assert code == 2 and "phono init DIR --engine duckdb" in out
    code, out = _cli("select", "-w", str(pair["duckdb"].root), "--engine", "duckdb", "--json")
    assert code == 0, out
    code, out = _cli("select", "-w", str(pair["sqlite"].root), "--engine", "spark")
    assert code == 2 and "duckdb" in out


def test_exclude_updates_the_columnar_ledger_at_once(tmp_path: Path) -> None:
    """`phono exclude add/remove` brings the ledger up to date before the next select,
    on a columnar workspace with the SQLite owner's rules (bulk_selection.sync_exclusions
    in the transaction that flags the tracks)."""
    from phonotheque import exclusions
    from tests.select_helpers import add_audio_file, tid

    top = "9e2ad5bc-c6f9-40d2-a36f-3122ee2072a3"  # rank 1 at coverage 0.9
    pair = _pair(tmp_path, lb_top_records())
    for ws in pair.values():
        select(ws, SelectOptions(coverage=0.9))
        with ws.store() as store:
            add_audio_file(store, tid(store, top))
    for step, want in (("add", ("excluded", "exclusion; audio_file kept")),
                       ("remove", ("success", "audio_file present"))):
        ledgers = {}
        for engine, ws in pair.items():
            with ws.store() as store:
                if step == "add":
                    exclusions.add(store, "mbid", top, "takedown")
                else:
                    exclusions.remove(store, "mbid", top)
                top_id = tid(store, top)
            ledgers[engine] = [r[:3] for r in plan_tables(ws.root)["ledger"]]
            assert [r[1:] for r in ledgers[engine] if r[0] == top_id] == [want], engine
        assert ledgers["duckdb"] == ledgers["sqlite"]


def _refused_on_both(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    """`phono select ARGS` exits 2 saying ``message`` on both engines, and leaves the
    plan of the select before it (selection, ledger, recorded runs) as it was."""
    for engine, ws in _pair(tmp_path, records(HAND), exclude=True).items():
        code, out = _cli("select", "-w", str(ws.root), "--coverage", "0.9")
        assert code == 0, out
        before = _state(ws)
        code, out = _cli("select", "-w", str(ws.root), "--coverage", "0.5", *args)
        assert (code, message in out) == (2, True), (engine, code, out)
        assert _state(ws) == before, engine


def test_a_nan_priority_threshold_is_refused(tmp_path: Path) -> None:
    """`select --priority-threshold nan` was taken, and the engines read it apart:
    SQLite binds NaN as NULL (``priority < NULL`` never holds: every zero-listen work
    taken), DuckDB as a NaN above every number (none taken): on one 428-track
    catalogue 252 tracks selected against 8. NaN is refused, as --coverage nan is."""
    with pytest.raises(InputError, match="priority threshold"):
        SelectOptions(priority_threshold=float("nan"))
    _refused_on_both(tmp_path, ("--priority-threshold", "nan"), "priority threshold")


@pytest.mark.parametrize("option", ["--budget", "--tail-threshold"])
def test_a_budget_or_tail_threshold_past_int64_is_refused(option: str, tmp_path: Path) -> None:
    """`select --budget 100000000000000000000` (or --tail-threshold) ended in a Python
    traceback on both engines (SQLite: binding the int; the columnar select: recording
    the run, orjson's "Integer exceeds 64-bit range"), and on a columnar workspace only
    after the new selection and ledger were committed: the failed command had replaced
    the plan, without a run record. (--tail-threshold 2^63 failed on SQLite alone.)
    Both are refused past 2^63 - 1, before anything runs."""
    for field in ("budget_bytes", "tail_threshold"):
        with pytest.raises(InputError, match="at most"):
            SelectOptions(**{field: 2**63})
    # --budget is a size: its parser refuses it first (units.MAX_SIZE, the same bound)
    _refused_on_both(tmp_path, (option, str(10**20)),
                     "above the maximum of 8 EiB" if option == "--budget" else "at most")


def test_a_bitrate_whose_size_estimate_leaves_int64_is_refused(tmp_path: Path) -> None:
    """`select --opus-bitrate 1000000000000000`: a size estimate (duration x bitrate)
    past int64 became a float on SQLite (exit 0, a plan) and stopped the columnar
    select with "DuckDB failed while selecting: Out of Range Error: Overflow in
    multiplication" (exit 5, a storage error). A bitrate is refused where the longest
    duration a track may have (sources.bounds.MAX_DURATION_MS) would overflow, and the
    assumed duration past that longest one."""
    from phonotheque.sources.bounds import MAX_DURATION_MS, MAX_INT64

    top = MAX_INT64 // MAX_DURATION_MS
    assert SelectOptions(opus_bitrate=top, original_bitrate=top).opus_bitrate == top
    for field, value in (("opus_bitrate", top + 1), ("original_bitrate", top + 1),
                         ("assumed_duration_ms", MAX_DURATION_MS + 1)):
        with pytest.raises(InputError, match="at most"):
            SelectOptions(**{field: value})
    _refused_on_both(tmp_path, ("--opus-bitrate", str(10**15)), "at most")


def test_quantile_bands_past_the_band_column_are_refused(tmp_path: Path) -> None:
    """`select --bands quantiles:3000000000` gave a plan on SQLite (band numbers past
    2^31) and exit 5 on a columnar workspace ("DuckDB failed while selecting: Conversion
    Error", its band column is a 32-bit INTEGER); quantiles:N with N past 2^63 a
    traceback on SQLite. N is refused past 2^31 - 1, where both engines agree."""
    top = 2**31 - 1
    with pytest.raises(InputError, match="band scheme"):
        BandScheme.parse(f"quantiles:{top + 1}")
    with pytest.raises(InputError, match="band"):
        SelectOptions(bands=BandScheme("quantiles", top + 1))
    opts = SelectOptions(coverage=1.0, priority_threshold=0.0,
                         bands=BandScheme.parse(f"quantiles:{top}"))
    pair = _pair(tmp_path / "top", records(HAND))
    for ws in pair.values():
        select(ws, opts)
    assert _state(pair["duckdb"]) == _state(pair["sqlite"])
    assert max(row[2] for row in _state(pair["sqlite"])["selection"]) > 2**30
    for scheme in ("quantiles:3000000000", f"quantiles:{10**20}"):
        _refused_on_both(tmp_path / scheme.replace(":", "-"), ("--bands", scheme), "band scheme")
