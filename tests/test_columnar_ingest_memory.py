"""The columnar ingest bounds DuckDB's memory: a default far below half the machine,
and a small limit spills to <ws>/tmp/duckdb yet gives the same tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonotheque import columnar_ingest
from phonotheque.catalogue import bulk, columnar
from phonotheque.ingest import ingest
from phonotheque.synth import SynthOptions, synth
from phonotheque.workspace import Workspace
from tests.test_columnar_ingest import columnar_tables, sqlite_tables


def _limits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the memory_limit of every connection the ingest opens (the real open)."""
    seen: list[str] = []
    real = bulk.open_bulk

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        con = real(*args, **kwargs)
        seen.append(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        return con

    monkeypatch.setattr(bulk, "open_bulk", spy)
    return seen


def _gib(setting: str) -> float:
    number, unit = setting.split()
    return float(number) * {"KiB": 2**-20, "MiB": 2**-10, "GiB": 1, "TiB": 2**10}[unit]


def test_ingest_default_memory_limit_is_bounded(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    synth(tmp_path / "s", SynthOptions(tracks=200, seed=3))
    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    seen = _limits(monkeypatch)
    columnar_ingest.ingest(ws, "musicbrainz", [tmp_path / "s" / "release.jsonl"])
    want = min(columnar.memory_limit(), columnar_ingest.MEMORY_BYTES) / 2**30
    assert seen and all(abs(_gib(s) - want) < 0.05 for s in seen), (seen, want)


def test_small_memory_limit_gives_the_same_tables(tmp_path: Path) -> None:
    synth(tmp_path / "s", SynthOptions(tracks=3000, seed=5))
    paths = [tmp_path / "s" / "release.jsonl"]
    row = Workspace.create(tmp_path / "sqlite")
    col = Workspace.create(tmp_path / "columnar", engine="duckdb")
    ingest(row, "musicbrainz", paths)
    columnar_ingest.ingest(col, "musicbrainz", paths, memory_bytes=64 << 20)
    assert columnar_tables(col) == sqlite_tables(row)
