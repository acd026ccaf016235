"""A takedown takes effect everywhere: `phono exclude add` + `phono release`, as an operator
runs them, against a real running `phono serve` and a real libtorrent `phono seed`."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.workspace import Workspace
from tests.publish.archive import make_archive
from tests.serve.clients import libtorrent_download

VICTIM = 1  # index into make_archive's tracks: band 1, released in the first wave


def _phono(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from phonotheque.cli import main; main()", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _run(ws: Workspace, *args: str, code: int = 0) -> str:
    res = CliRunner().invoke(main, [*args, "-w", str(ws.root)])
    assert res.exit_code == code, res.output
    return res.output


@pytest.fixture
def released(ws: Workspace, data: Path) -> tuple[Workspace, int, str]:
    """A released archive (several data folders, one wave); the victim's id and ISRC."""
    arc = make_archive(ws, data, patch_every=2)
    _run(ws, "pack", "--max-files", "3")
    _run(ws, "release")
    tid = arc.track_ids[VICTIM]
    with ws.store(readonly=True) as store:
        isrc = str(store.scalar("SELECT isrc FROM track_isrc WHERE track_id = ?", (tid,)))
    return ws, tid, isrc


def _take_down(ws: Workspace, isrc: str) -> None:
    _run(ws, "exclude", "add", "--isrc", isrc, "--reason", "takedown request")
    _run(ws, "release")


def _seed(ws: Workspace) -> tuple[subprocess.Popen[str], int, list[str]]:
    proc = _phono("seed", "-w", str(ws.root), "--listen", "127.0.0.1:0", "--no-dht", "--no-lsd",
                  "--no-utp")
    assert proc.stdout is not None
    lines = []
    for _ in range(50):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("seeding "):
            return proc, int(line.rsplit(":", 1)[1]), lines
    proc.kill()
    raise AssertionError("".join(lines) + (proc.stderr.read() if proc.stderr else ""))


def test_seed_after_a_takedown_seeds_every_current_torrent(
    released: tuple[Workspace, int, str], tmp_path: Path
) -> None:
    ws, _tid, isrc = released
    _take_down(ws, isrc)
    entries = orjson.loads((ws.publish / "torrents.json").read_bytes())
    current = [e for e in entries if not e["obsolete"]]
    proc, port, lines = _seed(ws)
    try:
        assert f"seeding {len(current)} torrents" in lines[-1]
        rebuilt = next(e for e in current if e["kind"] == "data" and e["wave"] == 2)
        libtorrent_download(ws.publish / rebuilt["torrent"], tmp_path / "dl",
                            ("127.0.0.1", port), timeout=60)
        assert (tmp_path / "dl" / rebuilt["display_name"]).is_dir()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_seed_reports_a_missing_payload_and_seeds_the_rest(
    released: tuple[Workspace, int, str],
) -> None:
    ws, _tid, _isrc = released
    entries = orjson.loads((ws.publish / "torrents.json").read_bytes())
    current = [e for e in entries if not e["obsolete"]]
    lost = next(e for e in current if e["kind"] == "data")
    shutil.rmtree(ws.torrents / lost["display_name"])
    proc, _port, lines = _seed(ws)
    try:
        text = "".join(lines)
        assert f"seeding {len(current) - 1} torrents" in text
        assert "missing" in text and lost["display_name"] in text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_ledger_shows_the_exclusion_at_once(released: tuple[Workspace, int, str]) -> None:
    ws, tid, isrc = released
    _run(ws, "exclude", "add", "--isrc", isrc, "--reason", "takedown request")
    doc = orjson.loads(_run(ws, "ledger", "--status", "excluded", "--json"))
    assert [t["track_id"] for t in doc["tracks"]] == [tid]
    assert doc["counts"]["success"] == 9
    _run(ws, "exclude", "remove", "isrc", isrc)
    doc = orjson.loads(_run(ws, "ledger", "--json"))
    assert "excluded" not in doc["counts"]
    assert doc["counts"]["success"] == 10  # its audio is still there: success again


def test_exclude_add_reports_what_this_entry_matched(released: tuple[Workspace, int, str],
                                                     ) -> None:
    ws, _tid, isrc = released
    out = _run(ws, "exclude", "add", "--isrc", isrc, "--reason", "r")
    assert "matches 1 track" in out
    out = _run(ws, "exclude", "add", "--mbid", "00000000-0000-4000-9000-000000000004",
               "--reason", "r")  # a release of one track
    assert "matches 1 track" in out and "2 tracks excluded in all" in out
    out = _run(ws, "exclude", "add", "--isrc", "USRC17607839", "--reason", "r")
    assert "matches no track" in out
    out = _run(ws, "exclude", "add", "--mbid", "not-a-uuid", "--reason", "r", code=2)
    assert "not-a-uuid" in out and "MBID" in out
    # remove normalises the value as add did
    dashed = f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:7]}-{isrc[7:]}".lower()
    assert "removed" in _run(ws, "exclude", "remove", "isrc", dashed)
    assert "not found" in _run(ws, "exclude", "remove", "isrc", dashed)
