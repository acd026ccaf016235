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
import re
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from phonotheque.cli.build_cmds import demo_sources

from .os_helpers import umount
from .require import require_tmpfs

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


# A build prints one summary line per finished stage ("  ingest 269 records read, ...");
# the kills below are timed by them. A stage has begun once the line of the stage before
# it is out (ingest: once the catalogue file exists, on a workspace's first build only).
STAGES = ("ingest", "audio", "pack", "publish")
_BEFORE = {"audio": "select", "pack": "audio", "publish": "pack"}
_SUMMARY = re.compile(r"\s*(ingest|select|audio|pack|publish)\s")


class _Build:
    """A running `phono build` whose output lines are read as they come (with their time)."""

    def __init__(self, ws: Path) -> None:
        self.ws = ws
        self.t0 = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(_build_cmd(ws), env=ENV, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)  # killpg: with its workers
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic() - self.t0, line))

    def finished(self) -> dict[str, float]:
        """Stage -> when its summary line came."""
        out: dict[str, float] = {}
        for at, line in list(self.lines):
            if (m := _SUMMARY.match(line)) is not None:
                out.setdefault(m.group(1), at)
        return out

    def begun(self, stage: str) -> float | None:
        if stage == "ingest":
            return 0.0 if (self.ws / "catalogue.sqlite").exists() else None
        return self.finished().get(_BEFORE[stage])

    def wait(self) -> int:
        code = self.proc.wait(timeout=600)
        self._reader.join(timeout=30)
        return code

    def output(self) -> str:
        return "".join(line for _, line in self.lines)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """An uninterrupted build, and how long each stage took in it (seconds)."""
    ws = tmp_path_factory.mktemp("ref") / "ws"
    build = _Build(ws)
    ingest_began = None
    while build.proc.poll() is None:
        if ingest_began is None and build.begun("ingest") is not None:
            ingest_began = time.monotonic() - build.t0
        time.sleep(0.01)
    assert build.wait() in (0, 10), build.output()
    assert (ws / "publish" / "torrents.json").is_file()
    done = build.finished()
    assert set(done) >= {"select", *STAGES}, build.output()
    began = {"ingest": ingest_began or 0.0, **{s: done[_BEFORE[s]] for s in _BEFORE}}
    return ws, {s: done[s] - began[s] for s in STAGES}


def _kill_during(ws: Path, stage: str, took: float, rng: random.Random) -> None:
    """Start a build, SIGKILL it (and its workers) while ``stage`` runs; assert it landed."""
    build = _Build(ws)
    while build.begun(stage) is None:
        assert build.proc.poll() is None, f"the build ended before {stage} began:\n" + \
            build.output()
        time.sleep(0.005)
    time.sleep(rng.uniform(0.05, 0.5) * took)  # within the stage, by the reference's pace
    assert build.proc.poll() is None, f"the build ended before the kill in {stage}"
    os.killpg(build.proc.pid, signal.SIGKILL)
    assert build.wait() == -signal.SIGKILL, build.output()  # the kill landed: it was running
    assert stage not in build.finished(), (
        f"killed after {stage} had finished (the kill aimed at it):\n" + build.output())


def _trial(tmp_path: Path, reference: tuple[Path, dict[str, float]],
           kills: tuple[str, ...], seed: int) -> None:
    """Kill one build per stage in ``kills`` (in turn, each a re-run of the last), then
    finish the build and compare with the uninterrupted one."""
    ref, took = reference
    rng = random.Random(seed)
    ws = tmp_path / f"ws{seed}"
    assert list(kills) == sorted(set(kills), key=STAGES.index)  # see _random_kills
    for stage in kills:
        _kill_during(ws, stage, took[stage], rng)
    before = _finished_audio(ws) if (ws / "catalogue.sqlite").exists() else {}
    done = subprocess.run(_build_cmd(ws), env=ENV, capture_output=True, text=True)
    assert done.returncode in (0, 10), done.stderr
    assert _tree(ws / "publish") == _tree(ref / "publish"), f"seed {seed}: publish differs"
    assert _duplicates(ws) == []
    assert _counts(ws) == _counts(ref)
    after = _finished_audio(ws)
    redone = [p for p, ident in before.items() if after.get(p) != ident]
    assert redone == [], f"seed {seed}: finished audio re-encoded after the kill: {redone}"


@pytest.mark.parametrize("kills", [("ingest", "audio"), ("pack", "publish"), ("audio",)],
                         ids="-".join)
def test_killed_build_resumes_to_identical_output(
        tmp_path: Path, reference: tuple[Path, dict[str, float]], kills: tuple[str, ...]) -> None:
    _trial(tmp_path, reference, kills, seed=len(kills))


def _random_kills(seed: int) -> tuple[str, ...]:
    """One or two stages to kill in, the second later than the first (a re-run redoes
    less of an interrupted stage, so the reference's pace no longer times it)."""
    rng = random.Random(seed)
    first = rng.choice(STAGES)
    later = STAGES[STAGES.index(first) + 1:]
    return (first, rng.choice(later)) if later and rng.random() < 0.5 else (first,)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 120))
def test_killed_build_many_trials(tmp_path: Path, reference: tuple[Path, dict[str, float]],
                                  seed: int) -> None:
    _trial(tmp_path, reference, _random_kills(seed), seed)


def test_slow_trials_kill_in_every_stage() -> None:
    kills = [k for seed in range(100, 120) for k in _random_kills(seed)]
    assert set(kills) == set(STAGES) and len(kills) >= 25


def test_second_build_changes_nothing(reference: tuple[Path, dict[str, float]]) -> None:
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
    """A small size-limited filesystem (tmpfs; we are root in CI)."""
    mnt = require_tmpfs(tmp_path / "mnt", "900k")
    yield mnt
    umount(mnt)


def test_disk_full_then_rerun_completes(tmpfs: Path, reference: tuple[Path, dict[str, float]]) -> None:
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
                                                    reference: tuple[Path, dict[str, float]]) -> None:
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
