"""Crash safety of the whole build: SIGKILL `phono build` at random moments, re-run it.

The final publish/ tree must be byte-identical to an uninterrupted build's, the
catalogue must hold no duplicate rows, and audio files finished before the
kill must not be produced again. The clock is frozen (SOURCE_DATE_EPOCH) so
that two builds of the same inputs can be compared byte for byte.

The same harness runs on a columnar workspace (``--engine duckdb``, issue 13): each
columnar command (ingest musicbrainz, ingest listens, select once it runs there,
publish) is killed while it holds catalogue.duckdb, re-run, and the result compared
with an uninterrupted run and with a second fresh one (DuckDB's parallel operators
reorder rows: every output must have its own order).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import orjson
import pytest

from phonotheque.catalogue import bulk
from phonotheque.workspace import COLUMNAR_COMMANDS

from .os_helpers import umount
from .require import require_tmpfs
from .shared_builds import EPOCH, PHONO, built_once, copy, frozen_demo, frozen_demo_cmd

ENV = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH,
       "PYTHONUNBUFFERED": "1"}  # lines reach the harness as they are printed


def _build_cmd(ws: Path) -> list[str]:
    return frozen_demo_cmd(ws)


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


# A build prints one summary line per finished stage ("  ingest 269 records read, ...").
# A stage has begun once the line of the stage before it is out (ingest: once the
# catalogue file exists, on a workspace's first build). Kills are aimed at milestones
# inside a stage that the build leaves on disk, not at times: a stage's pace varies
# tenfold with the machine's load (and publish's first chart imports matplotlib).
STAGES = ("ingest", "audio", "pack", "publish")
_BEFORE = {"audio": "select", "pack": "audio", "publish": "pack"}
_SUMMARY = re.compile(r"\s*(ingest|select|audio|pack|publish)\s")


def _archived(ws: Path) -> int:
    """Finished archive files (temporaries and the lock aside)."""
    return sum(1 for p in (ws / "audio").rglob("*")
               if p.is_file() and not p.name.startswith("."))


def _milestones(ws: Path, stage: str, rng: random.Random,
                attempt: int = 0) -> tuple[str, Callable[[], bool]]:
    """A random point inside ``stage``: its name and a test for having reached it."""
    if stage == "ingest":
        # Reading the demo's sources takes 0.2 s on a quiet machine (a second or more
        # under load), and nothing on disk marks its middle: aim early, and earlier again
        # on each retry (see _trial).
        after = rng.uniform(0, 0.1) / (1 + 4 * attempt)
        since: list[float] = []

        def ingesting() -> bool:
            if not since and (ws / "catalogue.sqlite").exists():
                since.append(time.monotonic())
            return bool(since) and time.monotonic() - since[0] >= after
        return f"catalogue created {after:.2f} s ago", ingesting
    if stage == "audio":  # the demo archives 19 files
        k = rng.randint(0, 8)
        return f"{k} files archived", lambda: _archived(ws) >= k
    if stage == "pack":  # 4 torrent folders, each with a .torrent and metadata
        k = rng.randint(0, 3)
        return f"{k} entries in torrents/", lambda: len(list((ws / "torrents").iterdir())) >= k
    return rng.choice([
        ("pack done", lambda: True),
        ("coverage chart written", lambda: (ws / "publish" / "coverage.svg").exists()),
        ("generation folder made", lambda: (ws / ".publish").is_dir()),
    ])


class _Build:
    """A running `phono build` (or another phono command) whose output lines are read
    as they come."""

    def __init__(self, ws: Path, cmd: list[str] | None = None) -> None:
        self.ws = ws
        self.lines: list[str] = []
        self.proc = subprocess.Popen(cmd or _build_cmd(ws), env=ENV, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)  # killpg: with its workers
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def finished(self) -> set[str]:
        """The stages whose summary line came."""
        return {m.group(1) for line in list(self.lines) if (m := _SUMMARY.match(line))}

    def begun(self, stage: str) -> bool:
        if stage == "ingest":
            return (self.ws / "catalogue.sqlite").exists()
        return _BEFORE[stage] in self.finished()

    def wait(self) -> int:
        code = self.proc.wait(timeout=600)
        self._reader.join(timeout=30)
        return code

    def output(self) -> str:
        return "".join(self.lines)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted build: a copy of the run's shared one (tests/shared_builds.py; the
    same build as test_pipeline_dask's local one), as test_second_build_changes_nothing
    builds on it again."""
    built, output = frozen_demo(tmp_path_factory)
    assert (built / "publish" / "torrents.json").is_file()
    finished = {m.group(1) for line in output.splitlines() if (m := _SUMMARY.match(line))}
    assert finished == {"select", *STAGES}, output
    return copy(built, tmp_path_factory.mktemp("ref") / "ws")


