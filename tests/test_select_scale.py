"""The benchmark's bulk catalogue, selected at a small size (and a larger one with -m slow)."""

from __future__ import annotations

import importlib.util
import os
import resource
from pathlib import Path
from types import ModuleType

import pytest

from phonotheque.select import SelectOptions, select
from phonotheque.workspace import Workspace

BENCH = Path(__file__).resolve().parent.parent / "bench" / "selection.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_select", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _check(root: Path, n: int) -> None:
    report = select(Workspace.open(root), SelectOptions())
    assert report.tracks == n
    # tracks i ≡ 2 (mod 100) reuse the ISRC of track i - 1
    assert report.isrc_duplicates == len(range(2, n + 1, 100))
    assert report.covered_share >= 0.996
    with Workspace.open(root).store(readonly=True) as s:
        assert s.scalar("SELECT count(*) FROM ledger") == n
        assert s.scalar(
            """SELECT count(*) FROM (SELECT ti.isrc FROM selection x
               JOIN track_isrc ti ON ti.track_id = x.track_id
               GROUP BY ti.isrc HAVING count(*) > 1)""") == 0
        ranks = s.scalar("SELECT count(DISTINCT rank) FROM selection")
        assert ranks == report.selected == s.scalar("SELECT max(rank) FROM selection")


def test_bench_catalogue_small(tmp_path: Path) -> None:
    _bench().build(tmp_path / "w", 3000)
    _check(tmp_path / "w", 3000)


@pytest.mark.slow
def test_bench_catalogue_large(tmp_path: Path) -> None:
    n = int(os.environ.get("PHONO_SELECT_SCALE_N", "200000"))
    _bench().build(tmp_path / "w", n)
    _check(tmp_path / "w", n)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 < 2 * 2**30
