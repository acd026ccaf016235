"""The pack / publish / release / verify commands, end to end through click."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.workspace import Workspace
from tests.publish.archive import make_archive


def test_commands_have_help() -> None:
    runner = CliRunner()
    for cmd in ("pack", "publish", "release", "verify"):
        res = runner.invoke(main, [cmd, "--help"])
        assert res.exit_code == 0 and len(res.output) > 200, cmd


def test_pack_release_publish_verify(ws: Workspace, data: Path) -> None:
    make_archive(ws, data, patch_every=5)
    runner = CliRunner()
    w = ["-w", str(ws.root)]
    res = runner.invoke(main, ["pack", *w, "--max-files", "3", "--max-bytes", "1MB",
                               "--prefix", "mylib"])
    assert res.exit_code == 0, res.output
    assert "mylib_data__aacid__music_files_band01__" in res.output
    res = runner.invoke(main, ["publish", *w])
    assert res.exit_code == 0 and "not released yet" in res.output
    res = runner.invoke(main, ["release", *w, "--wave-bands", "2"])
    assert res.exit_code == 0, res.output
    assert "wave 1" in res.output and "bands 1, 2" in res.output
    idx = orjson.loads((ws.publish / "torrents.json").read_bytes())
    assert all(e["display_name"].startswith("mylib_") for e in idx)
    # torrents/ still holds the unreleased band 3: not published, so "unexpected"
    res = runner.invoke(main, ["verify", str(ws.torrents), *w, "--json"])
    assert res.exit_code == 4
    problems = orjson.loads(res.output)["problems"]
    assert problems and all("music_files_band03" in p["path"] and p["kind"] == "unexpected"
                            for p in problems)
    res = runner.invoke(main, ["release", *w])
    assert res.exit_code == 0 and "wave 2" in res.output
    res = runner.invoke(main, ["verify", str(ws.torrents), *w, "--rebuild-originals"])
    assert res.exit_code == 0, res.output
    assert "originals 2/2" in res.output


def test_bad_options_are_refused_cleanly(ws: Workspace, data: Path) -> None:
    make_archive(ws, data, n=2)
    runner = CliRunner()
    res = runner.invoke(main, ["pack", "-w", str(ws.root), "--prefix", "Bad Prefix"])
    assert res.exit_code == 2 and "prefix" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, ["pack", "-w", str(ws.root), "--max-bytes", "lots"])
    assert res.exit_code == 2 and "not a size" in res.output
    res = runner.invoke(main, ["verify", str(ws.root), "--against", str(ws.publish)])
    assert res.exit_code == 3 and "metadata.sqlite" in res.output
