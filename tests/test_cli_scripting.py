"""Issue 12 §6 "small ones": what a script calling `phono` sees for wrong arguments."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from phonotheque.cli import main


def test_build_names_an_unknown_source_kind_and_makes_no_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    r = CliRunner().invoke(main, ["build", "-w", str(ws), f"foo:{tmp_path}"])
    assert r.exit_code == 2, r.output
    # before: "foo:/tmp/...: no such file or folder"
    assert "unknown source kind 'foo'" in r.output and "musicbrainz" in r.output
    assert not ws.exists()


def test_build_with_a_missing_source_makes_no_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    r = CliRunner().invoke(main, ["build", "-w", str(ws), f"tags:{tmp_path / 'nowhere'}"])
    assert r.exit_code == 2, r.output
    assert "no such file or folder" in r.output and "nowhere" in r.output
    assert not ws.exists()  # before: an empty workspace was left behind


def test_negative_worker_counts_are_refused(tmp_path: Path) -> None:
    for args in (["build", "-w", str(tmp_path / "ws"), str(tmp_path)],
                 ["audio", "-w", str(tmp_path)], ["pack", "-w", str(tmp_path)]):
        r = CliRunner().invoke(main, [*args, "--workers", "-3"])
        assert r.exit_code == 2, (args, r.output)
        assert "-3" in r.output and ">=0" in r.output.replace(" ", ""), r.output
    assert not (tmp_path / "ws").exists()
