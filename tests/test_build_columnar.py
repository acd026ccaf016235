"""`phono build` on a columnar workspace: the stages that run there run, the others are
skipped with their reason, and a source it cannot ingest is refused before anything runs."""

from __future__ import annotations

import re
import subprocess
from importlib import resources
from pathlib import Path

import orjson
import pytest

from phonotheque.pipeline import STAGE_COMMANDS, STAGES, SourceSpec, build
from phonotheque.stats import catalogue_stats
from phonotheque.workspace import COLUMNAR_COMMANDS, Workspace

REPO = Path(__file__).resolve().parents[1]
PHONO = str(REPO / ".venv" / "bin" / "phono")
DEMO = Path(str(resources.files("phonotheque") / "demo_data"))


def _phono(*args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([PHONO, *args], capture_output=True, text=True, cwd=REPO)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def test_build_skips_what_a_columnar_workspace_cannot_run(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    report = build(ws, [])
    assert [s.name for s in report.stages] == [name for name, _ in STAGES]
    for name, command in STAGE_COMMANDS.items():
        result = next(s for s in report.stages if s.name == name)
        if command in COLUMNAR_COMMANDS:
            assert not result.skipped and report.stage(name) is result
        else:
            assert result.skipped.startswith("not available on a columnar workspace"), name
            assert result.report is None and not result.changed
            assert report.stage(name) is None  # the summary and notes see only what ran
    audio = next(s for s in report.stages if s.name == "audio")
    assert "source files matched to tracks" in audio.skipped
    # nothing to ingest: only the first select (its empty plan) and the first publish (an
    # empty archive) change anything; a second build changes nothing
    assert [s.name for s in report.stages if s.changed] == [
        name for name in ("select", "publish") if name in COLUMNAR_COMMANDS]
    assert not build(ws, []).changed


def test_build_engine_duckdb_refuses_a_source_it_cannot_ingest(tmp_path: Path) -> None:
    ws = tmp_path / "new"
    out = _phono("build", f"tags:{DEMO / 'audio' / 'freedesktop'}", "--engine", "duckdb",
                 "-w", str(ws))
    assert out.returncode == 2
    assert "phono ingest tags is not available on a columnar workspace" in out.stderr
    assert not ws.exists()  # refused before anything was made


# MusicBrainz alone is a subset of the second case (slow: it costs a whole build).
@pytest.mark.parametrize("kinds", [pytest.param(("musicbrainz",), marks=pytest.mark.slow),
                                   ("musicbrainz", "listens")])
def test_build_engine_duckdb_over_the_demo_metadata(tmp_path: Path,
                                                    kinds: tuple[str, ...]) -> None:
    """A new columnar workspace: the metadata stages run (when their columnar paths have
    landed), audio and pack are skipped with a line each; else the source is refused."""
    ws = tmp_path / "ws"
    demo = {"musicbrainz": DEMO / "musicbrainz" / "mbdump-sample.jsonl",
            "listens": DEMO / "listens.csv"}
    sources = [SourceSpec(kind, demo[kind]) for kind in kinds]
    out = _phono("build", *map(str, sources), "--engine", "duckdb", "-w", str(ws))
    if not all(f"ingest {s.kind}" in COLUMNAR_COMMANDS for s in sources):
        assert out.returncode == 2, out.stdout + out.stderr
        assert "is not available on a columnar workspace" in out.stderr
        return
    assert out.returncode == 0, out.stdout + out.stderr
    assert Workspace(ws).engine == "duckdb"
    for name, command in STAGE_COMMANDS.items():
        skipped = f"{name} skipped: not available on a columnar workspace"
        assert (skipped in out.stdout) == (command not in COLUMNAR_COMMANDS), name
    with Workspace(ws).store(readonly=True) as store:  # the stale copy is empty
        assert store.scalar("SELECT count(*) FROM track") == 0
    assert catalogue_stats(Workspace(ws)).tracks > 0  # ingested into catalogue.duckdb
    assert re.search(r"│ tracks[ │]+[1-9]", out.stdout)  # the summary, counted on DuckDB
    again = _phono("build", *map(str, sources), "-w", str(ws), "--json")
    assert again.returncode == 0, again.stderr
    doc = orjson.loads(again.stdout)
    stages = {s["name"]: s for s in doc["report"]["stages"]}
    assert "source files matched" in stages["audio"]["skipped"]
    assert stages["audio"]["report"] is None
    assert not doc["report"]["changed"]
