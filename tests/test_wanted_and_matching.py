"""Issue 11 §2 and §3 through the CLI, on the bundled demo catalogue (MusicBrainz +
ListenBrainz + some real files): selected tracks without a file are the wanted list,
not errors; coverage says how many listens matched nothing."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import subprocess
from pathlib import Path

import orjson
import pytest

PHONO = str(Path(__file__).parents[1] / ".venv" / "bin" / "phono")
DATA = Path(__file__).parent / "data"
WANTED = ["Got Glint?", "Under the Influence", "Let Forever Be", "Dream On", "Surrender"]


def phono(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([PHONO, *args], capture_output=True, text=True, env=env, check=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    ws = tmp_path_factory.mktemp("demo") / "ws"
    run = phono("demo", "-w", str(ws))
    # README: 10 = finished, but an input was rejected (the deliberately broken
    # `Dialog Error.oga`); before issue 12 the demo exited 0 over it.
    assert run.returncode == 10, run.stdout + run.stderr
    assert "1 inputs rejected" in run.stdout
    return ws, run.stdout


def test_a_rerun_that_changes_nothing_exits_0(demo: tuple[Path, str]) -> None:
    # Before issue 12 every re-run exited 10: the tags walk meets the broken file again.
    ws, _ = demo
    again = phono("demo", "-w", str(ws), "--no-health")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do" in again.stdout


def test_demo_shows_wanted_tracks_not_errors(demo: tuple[Path, str]) -> None:
    ws, out = demo
    # Before issue 11: "5 errors (5 no_source)" on the first screen.
    assert "0 errors" in out and "no_source" not in out
    assert "5 wanted" in out and "--status wanted --csv" in out
    code = phono("ledger", "-w", str(ws), "--json", "--limit", "0")
    counts = orjson.loads(code.stdout)["counts"]
    assert counts["wanted"] == 5 and not any(k.startswith("error_") for k in counts)


def test_wanted_list_exports(demo: tuple[Path, str]) -> None:
    ws, _ = demo
    run = phono("ledger", "-w", str(ws), "--status", "wanted", "--csv")
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert [r["title"] for r in rows] == WANTED
    assert list(rows[0])[:5] == ["mbid", "isrc", "title", "artist", "listens"]
    first = rows[0]
    assert first["mbid"] == "310a7db0-9a0f-4833-817f-ae4f6adc026e"
    assert first["isrc"] == "GBAAA9900302" and first["artist"] == "The Chemical Brothers"
    assert first["listens"] == "0" and first["status"] == "wanted"
    data = orjson.loads(phono("ledger", "-w", str(ws), "--status", "wanted", "--json").stdout)
    assert data["matching"] == 5 and len(data["tracks"]) == 5  # all, not the first 20
    assert data["tracks"][0]["isrcs"] == ["GBAAA9900302"]
    assert data["tracks"][0]["mbid"] == first["mbid"]
    one = phono("ledger", "-w", str(ws), "--status", "wanted", "--csv", "--limit", "1",
                "--offset", "4")
    assert [r["title"] for r in csv.DictReader(io.StringIO(one.stdout))] == ["Surrender"]
    both = phono("ledger", "-w", str(ws), "--csv", "--json")
    assert both.returncode == 2


def test_held_zero_listen_tracks_are_archived(demo: tuple[Path, str]) -> None:
    ws, _ = demo
    data = orjson.loads(phono("ledger", "-w", str(ws), "--json").stdout)
    status = {t["title"]: t["status"] for t in data["tracks"] if t["rank"] is not None}
    # the demo's Bell, Complete and Message: no listens, but a file held
    for title in ("Bell", "Complete", "Message"):
        assert status[title] == "success", title
    assert all(status[t] == "wanted" for t in WANTED)


def test_coverage_counts_unmatched_listens(demo: tuple[Path, str], tmp_path: Path) -> None:
    ws, out = demo
    # 27.5 M of the demo's 33.4 M listens match no track: said, and loudly
    assert "listens matching no track" in out and "27,461,551 (82.1%)" in out
    assert "WARNING: most listens matched nothing" in out
    assert "expected in the demo" in out  # and the demo says why that is right for its data
    sel = phono("select", "-w", str(ws))
    assert "coverage of matched listens" in sel.stdout
    assert "WARNING: most listens matched nothing" in sel.stdout
    summary = orjson.loads(phono("select", "-w", str(ws), "--json").stdout)
    listens = summary["listens"]
    assert listens["matched"] == 5_969_776 and listens["unmatched"] == 27_461_551
    assert listens["mostly_unmatched"] is True
    kinds = {k["kind"]: k for k in listens["by_kind"]}
    assert kinds["mbid"]["listens_unmatched"] == 27_461_551
    stats = phono("stats", "-w", str(ws))
    assert "WARNING: most listens matched nothing" in stats.stdout
    st = orjson.loads(phono("stats", "-w", str(ws), "--json").stdout)
    assert st["unmatched_listens"] == 27_461_551 and st["total_listens"] == 5_969_776
    html = tmp_path / "coverage.html"
    assert phono("coverage-report", "-w", str(ws), str(html)).returncode == 0
    page = html.read_text()
    assert "of matched listens" in page and 'class="warning"' in page
    assert "Listens matched to tracks, by key kind" in page and "27,461,551" in page


def test_real_fixtures_that_match_nothing_warn(tmp_path: Path) -> None:
    # A real MusicBrainz dump and real ListenBrainz listens that share no recording.
    ws = tmp_path / "ws"
    run = phono("build", f"mbdump:{DATA / 'mbdump' / 'webservice'}",
                f"listens:{DATA / 'listenbrainz' / 'listenbrainz_listens.jsonl'}",
                "-w", str(ws), "--stop-after", "select")
    assert run.returncode == 0, run.stdout + run.stderr
    # before issue 11: "covering 100.00% of listens"
    assert "100.00%" not in run.stdout
    assert "no listen matched a track" in run.stdout
    assert "WARNING: most listens matched nothing" in run.stdout
    assert "100.0% of listens" in run.stdout



def _ledger_counts(ws: Path) -> dict[str, int]:
    run = phono("ledger", "-w", str(ws), "--json", "--limit", "0")
    assert run.returncode == 0, run.stderr
    counts: dict[str, int] = orjson.loads(run.stdout)["counts"]
    return counts


def _tree(root: Path, *folders: str) -> dict[str, str]:
    """sha256 of every file under ``folders``, but the metadata torrent's (see below)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted((root / folder).rglob("*"))
            if p.is_file() and p.name != ".lock"
            and "phonotheque_metadata__" not in p.relative_to(root).as_posix()}


