"""SIGKILL `phono release` (pack + publish) at several moments; the re-run gives the same bytes."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from phonotheque.workspace import Workspace
from tests.publish.helpers import output_hashes

PHONO = [str(Path(sys.executable).parent / "phono")]


def _archive(root: Path, n: int = 120) -> Workspace:
    ws = Workspace.create(root)
    conn = sqlite3.connect(ws.catalogue, isolation_level=None)
    conn.execute("BEGIN")
    rng = random.Random(1)
    for i in range(1, n + 1):
        data = rng.randbytes(300_000 + i)
        rel = f"audio/{i:05d}.opus"
        (ws.root / rel).write_bytes(data)
        conn.execute("INSERT INTO release(id, key, title) VALUES (?, ?, ?)", (i, f"r{i}", f"R{i}"))
        conn.execute("INSERT INTO track(id, key, title, release_id) VALUES (?,?,?,?)",
                     (i, f"t{i}", f"T{i}", i))
        conn.execute("INSERT INTO selection(track_id, rank, band, cum_share, tier) "
                     "VALUES (?, ?, ?, 0, 'reencode')", (i, i, 1 + i * 3 // n))
        conn.execute("INSERT INTO ledger VALUES (?, 'success', NULL, '2026-01-01T00:00:00+00:00')",
                     (i,))
        conn.execute("INSERT INTO audio_file(track_id, tier, path, size, sha256, created_at) "
                     "VALUES (?, 'reencode', ?, ?, ?, '2026-01-01T00:00:00+00:00')",
                     (i, rel, len(data), hashlib.sha256(data).hexdigest()))
    conn.execute("COMMIT")
    conn.close()
    return ws


@pytest.mark.slow
def test_killed_release_resumes_to_identical_bytes(tmp_path: Path) -> None:
    cmd = [*PHONO, "release", "--wave-bands", "2"]
    ref = _archive(tmp_path / "ref")
    t0 = time.monotonic()
    subprocess.run([*cmd, "-w", str(ref.root)], check=True, capture_output=True)
    full = time.monotonic() - t0
    want = output_hashes(ref.root)
    killed = 0
    for trial, share in enumerate((0.1, 0.3, 0.45, 0.6, 0.7, 0.8)):
        ws = _archive(tmp_path / f"t{trial}")
        proc = subprocess.Popen([*cmd, "-w", str(ws.root)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(full * share)
        if proc.poll() is not None:
            continue  # finished before the kill: nothing to resume
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with ws.store(readonly=True) as store:
            done = store.scalar("SELECT count(*) FROM wave") and not store.get_meta(
                "release.pending_publish")
        if done:
            continue  # killed while exiting, after the release was complete
        killed += 1
        # The same command again: it resumes (a recorded wave is published, not a new one).
        subprocess.run([*cmd, "-w", str(ws.root)], check=True, capture_output=True)
        assert output_hashes(ws.root) == want, f"trial {trial} (killed at {share:.0%})"
    assert killed >= 2


@pytest.mark.slow
def test_killed_publish_leaves_the_old_or_the_new_generation(tmp_path: Path) -> None:
    """Readers of publish/ never see a mix: a kill at any moment of `phono release` leaves
    publish/ exactly as the previous release left it, or exactly as the new one does."""
    from tests.publish.helpers import tree_hashes

    base = _archive(tmp_path / "base")
    subprocess.run([*PHONO, "release", "--wave-bands", "2", "-w", str(base.root)], check=True,
                   capture_output=True)
    old = tree_hashes(base.publish)
    ref = tmp_path / "ref"
    shutil.copytree(base.root, ref, symlinks=True)
    t0 = time.monotonic()
    subprocess.run([*PHONO, "release", "-w", str(ref)], check=True, capture_output=True)
    full = time.monotonic() - t0
    new = tree_hashes(ref / "publish")
    assert new != old
    seen = set()
    for trial, share in enumerate((0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)):
        ws = tmp_path / f"t{trial}"
        shutil.copytree(base.root, ws, symlinks=True)
        proc = subprocess.Popen([*PHONO, "release", "-w", str(ws)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(full * share)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = tree_hashes(ws / "publish")
        assert now in (old, new), f"trial {trial} (killed at {share:.0%}): a mix of generations"
        seen.add("new" if now == new else "old")
        subprocess.run([*PHONO, "release", "-w", str(ws)], check=True, capture_output=True)
        assert tree_hashes(ws / "publish") == new
        # one generation before the current one is kept; unfinished ones are gone
        assert len([p for p in (ws / ".publish").iterdir()]) <= 2
    assert "old" in seen  # some kills landed before the switch


def _phono(*args: str) -> None:
    from click.testing import CliRunner

    from phonotheque.cli import main

    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output


def test_publish_switches_generations_atomically(tmp_path: Path) -> None:
    """publish/ is a link to a complete generation; a publish switches it in one rename,
    a reader holding the previous generation keeps reading whole files, and only the
    previous generation is kept."""
    ws = _archive(tmp_path / "ws", n=30)
    (ws.publish / "stale-from-an-old-phono").write_text("x")  # a pre-generation publish/
    _phono("release", "--wave-bands", "1", "-w", str(ws.root))
    assert ws.publish.is_symlink() and not os.path.isabs(os.readlink(ws.publish))
    first = ws.publish.resolve()
    held = open(first / "torrents.json", "rb")  # noqa: SIM115 - a reader mid-way
    try:
        for _ in range(2):
            _phono("publish", "-w", str(ws.root))
        now = ws.publish.resolve()
        assert now != first and now.parent == first.parent
        assert orjson.loads(held.read())  # the old generation's file is still whole
    finally:
        held.close()
    gens = sorted(p.name for p in (ws.root / ".publish").iterdir())
    assert len(gens) == 2 and now.name == gens[-1]
    index = orjson.loads((ws.publish / "torrents.json").read_bytes())
    assert all((ws.publish / e["torrent"]).is_file() for e in index)
    # a killed publish's unfinished generation is never pointed at, and goes next time
    (ws.root / ".publish" / "999999").mkdir()
    _phono("publish", "-w", str(ws.root))
    assert not (ws.root / ".publish" / "999999").exists()
