"""`phono select`, `phono ledger`, `phono coverage-report` and the rendered report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

import phonotheque
from phonotheque.cli import main
from phonotheque.select import SelectOptions, select
from phonotheque.select.chart import last_run, render_coverage, render_report
from phonotheque.workspace import Workspace
from tests.select_helpers import lb_top_records


@pytest.fixture
def lb(ws: Workspace) -> Workspace:
    with ws.store() as s:
        s.write(lb_top_records())
    return ws


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_select_and_ledger_commands(lb: Workspace, tmp_path: Path) -> None:
    html, png = tmp_path / "coverage.html", tmp_path / "coverage.png"
    code, out = run("select", "-w", str(lb.root), "--coverage", "0.9", "--budget", "1TB",
                    "--report", str(html), "--report", str(png))
    assert code == 0, out
    assert "90.377 %" in out  # 24,819,038 / 27,461,551
    assert "report written" in out
    # the PNG is a real image of the expected size
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r"""(src|href)=["']https?:""", page)
    assert "14 tracks cover 90.38 % of matched listens" in page

    code, out = run("ledger", "-w", str(lb.root), "--json", "--status", "wanted", "--limit", "2")
    assert code == 0, out
    data = orjson.loads(out)
    assert data["counts"] == {"skipped_low_priority": 6, "wanted": 14}
    assert data["matching"] == 14
    assert [t["rank"] for t in data["tracks"]] == [1, 2]
    assert data["tracks"][0]["key"] == "9e2ad5bc-c6f9-40d2-a36f-3122ee2072a3"

    code, out = run("ledger", "-w", str(lb.root), "--status", "skipped_*")
    assert code == 0 and "6 tracks with status skipped_*" in out

    again = tmp_path / "again.svg"
    code, out = run("coverage-report", "-w", str(lb.root), str(again))
    assert code == 0 and again.read_text().lstrip().startswith("<?xml")


def test_select_json_and_bad_options(lb: Workspace) -> None:
    code, out = run("select", "-w", str(lb.root), "--json", "--bands", "quantiles:2")
    assert code == 0
    data = orjson.loads(out)
    assert data["selected"] == 20 and data["options"]["bands"] == "quantiles:2"
    code, out = run("select", "-w", str(lb.root), "--budget", "lots")
    assert code == 2 and "not a size" in out
    code, out = run("select", "-w", str(lb.root), "--bands", "weekly")
    assert code == 2 and "band scheme" in out
    code, out = run("select", "-w", str(lb.root), "--report", "x.pdf")
    assert code == 2 and "report must end in" in out


def test_coverage_report_needs_a_selection(ws: Workspace, tmp_path: Path) -> None:
    code, out = run("coverage-report", "-w", str(ws.root), str(tmp_path / "x.png"))
    assert code == 2 and "no selection yet" in out
    code, out = run("ledger", "-w", str(ws.root))
    assert code == 0 and "empty ledger" in out


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_ledger_limit_and_offset_past_int64_are_all_or_none(tmp_path: Path,
                                                            engine: str) -> None:
    """`phono ledger --limit 99999999999999999999` ended in a traceback on both engines
    (SQLite's OverflowError, DuckDB's ConversionException), and `--json`/`--csv` with an
    offset near 2**63 in islice's ValueError after half a document. Past 2**63 - 1 a
    limit means every track and an offset none, as any figure above the catalogue's size."""
    from phonotheque import columnar_ingest
    from phonotheque.ingest import ingest

    ws = Workspace.create(tmp_path / "ws", engine=engine)
    demo = Path(phonotheque.__file__).parent / "demo_data"
    for kind, path in (("mbdump", demo / "mbdump"), ("listens", demo / "listens.csv")):
        (ingest if engine == "sqlite" else columnar_ingest.ingest)(ws, kind, [path])
    select(ws, SelectOptions())
    huge, top = "9" * 20, str(2**63 - 1)
    code, out = run("ledger", "-w", str(ws.root), "--json")
    assert code == 0, out
    every = orjson.loads(out)["tracks"]
    assert len(every) > 5, every
    code, out = run("ledger", "-w", str(ws.root), "--json", "--limit", huge)
    assert code == 0 and orjson.loads(out)["tracks"] == every, out
    for args in (("--json", "--offset", huge), ("--json", "--limit", "5", "--offset", top)):
        code, out = run("ledger", "-w", str(ws.root), *args)
        assert code == 0 and orjson.loads(out)["tracks"] == [], out
    code, out = run("ledger", "-w", str(ws.root), "--csv", "--limit", "5", "--offset", top)
    assert code == 0 and len(out.splitlines()) == 1, out  # the header alone
    for args in (("--limit", huge), ("--offset", huge), ("--limit", huge, "--offset", huge)):
        code, out = run("ledger", "-w", str(ws.root), *args)
        assert code == 0 and "Traceback" not in out, out