def _published(publish: Path) -> dict[str, object]:
    """The published catalogue's rows: metadata.sqlite's tables (its text index aside)
    and the Parquet files'. The columnar publish writes the same rows, not the same bytes
    (DuckDB's Parquet writer, every column nullable; the FTS segments in another order),
    so the metadata torrent, torrents.json and magnets.txt differ too."""
    import sqlite3

    import pyarrow.parquet as pq

    conn = sqlite3.connect(f"file:{publish / 'metadata.sqlite'}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '%fts%'")]
        rows: dict[str, object] = {
            t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in names}
    finally:
        conn.close()
    for f in sorted((publish / "parquet").glob("*.parquet")):
        rows[f.name] = pq.read_table(f).to_pylist()
    return rows


@pytest.mark.slow  # two whole demo builds (the columnar one alone costs ~9 CPU s)
def test_a_columnar_demo_equals_the_sqlite_demo(tmp_path: Path) -> None:
    """`phono init DIR --engine duckdb` then `phono demo -w DIR` (before: exit 2, "the
    demo archives audio and packs torrents"): the same exit status, screen, audio and
    data torrents (bytes), coverage chart (bytes) and published rows as the demo on
    SQLite; a re-run changes nothing."""
    env = {"SOURCE_DATE_EPOCH": "1767225600"}  # both builds stamp the same times
    runs = {}
    for engine in ("sqlite", "duckdb"):
        ws = tmp_path / engine
        assert phono("init", str(ws), "--engine", engine).returncode == 0
        runs[engine] = phono("demo", "-w", str(ws), "--no-health", env=env)
        assert runs[engine].returncode == 10, runs[engine].stdout + runs[engine].stderr
    sq, dk = tmp_path / "sqlite", tmp_path / "duckdb"
    assert (dk / "catalogue.duckdb").is_file() and not (sq / "catalogue.duckdb").exists()

    def shown(out: str, ws: Path) -> list[str]:  # the screen, less paths and timings
        text = re.sub(r"\d+(\.\d+)? ?(s|ms)\b", "T", out.replace(str(ws), "WS"))
        return [" ".join(line.split()) for line in text.splitlines()]

    assert shown(runs["duckdb"].stdout, dk) == shown(runs["sqlite"].stdout, sq)
    assert _tree(dk, "audio", "torrents") == _tree(sq, "audio", "torrents")
    chart = "publish/coverage.svg"
    assert (dk / chart).read_bytes() == (sq / chart).read_bytes()
    assert _published(dk / "publish") == _published(sq / "publish")
    assert _ledger_counts(dk) == _ledger_counts(sq)
    again = phono("demo", "-w", str(dk), "--no-health", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do" in again.stdout
