"""SIGKILL `phono release` (pack + publish) at several moments; the re-run gives the same bytes."""

from __future__ import annotations

import hashlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

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