def _kill_during(ws: Path, stage: str, rng: random.Random, attempt: int = 0) -> bool:
    """Start a build, SIGKILL it (and its workers) aimed inside ``stage``; assert the kill
    landed on a running build, and return whether ``stage`` was still unfinished."""
    what, reached = _milestones(ws, stage, rng, attempt)
    build = _Build(ws)
    while not (build.begun(stage) and reached()):
        assert build.proc.poll() is None, (
            f"the build ended before {stage}: {what}:\n" + build.output())
        time.sleep(0.002)
    assert build.proc.poll() is None, f"the build ended before the kill in {stage}"
    os.killpg(build.proc.pid, signal.SIGKILL)
    assert build.wait() == -signal.SIGKILL, build.output()  # the kill landed: it was running
    return stage not in build.finished()


def _trial(tmp_path: Path, ref: Path, kills: tuple[str, ...], seed: int) -> None:
    """Kill one build per stage in ``kills`` (in turn, each a re-run of the last), then
    finish the build and compare with the uninterrupted one."""
    rng = random.Random(seed)
    ws = tmp_path / f"ws{seed}"
    assert list(kills) == sorted(set(kills), key=STAGES.index)  # see _random_kills
    for i, stage in enumerate(kills):
        for attempt in range(3):
            if _kill_during(ws, stage, rng, attempt):
                break  # the kill landed inside the stage
            # Only a timed milestone (ingest, always a trial's first kill) can overshoot a
            # stage that ran faster than aimed for: start that trial again from nothing.
            assert i == 0, f"seed {seed}: killed after {stage} had finished"
            shutil.rmtree(ws)
        else:
            pytest.fail(f"seed {seed}: three kills aimed inside {stage} all came after it")
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
        tmp_path: Path, reference: Path, kills: tuple[str, ...]) -> None:
    _trial(tmp_path, reference, kills, seed=len(kills))


def _random_kills(seed: int) -> tuple[str, ...]:
    """One or two stages to kill in, the second later than the first (a re-run finds
    the milestones of a stage it interrupted already passed)."""
    rng = random.Random(seed)
    first = rng.choice(STAGES)
    later = STAGES[STAGES.index(first) + 1:]
    return (first, rng.choice(later)) if later and rng.random() < 0.5 else (first,)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 120))
def test_killed_build_many_trials(tmp_path: Path, reference: Path,
                                  seed: int) -> None:
    _trial(tmp_path, reference, _random_kills(seed), seed)


def test_slow_trials_kill_in_every_stage() -> None:
    kills = [k for seed in range(100, 120) for k in _random_kills(seed)]
    assert set(kills) == set(STAGES) and len(kills) >= 25


def test_second_build_changes_nothing(reference: Path) -> None:
    ref = reference
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


def test_disk_full_then_rerun_completes(tmpfs: Path, reference: Path) -> None:
    ref = reference
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
                                                    reference: Path) -> None:
    ref = reference
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


# --- the columnar engine (issue 13) -------------------------------------------------

DEMO = Path(str(resources.files("phonotheque") / "demo_data"))

#: A columnar run, one phono command per step: (command name, its arguments before -w).
_COLUMNAR_STEPS: list[tuple[str, list[str]]] = [
    ("ingest musicbrainz", ["ingest", "musicbrainz", str(DEMO / "musicbrainz")]),
    ("ingest listens", ["ingest", "listens", str(DEMO / "listens.csv"),
                        str(DEMO / "listenbrainz-top-recordings.json")]),
    ("select", ["select"]),
    ("publish", ["publish"]),
]
#: The steps that run on a columnar workspace today (select joins when it lands there).
COLUMNAR_STEPS = [(n, a) for n, a in _COLUMNAR_STEPS if n in COLUMNAR_COMMANDS]
#: Every table of catalogue.duckdb (bulk tables, checkpoints, selection, ledger).
COLUMNAR_TABLES = (*bulk.BULK_TABLES, "ingest_checkpoint", "selection", "ledger", "bulk_meta")


def _phono_cmd(ws: Path, args: list[str]) -> list[str]:
    return [PHONO, *args, "-w", str(ws)]


