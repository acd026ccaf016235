"""`phono select --engine duckdb` reaches exactly what the SQLite engine reaches.

Each scenario is one catalogue and one set of options; the same catalogue file is
selected by both engines and the selection, the ledger, the recorded run and the
report must be identical. (Every exact-expectation test of tests/test_select.py
also runs on DuckDB under ``-m slow``: see tests/select_engines.py.)
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from phonotheque.errors import InputError
from phonotheque.model import Exclusion, Record
from phonotheque.progress import ProgressEvent
from phonotheque.select import STEPS, BandScheme, SelectOptions, select
from phonotheque.workspace import Workspace
from tests.select_helpers import T, lb_top_records, lb_user_records, records

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


def _state(ws: Workspace) -> dict[str, Any]:
    with sqlite3.connect(ws.catalogue) as conn:
        run = conn.execute("SELECT options, result, curve FROM select_run").fetchall()
        return {
            "selection": conn.execute("SELECT * FROM selection ORDER BY track_id").fetchall(),
            "ledger": conn.execute(
                "SELECT track_id, status, detail FROM ledger ORDER BY track_id").fetchall(),
            "runs": [(o, {k: v for k, v in orjson.loads(r).items() if k != "elapsed_s"}, c)
                     for o, r, c in run],
        }


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_duckdb_engine_reaches_the_same_plan(name: str, tmp_path: Path) -> None:
    recs, opts = SCENARIOS[name]
    base = Workspace.create(tmp_path / "base")
    with base.store() as store:
        store.write(recs)
        if name.startswith("hand"):
            store.add_exclusion(Exclusion("mbid", GONE, "takedown"))
    results = {}
    for engine in ("sqlite", "duckdb"):
        ws_root = tmp_path / engine
        shutil.copytree(base.root, ws_root)
        ws = Workspace.open(ws_root)
        events: list[ProgressEvent] = []
        report = select(ws, opts, progress=events.append, engine=engine)
        summary = {k: v for k, v in report.summary().items() if k != "elapsed_s"}
        results[engine] = (_state(ws), summary, report.curve,
                           [(e.done, e.total, e.message) for e in events])
        assert not list((ws_root / "tmp").glob("*.sqlite*")), "scratch file left behind"
    assert results["duckdb"][0] == results["sqlite"][0]
    assert results["duckdb"][1:] == results["sqlite"][1:]
    assert results["sqlite"][0]["selection"], "the scenario selects nothing: it tests nothing"
    assert [m for _d, _t, m in results["duckdb"][3]] == list(STEPS)


def test_unknown_engine_is_a_clear_error(ws: Workspace) -> None:
    with pytest.raises(InputError, match="not a select engine"):
        select(ws, engine="spark")


def test_cli_engine_option(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from phonotheque.cli import main

    ws = Workspace.create(tmp_path / "ws")
    with ws.store() as store:
        store.write(lb_top_records())
    outs = {}
    for engine in ("duckdb", "sqlite"):
        result = CliRunner().invoke(main, ["select", "-w", str(ws.root), "--json",
                                           "--coverage", "0.9", "--engine", engine])
        assert result.exit_code == 0, result.output
        outs[engine] = {k: v for k, v in orjson.loads(result.output).items() if k != "elapsed_s"}
    assert outs["duckdb"] == outs["sqlite"] and outs["sqlite"]["selected"] == 14
    result = CliRunner().invoke(main, ["select", "-w", str(ws.root), "--engine", "spark"])
    assert result.exit_code == 2 and "duckdb" in result.output
