import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from phonotheque.compare import compare
from phonotheque.model import Listen, SourceAudio, Track, TrackISRC
from phonotheque.stats import catalogue_stats
from phonotheque.workspace import Workspace

PHONO = str(Path(__file__).parents[1] / ".venv" / "bin" / "phono")


def _fill(ws: Workspace, tracks: dict[str, list[str]], listens: dict[str, int]) -> None:
    recs: list = []
    for key, isrcs in tracks.items():
        recs.append(Track(key, key.upper(), mbid=key))
        recs += [TrackISRC(key, code) for code in isrcs]
    recs += [Listen("mbid", k, n, dataset="d") for k, n in listens.items()]
    with ws.store() as s:
        s.write(recs)


Fill = Callable[[Workspace, dict[str, list[str]], dict[str, int]], None]


def _stale(ws: Workspace) -> None:
    """Rows in catalogue.sqlite's bulk tables that the columnar catalogue does not hold.

    After a conversion, columnar ingests write catalogue.duckdb only: the SQLite copy
    goes stale. A figure read from it instead of from DuckDB would count these.
    """
    _fill(ws, {"stale": ["QZZZZ9900001"]}, {"stale": 1000, "gone": 5})


@pytest.fixture(params=["sqlite", "duckdb"])
def fill(request: pytest.FixtureRequest) -> Fill:
    """``_fill``; with ``duckdb``, then the workspace's columnar conversion (ids kept)."""

    def fill(ws: Workspace, tracks: dict[str, list[str]], listens: dict[str, int]) -> None:
        _fill(ws, tracks, listens)
        if request.param == "duckdb":
            Workspace.create(ws.root, engine="duckdb")
            assert ws.engine == "duckdb"
            _stale(ws)

    return fill


def test_stats_counts(tmp_path: Path, fill: Fill) -> None:
    ws = Workspace.create(tmp_path / "a")
    fill(ws, {"t1": ["GBAAA9900303", "XXAAA9900001"], "t2": ["GBAAA9900303"], "t3": []},
          {"t1": 7, "t2": 3, "nope": 100})
    with ws.store() as s:
        s.write([SourceAudio("/x.flac", 5, 1, mbid="t1")])
        st = catalogue_stats(ws)
    assert (st.tracks, st.isrcs, st.unique_isrcs, st.shared_isrcs) == (3, 3, 2, 1)
    assert (st.tracks_sharing_isrc, st.tracks_without_isrc) == (2, 1)
    assert st.total_listens == 10 and st.unmatched_listen_rows == 1
    assert st.tracks_with_audio == 1 and st.source_audio_bytes == 5
    out = subprocess.run([PHONO, "stats", "--json", "-w", str(ws.root)], capture_output=True,
                         check=True).stdout
    assert orjson.loads(out)["unique_isrcs"] == 2


def test_compare_isrcs_and_mbids(tmp_path: Path, fill: Fill) -> None:
    a = Workspace.create(tmp_path / "a")
    b = Workspace.create(tmp_path / "b")
    fill(a, {"t1": ["GBAAA9900303"], "t2": ["USPR37300012"], "t3": ["DEE250800230"]}, {})
    fill(b, {"t2": ["USPR37300012"], "t9": ["GBXWZ0800015"]}, {})
    rep = compare(a.root, b.catalogue)
    assert (rep.isrc.in_a, rep.isrc.in_b, rep.isrc.both) == (3, 2, 1)
    assert rep.isrc.sample_only_a == ["DEE250800230", "GBAAA9900303"]
    assert rep.isrc.sample_only_b == ["GBXWZ0800015"]
    assert (rep.mbid.only_a, rep.mbid.only_b) == (2, 1)
    proc = subprocess.run([PHONO, "compare", str(a.root), str(b.root)], capture_output=True,
                          text=True, check=True)
    assert "2 of A's 3 ISRCs are missing from B" in proc.stdout
    bad = subprocess.run([PHONO, "compare", str(a.root), str(tmp_path)], capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "not a workspace" in bad.stderr


def test_a_sample_or_limit_past_int64_is_every_row(tmp_path: Path, fill: Fill) -> None:
    """`phono compare A B --sample 99999999999999999999` and `phono rejects --limit` of
    the same ended in a traceback (SQLite's OverflowError, DuckDB's ConversionException
    on a columnar workspace). Past 2**63 - 1 they mean every key or reject."""
    from click.testing import CliRunner

    from phonotheque.cli import main

    a = Workspace.create(tmp_path / "a")
    b = Workspace.create(tmp_path / "b")
    fill(a, {"t1": ["GBAAA9900303"], "t2": ["USPR37300012"], "t3": ["DEE250800230"]}, {})
    fill(b, {"t2": ["USPR37300012"], "t9": ["GBXWZ0800015"]}, {})
    huge = "9" * 20
    res = CliRunner().invoke(main, ["compare", str(a.root), str(b.root), "--json",
                                    "--sample", huge])
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.output)["isrc"]["sample_only_a"] == ["DEE250800230",
                                                                 "GBAAA9900303"]
    for limit in (huge, "-" + huge):
        res = CliRunner().invoke(main, ["rejects", "-w", str(a.root), "--json",
                                        "--limit", limit])
        assert res.exit_code == 0, res.output
        assert orjson.loads(res.output)["total"] == 0