def _columnar_init(ws: Path) -> None:
    made = subprocess.run([PHONO, "init", str(ws), "--engine", "duckdb"], env=ENV,
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr


def _run_step(ws: Path, name: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(_phono_cmd(ws, args), env=ENV, capture_output=True, text=True)
    assert done.returncode in (0, 10), f"{name}: {done.stdout}{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def _columnar_tables(ws: Path) -> dict[str, str]:
    """Each table of catalogue.duckdb: a digest of its rows in a fixed order."""
    con = bulk.open_bulk(ws, readonly=True)
    try:
        return {t: hashlib.sha256(repr(con.execute(
            f"SELECT * FROM {t} ORDER BY ALL").fetchall()).encode()).hexdigest()
            for t in COLUMNAR_TABLES}
    finally:
        con.close()


def _columnar_duplicates(ws: Path) -> list[str]:
    checks = {
        "artist": "SELECT count(*) - count(DISTINCT key) FROM artist",
        "release": "SELECT count(*) - count(DISTINCT key) FROM release",
        "track": "SELECT count(*) - count(DISTINCT key) FROM track",
        "track ids": "SELECT count(*) - count(DISTINCT id) FROM track",
        "track_isrc": "SELECT count(*) - count(DISTINCT (track_id, isrc)) FROM track_isrc",
        "listens": "SELECT count(*) - count(DISTINCT (dataset, key_kind, key)) FROM listens",
        "ingest_checkpoint": "SELECT count(*) - count(DISTINCT source) FROM ingest_checkpoint",
    }
    con = bulk.open_bulk(ws, readonly=True)
    try:
        return [t for t, q in checks.items() if (con.execute(q).fetchone() or (0,))[0]]
    finally:
        con.close()


def _sqlite_counts(ws: Path) -> dict[str, int]:
    """The operational tables of catalogue.sqlite (rejects, torrents ...)."""
    conn = sqlite3.connect(ws / "catalogue.sqlite")
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("reject", "torrent", "torrent_file", "select_run")}
    finally:
        conn.close()


def _columnar_run(ws: Path) -> None:
    """An uninterrupted columnar run."""
    _columnar_init(ws)
    for name, args in COLUMNAR_STEPS:
        _run_step(ws, name, args)


@pytest.fixture(scope="module")
def columnar_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted columnar run, made once per test run and shared by the xdist
    workers (tests/shared_builds.py): tests read it, or copy it before changing it."""
    def make(ws: Path) -> str:
        _columnar_run(ws)
        return ""

    ws, _ = built_once(tmp_path_factory, "columnar-reference", make)
    assert (ws / "publish" / "torrents.json").is_file()
    assert (ws / "publish" / "parquet").is_dir()
    return ws


def _holds_catalogue(pid: int) -> bool:
    """Whether process ``pid`` has catalogue.duckdb open (its stage has begun)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd).endswith(bulk.BULK_FILE):
                return True
        except OSError:
            continue
    return False


def _kill_step(ws: Path, name: str, args: list[str], rng: random.Random,
               attempt: int) -> bool:
    """Run one columnar step and SIGKILL it at a random moment after it opened
    catalogue.duckdb; assert the kill landed on a running process, and return whether
    the step was unfinished (it had printed nothing: its summary comes at its end)."""
    after = rng.uniform(0, 0.5) / (1 + 4 * attempt)
    run = _Build(ws, _phono_cmd(ws, args))
    since: float | None = None
    while since is None or time.monotonic() - since < after:
        if run.proc.poll() is not None:
            run.wait()
            return False  # it finished before the aimed moment
        if since is None and _holds_catalogue(run.proc.pid):
            since = time.monotonic()
        time.sleep(0.002)
    os.killpg(run.proc.pid, signal.SIGKILL)
    code = run.wait()
    if code == 0:
        return False  # it finished in the instant between the last poll and the kill
    assert code == -signal.SIGKILL, f"{name}: {run.output()}"  # it was running
    return not run.output().strip()


