"""`phono audio` and `phono audio rebuild` through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.workspace import Workspace

from .conftest import Entry, add_tracks


def test_audio_run_and_rebuild(ws: Workspace, data: Path, sounds: Path, tmp_path: Path) -> None:
    add_tracks(ws, [Entry(data / "beets" / "full.flac", "original"), Entry(sounds / "bell.oga"),
                    Entry(data / "mutagen" / "too-short.mp3")])
    runner = CliRunner()
    r = runner.invoke(main, ["audio", "-w", str(ws.root), "--workers", "0", "--bitrate", "64k"])
    # README: 10 = finished, but an input failed (too-short.mp3 is quarantined)
    assert r.exit_code == 10, r.output
    assert "archived as original" in r.output and "error_undecodable" in r.output
    assert "realtime" in r.output
    with ws.store(readonly=True) as store:
        row = store.query("SELECT path, patch_path, original_sha256 FROM audio_file "
                          "WHERE tier = 'original'")[0]
        opus = store.query("SELECT reconstruction FROM audio_file WHERE tier = 'reencode'")[0][0]
    assert '"bitrate":"64k"' in opus
    out = tmp_path / "rebuilt.flac"
    r = runner.invoke(main, ["audio", "-w", str(ws.root), "rebuild", str(ws.root / row[0]),
                             str(ws.root / row[1]), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "verified" in r.output
    assert out.read_bytes() == (data / "beets" / "full.flac").read_bytes()
    r = runner.invoke(main, ["audio", "rebuild", str(ws.root / row[0]), str(ws.root / row[1]),
                             "-o", str(tmp_path / "bad.flac"), "--sha256", "0" * 64])
    assert r.exit_code == 4 and "does not match" in r.output
    # a second run skips everything; the earlier failure is not news (exit 0)
    r = runner.invoke(main, ["audio", "-w", str(ws.root), "--workers", "0"])
    assert r.exit_code == 0 and "already done" in r.output
    # retrying it fails again: 10 again
    r = runner.invoke(main, ["audio", "-w", str(ws.root), "--workers", "0", "--retry-errors"])
    assert r.exit_code == 10, r.output


def test_a_held_workspace_lock_is_busy_not_a_missing_workspace(ws: Workspace,
                                                                 sounds: Path) -> None:
    import fcntl
    import os

    add_tracks(ws, [Entry(sounds / "bell.oga")])
    lock = ws.audio / ".lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running `phono audio` holds it
        r = CliRunner().invoke(main, ["audio", "-w", str(ws.root), "--workers", "0"])
    finally:
        os.close(fd)
    assert r.exit_code == 7, r.output  # README: 7 busy (3 would say "not a workspace")
    assert "busy" in r.output and "another `phono audio`" in r.output


def test_bad_options(ws: Workspace) -> None:
    r = CliRunner().invoke(main, ["audio", "-w", str(ws.root), "--bitrate", "loud"])
    assert r.exit_code == 2 and "not a bitrate" in r.output


def test_help_texts() -> None:
    for args in (["audio", "--help"], ["audio", "rebuild", "--help"]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0 and len(r.output) > 200


def test_a_track_without_a_file_is_wanted_not_an_error(ws: Workspace, sounds: Path) -> None:
    ids = add_tracks(ws, [Entry(sounds / "bell.oga")])
    with ws.store() as store, store.transaction() as conn:
        conn.execute("DELETE FROM source_audio WHERE track_id = ?", (ids[0],))
    r = CliRunner().invoke(main, ["audio", "-w", str(ws.root), "--workers", "0"])
    assert r.exit_code == 0, r.output
    assert "wanted (no file held" in r.output
    assert "error_no_source" not in r.output


@pytest.mark.parametrize("args", [["audio", "-j"], ["pack", "-j"], ["release", "-j"],
                                  ["build", "--workers"]])
def test_a_worker_count_past_the_cap_is_a_clear_error(tmp_path: Path, args: list[str]) -> None:
    """`phono audio -j 99999999999999999999` (also pack, release, build) ended in a
    traceback: "OverflowError: Python int too large to convert to C int" from the
    process pool's semaphore, on both engines, even with nothing to do. Every --workers
    is capped at MAX_WORKERS (1024), exit 2 naming the option; the cap itself is taken."""
    from phonotheque.cli._common import MAX_WORKERS

    Workspace.create(tmp_path / "ws")
    res = CliRunner().invoke(main, [args[0], "-w", str(tmp_path / "ws"), args[1], "9" * 20])
    assert res.exit_code == 2 and "workers" in res.output.lower(), res.output
    assert f"0<=x<={MAX_WORKERS}" in res.output, res.output
    if args[0] == "audio":
        res = CliRunner().invoke(main, ["audio", "-w", str(tmp_path / "ws"), "-j",
                                        str(MAX_WORKERS)])
        assert res.exit_code == 0, res.output