def test_report_from_last_run_matches(lb: Workspace, tmp_path: Path) -> None:
    report = select(lb, SelectOptions(coverage=0.9, budget_bytes=100_000_000))
    with lb.store(readonly=True) as s:
        run_ = last_run(s)
    assert run_ is not None
    summary, curve = run_
    assert summary["selected"] == report.selected and summary["budget_stopped"]
    assert curve == report.curve
    # the curve is cumulative: ranks and bytes increase, shares never decrease
    assert [p.rank for p in curve] == sorted({p.rank for p in curve})
    assert all(a.share <= b.share and a.bytes <= b.bytes for a, b in zip(curve, curve[1:],
                                                                         strict=False))
    assert curve[-1].rank == 20 and curve[-1].share == 1.0
    out = render_coverage(summary, curve, tmp_path / "r.html")
    assert "stopped by the 100 MB budget" in out.read_text()


_RENDER = """
import json, sys
from pathlib import Path
from phonotheque.select.chart import render_coverage
from phonotheque.select.report import CurvePoint
doc = json.loads(Path(sys.argv[1]).read_text())
for out in sys.argv[2:]:
    render_coverage(doc["summary"], [CurvePoint(*p) for p in doc["curve"]], Path(out))
"""


def _stale_matplotlib_config(root: Path) -> Path:
    """An MPLCONFIGDIR as a user may have one: a font list of this matplotlib's version
    that holds the system's fonts only, none of matplotlib's own (as one built by another
    matplotlib, or stale, may), and a matplotlibrc of the user's own tastes."""
    import matplotlib
    from matplotlib import font_manager

    root.mkdir()
    own = Path(matplotlib.get_data_path()).resolve()
    stale = font_manager.FontManager.__new__(font_manager.FontManager)
    stale.__dict__.update(font_manager.fontManager.__dict__)
    stale.ttflist = [f for f in stale.ttflist if own not in Path(f.fname).resolve().parents]
    stale.afmlist = [f for f in stale.afmlist if own not in Path(f.fname).resolve().parents]
    font_manager.json_dump(stale, root / f"fontlist-v{font_manager.FontManager.__version__}.json")
    (root / "matplotlibrc").write_text("font.family: serif\nfont.size: 14\nlines.linewidth: 5\n"
                                       "axes.facecolor: eeeeee\nsvg.fonttype: none\n")
    return root


def test_chart_bytes_do_not_depend_on_the_users_matplotlib_setup(lb: Workspace,
                                                                   tmp_path: Path) -> None:
    """The chart goes into the published files (coverage.svg): built twice, the same
    bytes. Before, a stale font cache made every render warn ``findfont: ...`` about
    21 times and draw in another font, and a matplotlibrc restyled the chart."""
    import matplotlib

    report = select(lb, SelectOptions(coverage=0.9, budget_bytes=100_000_000))
    doc = tmp_path / "report.json"
    curve = [(c.rank, c.share, c.bytes) for c in report.curve]
    doc.write_text(orjson.dumps({"summary": report.summary(), "curve": curve}).decode())
    here, stale = tmp_path / "here.svg", tmp_path / "stale.svg"
    rc_before = dict(matplotlib.rcParams)
    render_report(report, here)
    assert dict(matplotlib.rcParams) == rc_before  # the caller's settings are left alone
    src = str(Path(phonotheque.__file__).parents[1])
    env = {**os.environ, "MPLCONFIGDIR": str(_stale_matplotlib_config(tmp_path / "mpl")),
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _RENDER, str(doc), str(stale)],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "findfont" not in proc.stderr, proc.stderr
    svg = here.read_text()
    assert "mathdefault" not in svg  # log-axis ticks are plain text, no mathtext fonts
    assert stale.read_text() == svg  # (the PNG is drawn with the same fonts, by Agg)