def _columnar_trial(tmp_path: Path, ref: Path, kills: tuple[str, ...], seed: int) -> None:
    """A columnar run with each step named in ``kills`` SIGKILLed once and re-run;
    publish/, every table of catalogue.duckdb and catalogue.sqlite's operational
    counts must equal the uninterrupted run's."""
    rng = random.Random(seed)
    ws = tmp_path / f"ws{seed}"
    _columnar_init(ws)
    for name, args in COLUMNAR_STEPS:
        if name in kills:
            before = tmp_path / f"before{seed}"
            shutil.copytree(ws, before)
            for attempt in range(3):
                if _kill_step(ws, name, args, rng, attempt):
                    break
                shutil.rmtree(ws)  # it finished first: aim earlier on a fresh copy
                shutil.copytree(before, ws)
            else:
                pytest.fail(f"seed {seed}: three kills aimed inside {name} all came after it")
            shutil.rmtree(before)
        _run_step(ws, name, args)
    assert _tree(ws / "publish") == _tree(ref / "publish"), f"seed {seed}: publish differs"
    assert _columnar_duplicates(ws) == []
    assert _columnar_tables(ws) == _columnar_tables(ref)
    assert _sqlite_counts(ws) == _sqlite_counts(ref)


@pytest.mark.parametrize("kills", [("ingest musicbrainz", "publish"), ("ingest listens", "select")],
                         ids="-".join)
def test_killed_columnar_run_resumes_to_identical_output(
        tmp_path: Path, columnar_reference: Path, kills: tuple[str, ...]) -> None:
    assert set(kills) <= {n for n, _ in COLUMNAR_STEPS}
    _columnar_trial(tmp_path, columnar_reference, kills, seed=len(kills[0]))


def _random_columnar_kills(seed: int) -> tuple[str, ...]:
    rng = random.Random(seed)
    names = [n for n, _ in COLUMNAR_STEPS]
    return tuple(n for n in names if rng.random() < 0.5) or (rng.choice(names),)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(200, 216))
def test_killed_columnar_run_many_trials(tmp_path: Path, columnar_reference: Path,
                                         seed: int) -> None:
    _columnar_trial(tmp_path, columnar_reference, _random_columnar_kills(seed), seed)


def test_slow_columnar_trials_kill_in_every_step() -> None:
    kills = [k for seed in range(200, 216) for k in _random_columnar_kills(seed)]
    assert set(kills) == {n for n, _ in COLUMNAR_STEPS}


def test_two_fresh_columnar_runs_give_the_same_bytes(tmp_path: Path,
                                                     columnar_reference: Path) -> None:
    """Reproducible bytes: the same inputs on a second fresh columnar workspace give
    the same publish/ (metadata.sqlite, Parquet, torrents) and the same tables."""
    ws = tmp_path / "again"
    _columnar_run(ws)
    assert _tree(ws / "publish") == _tree(columnar_reference / "publish")
    assert _columnar_tables(ws) == _columnar_tables(columnar_reference)


def _ingest_json(ws: Path, args: list[str]) -> dict:
    done = _run_step(ws, args[1], [*args[:2], "--json", *args[2:]])
    return orjson.loads(done.stdout)["report"]


def test_columnar_rerun_changes_nothing(tmp_path: Path, columnar_reference: Path) -> None:
    """Idempotence: every step run again on a finished columnar workspace adds nothing,
    says so, and leaves catalogue.duckdb's tables and publish/ as they were; the same
    inputs under other paths are read whole and every record found unchanged."""
    ws = tmp_path / "ws"
    shutil.copytree(columnar_reference, ws)
    tables, published = _columnar_tables(ws), _tree(ws / "publish")
    ingests = [args for name, args in COLUMNAR_STEPS if name.startswith("ingest")]
    for args in ingests:  # the same files: each checkpoint says done
        report = _ingest_json(ws, args)
        assert report["added"] == report["updated"] == report["read"] == 0, report
        assert {s["status"] for s in report["sources"]} == {"skipped"}, report
    for name, args in COLUMNAR_STEPS:
        if not name.startswith("ingest"):
            _run_step(ws, name, args)
    assert _columnar_tables(ws) == tables
    assert _tree(ws / "publish") == published

    copies = tmp_path / "copies"  # the same bytes under new names: read again, whole
    for args in ingests:
        moved = []
        (copies / args[1]).mkdir(parents=True)
        for src in map(Path, args[2:]):
            dest = copies / args[1] / src.name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dest)
            moved.append(str(dest))
        report = _ingest_json(ws, [*args[:2], *moved])
        assert report["read"] > 0 and report["added"] == report["updated"] == 0, report
        assert report["unchanged"] > 0 and report["rejected"] == 0, report
    again = _columnar_tables(ws)
    assert again.pop("ingest_checkpoint") != tables["ingest_checkpoint"]  # the new inputs
    assert again == {t: h for t, h in tables.items() if t != "ingest_checkpoint"}
