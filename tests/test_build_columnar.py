"""`phono build` on a columnar workspace: every stage runs there (audio and pack too, see
tests/test_columnar_archive.py), and a source it cannot ingest would be refused before
anything runs."""

from __future__ import annotations

import re
import subprocess
from importlib import resources
from pathlib import Path

import orjson
import pytest

from phonotheque.errors import InputError
from phonotheque.pipeline import (
    STAGE_COMMANDS,
    STAGES,
    SourceSpec,
    build,
    check_columnar_sources,
)
from phonotheque.sources import SOURCES
from phonotheque.stats import catalogue_stats
from phonotheque.workspace import COLUMNAR_COMMANDS, Workspace

REPO = Path(__file__).resolve().parents[1]
PHONO = str(REPO / ".venv" / "bin" / "phono")
DEMO = Path(str(resources.files("phonotheque") / "demo_data"))


def _phono(*args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([PHONO, *args], capture_output=True, text=True, cwd=REPO)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def test_build_runs_every_stage_on_a_columnar_workspace(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    report = build(ws, [])
    assert [s.name for s in report.stages] == [name for name, _ in STAGES]
    assert set(STAGE_COMMANDS.values()) <= COLUMNAR_COMMANDS
    for name in STAGE_COMMANDS:
        result = next(s for s in report.stages if s.name == name)
        assert not result.skipped and report.stage(name) is result, name
    audio = report.stage("audio")
    assert audio is not None and audio.report.selected == 0  # ran: nothing is selected
    # nothing to ingest: only the first select (its empty plan) and the first publish (an
    # empty archive) change anything; a second build changes nothing
    assert [s.name for s in report.stages if s.changed] == ["select", "publish"]
    assert not build(ws, []).changed


def test_build_help_says_every_stage_runs_on_a_columnar_workspace() -> None:
    """`phono build --help` said of --engine duckdb "it runs the metadata stages and
    skips audio and pack, saying so", though every stage runs there (the test above)."""
    from click.testing import CliRunner

    from phonotheque.cli import main

    out = CliRunner().invoke(main, ["build", "--help"], terminal_width=400)
    assert out.exit_code == 0, out.output
    engine = out.output[out.output.index("--engine"):out.output.index("--json")]
    assert "skips" not in engine and "every stage" in engine, engine


def test_build_engine_duckdb_refuses_a_source_it_cannot_ingest(tmp_path: Path) -> None:
    """Every source kind has a columnar path now; a kind without one would be refused
    before anything runs."""
    with pytest.raises(InputError, match="phono ingest nosuch is not available"):
        check_columnar_sources([SourceSpec("nosuch", tmp_path)])
    check_columnar_sources([SourceSpec(kind, tmp_path) for kind in SOURCES])


# MusicBrainz alone is a subset of the second case (slow: it costs a whole build).
@pytest.mark.parametrize("kinds", [pytest.param(("musicbrainz",), marks=pytest.mark.slow),
                                   ("musicbrainz", "listens")])
def test_build_engine_duckdb_over_the_demo_metadata(tmp_path: Path,
                                                    kinds: tuple[str, ...]) -> None:
    """A new columnar workspace: the metadata stages run (when their columnar paths have
    landed, audio and pack too); else the source is refused."""
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
    assert not stages["audio"]["skipped"] and stages["audio"]["report"] is not None
    assert not doc["report"]["changed"]
