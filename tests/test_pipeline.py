"""The build runner: source detection, stage order, idempotence without a frozen clock."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from phonotheque.cli.build_cmds import demo_sources, stage_summary
from phonotheque.errors import InputError
from phonotheque.pipeline import StageResult, build, parse_source
from phonotheque.workspace import Workspace

PHONO = str(Path(__file__).parents[1] / ".venv" / "bin" / "phono")


def test_parse_source_prefix_and_detection(data: Path, tmp_path: Path) -> None:
    assert parse_source(f"tags:{tmp_path}").kind == "tags"
    assert parse_source(str(data / "mbdump" / "webservice")).kind == "mbdump"
    assert parse_source(str(data / "mbdump" / "webservice" / "mbdump")).kind == "mbdump"
    assert parse_source(str(data / "beets")).kind == "tags"
    assert parse_source(str(data / "picard" / "ws_data" / "release.json")).kind == "musicbrainz"
    assert parse_source(str(data / "listenbrainz" / "top_recording_db_data_for_api_test.json")
                        ).kind == "listens"
    assert parse_source(str(data / "listenbrainz" / "listenbrainz_listens.jsonl")).kind == "listens"
    csv = tmp_path / "l.csv"
    csv.write_text("isrc,count\nGBAAA9900303,3\n")
    assert parse_source(str(csv)).kind == "listens"
    with pytest.raises(InputError, match="no such file"):
        parse_source(str(tmp_path / "missing.json"))
    odd = tmp_path / "x.bin"
    odd.write_bytes(b"\0")
    with pytest.raises(InputError, match="cannot tell what kind"):
        parse_source(str(odd))


def test_stop_after_select_runs_only_first_stages(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    from phonotheque.pipeline import BuildOptions

    report = build(ws, demo_sources(), BuildOptions(stop_after="select"))
    assert [s.name for s in report.stages] == ["ingest", "select"]
    assert report.stage("select").report.selected > 0
    assert not any((ws.audio).rglob("*.opus"))
    # The library returns data; the CLI writes the sentences.
    assert "summary" not in {f.name for f in dataclasses.fields(StageResult)}
    sel = report.stage("select").report
    # coverage is of matched listens; the demo's tracks without a file are wanted (issue 11)
    assert stage_summary(report.stage("select")) == (
        f"{sel.selected:,} tracks selected covering {sel.covered_share:.2%} of matched "
        f"listens, {sel.statuses['wanted']} of them wanted (no file held)")
    ingested = report.stage("ingest").report
    line = stage_summary(report.stage("ingest"))
    assert line.startswith(f"{sum(r.read for r in ingested):,} records read, ")
    # records added are said by kind: one audio file adds its audio, track, release...
    # (before issue 12: "83 added" for 41 files)
    files = sum(r.by_kind.get("audio", [0])[0] for r in ingested)
    tracks = sum(r.by_kind.get("track", [0])[0] for r in ingested)
    assert files and tracks
    assert f"{files:,} audio" in line and f"{tracks:,} track" in line


def test_pack_and_build_share_one_folder_executor_policy() -> None:
    from phonotheque.executors import DaskExecutor, LocalExecutor
    from phonotheque.pack.packer import folder_executor

    with folder_executor(None, None) as here:  # `phono build`, `phono pack` without -j
        assert here is None
    with folder_executor(2, None) as pool:  # `phono pack -j 2`
        assert isinstance(pool, LocalExecutor)
    assert DaskExecutor  # with a scheduler: tests/pack/test_pack_distributed.py


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_second_build_with_the_wall_clock_changes_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    cmd = [PHONO, "build", "-w", str(tmp_path / "ws"), *(str(s) for s in demo_sources())]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert first.returncode in (0, 10), first.stderr
    before = _tree(tmp_path / "ws" / "publish")
    # the coverage chart is part of the published generation, not added to a live one
    assert "coverage.svg" in before and (tmp_path / "ws" / "publish").is_symlink()
    time.sleep(1.1)  # a new second: any wall-clock time leaking into output would show
    second = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert "nothing to do" in second.stdout, second.stdout
    assert _tree(tmp_path / "ws" / "publish") == before
