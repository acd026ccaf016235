"""Crash safety of the whole build: SIGKILL `phono build` at random moments, re-run it.

The final publish/ tree must be byte-identical to an uninterrupted build's, the
catalogue must hold no duplicate rows, and audio files finished before the
kill must not be produced again. The clock is frozen (SOURCE_DATE_EPOCH) so
that two builds of the same inputs can be compared byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from phonotheque.cli.build_cmds import demo_sources

from .os_helpers import mount_tmpfs, umount

PHONO = str(Path(__file__).parents[1] / ".venv" / "bin" / "phono")
ENV = {**os.environ, "SOURCE_DATE_EPOCH": "1767225600"}  # 2026-01-01T00:00:00Z


def _build_cmd(ws: Path) -> list[str]:
    return [PHONO, "build", "-w", str(ws), "--workers", "2",
            *(str(s) for s in demo_sources())]


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _finished_audio(ws: Path) -> dict[str, tuple[int, int]]:
    """Archive files the catalogue records as done: path -> (inode, mtime_ns)."""
    conn = sqlite3.connect(ws / "catalogue.sqlite")
    try:
        rows = conn.execute(
            "SELECT a.path FROM audio_file a JOIN ledger l ON l.track_id = a.track_id "
            "WHERE l.status = 'success'").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()
    out = {}
    for (path,) in rows:
        st = (ws / path).stat()
        out[path] = (st.st_ino, st.st_mtime_ns)
    return out


def _duplicates(ws: Path) -> list[str]:
    conn = sqlite3.connect(ws / "catalogue.sqlite")
    checks = {
        "track": "SELECT count(*) - count(DISTINCT key) FROM track",
        "track_isrc": "SELECT count(*) - count(DISTINCT track_id || '/' || isrc) FROM track_isrc",
        "listens": "SELECT count(*) - count(DISTINCT dataset || key_kind || key) FROM listens",
        "source_audio": "SELECT count(*) - count(DISTINCT path) FROM source_audio",
        "audio_file": "SELECT count(*) - count(DISTINCT track_id) FROM audio_file",
        "torrent": "SELECT count(*) - count(DISTINCT name) FROM torrent",
    }
    bad = [t for t, q in checks.items() if conn.execute(q).fetchone()[0]]
    conn.close()
    return bad


def _counts(ws: Path) -> dict[str, int]:
    conn = sqlite3.connect(ws / "catalogue.sqlite")
    out = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
           for t in ("artist", "release", "track", "track_isrc", "listens", "source_audio",
                     "audio_file", "torrent", "torrent_file", "reject")}
    conn.close()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    ws = tmp_path_factory.mktemp("ref") / "ws"
    t0 = time.monotonic()
    subprocess.run(_build_cmd(ws), env=ENV, check=False, capture_output=True)
    took = time.monotonic() - t0
    assert (ws / "publish" / "torrents.json").is_file()
    return ws, took


def _trial(tmp_path: Path, reference: tuple[Path, float], seed: int) -> None:
    ref, took = reference
    rng = random.Random(seed)
    ws = tmp_path / f"ws{seed}"
    kills = 0
    for _ in range(rng.randint(1, 2)):
        proc = subprocess.Popen(_build_cmd(ws), env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.2, took))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the build and its worker processes
            kills += 1
        proc.wait()
    before = _finished_audio(ws) if (ws / "catalogue.sqlite").exists() else {}
    done = subprocess.run(_build_cmd(ws), env=ENV, capture_output=True, text=True)
    assert done.returncode in (0, 10), done.stderr
    assert _tree(ws / "publish") == _tree(ref / "publish"), f"seed {seed}: publish differs"
    assert _duplicates(ws) == []
    assert _counts(ws) == _counts(ref)
    after = _finished_audio(ws)
    redone = [p for p, ident in before.items() if after.get(p) != ident]
    assert redone == [], f"seed {seed}: finished audio re-encoded after the kill: {redone}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_build_resumes_to_identical_output(tmp_path: Path, reference: tuple[Path, float],
                                                  seed: int) -> None:
    _trial(tmp_path, reference, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 120))
def test_killed_build_many_trials(tmp_path: Path, reference: tuple[Path, float],
                                  seed: int) -> None:
    _trial(tmp_path, reference, seed)


def test_second_build_changes_nothing(reference: tuple[Path, float]) -> None:
    ref, _ = reference
    before = _tree(ref / "publish")
    audio = _finished_audio(ref)
    out = subprocess.run(_build_cmd(ref), env=ENV, capture_output=True, text=True)
    assert out.returncode in (0, 10), out.stderr
    assert "nothing to do" in out.stdout
    assert _tree(ref / "publish") == before
    assert _finished_audio(ref) == audio


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A small size-limited filesystem (tmpfs; we are root in CI). Skipped where mount is denied."""
    mnt = tmp_path / "mnt"
    if not mount_tmpfs(mnt, "900k"):
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    umount(mnt)


def test_disk_full_then_rerun_completes(tmpfs: Path, reference: tuple[Path, float]) -> None:
    ref, _ = reference
    ws = tmpfs / "ws"
    full = subprocess.run(_build_cmd(ws), env=ENV, capture_output=True, text=True)
    assert full.returncode == 5, full.stdout + full.stderr  # StorageError
    assert "No space left on device" in full.stderr
    assert "Traceback" not in full.stderr
    assert _duplicates(ws) == []
    # no half-written file under a final name: every recorded archive file is whole
    conn = sqlite3.connect(ws / "catalogue.sqlite")
    for path, size in conn.execute("SELECT path, size FROM audio_file"):
        assert (ws / path).stat().st_size == size
    conn.close()
    subprocess.run(["mount", "-o", "remount,size=64m", str(tmpfs)], check=True)
    done = subprocess.run(_build_cmd(ws), env=ENV, capture_output=True, text=True)
    assert done.returncode in (0, 10), done.stderr
    assert _tree(ws / "publish") == _tree(ref / "publish")


def test_read_only_destination_then_rerun_completes(tmpfs: Path,
                                                    reference: tuple[Path, float]) -> None:
    ref, _ = reference
    subprocess.run(["mount", "-o", "remount,size=64m", str(tmpfs)], check=True)
    ws = tmpfs / "ws"
    first = subprocess.run([*_build_cmd(ws), "--stop-after", "select"], env=ENV,
                           capture_output=True, text=True)
    assert first.returncode in (0, 10), first.stderr  # 10: the demo's one broken file
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    ro = subprocess.run(_build_cmd(ws), env=ENV, capture_output=True, text=True)
    assert ro.returncode != 0
    assert "Traceback" not in ro.stderr
    assert "read-only" in ro.stderr.lower(), ro.stderr
    subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    done = subprocess.run(_build_cmd(ws), env=ENV, capture_output=True, text=True)
    assert done.returncode in (0, 10), done.stderr
    assert _tree(ws / "publish") == _tree(ref / "publish")
