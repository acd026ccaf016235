"""Plain progress lines (no terminal) during long steps: the heartbeat.

A job inside one long statement sends no event for minutes (a 10 M-track mbdump merge,
an index build); before the heartbeat a log showed nothing in that time."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from phonotheque.cli._common import plain_progress
from phonotheque.progress import ProgressEvent

PHONO = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "phono")
LINE = re.compile(r"^\d\d:\d\d:\d\d ")


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if LINE.match(line)]


def test_a_long_step_repeats_its_last_figures(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PHONO_PROGRESS_INTERVAL", "0.1")
    with plain_progress("ingest", "B") as log:
        log(ProgressEvent("ingest", 3 << 20, 10 << 20, "B", "dump.tar.xz"))
        time.sleep(0.55)  # one long statement: no event
    lines = _lines(capsys.readouterr().err)
    # beats at ~0.1 .. 0.5 s and the last line; an event alone prints nothing this early
    assert len(lines) >= 4, lines
    assert all("ingest: 3/10 MiB (30%)" in line and line.endswith("- dump.tar.xz")
               for line in lines), lines


def test_before_any_event_it_says_the_job_runs(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PHONO_PROGRESS_INTERVAL", "0.1")
    with plain_progress("select"):
        time.sleep(0.35)
    lines = _lines(capsys.readouterr().err)
    assert len(lines) >= 2 and all(line.endswith("select: elapsed 0:00:00 - working")
                                   for line in lines), lines


def test_interval_zero_prints_one_line_per_event_and_no_beats(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # PHONO_PROGRESS_INTERVAL=0: a line per event, which the SIGKILL tests read as "a part
    # committed": a beat in between would make them kill too early.
    monkeypatch.setenv("PHONO_PROGRESS_INTERVAL", "0")
    before = threading.active_count()
    with plain_progress("ingest", "B") as log:
        assert threading.active_count() == before  # no heartbeat thread
        log(ProgressEvent("ingest", 1, 2, "B", "a"))
        time.sleep(0.2)
        log(ProgressEvent("ingest", 2, 2, "B", "b"))
    lines = _lines(capsys.readouterr().err)
    assert [line.rsplit(" - ", 1)[1] for line in lines] == ["a", "b", "b"], lines


def test_a_real_ingest_logs_while_its_only_part_is_staged(tmp_path: Path) -> None:
    """`phono ingest mbdump` on a columnar workspace commits its one part at the end; its
    log has lines before that, every interval."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from mbdump import write_dump  # bench/mbdump.py: synthetic COPY tables
    write_dump(tmp_path / "dump", 20_000)
    env = {k: v for k, v in os.environ.items() if k != "PHONO_PROGRESS"}
    env["PHONO_PROGRESS_INTERVAL"] = "0.05"
    ws = tmp_path / "ws"
    subprocess.run([PHONO, "init", str(ws), "--engine", "duckdb"], check=True, env=env,
                   capture_output=True)
    run = subprocess.run([PHONO, "ingest", "mbdump", str(tmp_path / "dump"), "-w", str(ws)],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = _lines(run.stderr)
    # before the part committed: the job runs, it says so (before its first event), then
    # which of its steps it is on
    staging = [line for line in lines if line.endswith(" - working")
               or re.search(r": (table \w+ loaded|joining the tables|merging into the "
                            r"catalogue)$", line)]
    assert staging and lines.index(staging[0]) == 0, run.stderr
    assert "MiB" in lines[-1] and lines[-1].endswith(str(tmp_path / "dump")), lines


@pytest.mark.parametrize("interval", ["inf", "1e300"])
def test_an_interval_too_long_to_wait_means_no_lines_not_a_traceback(
        tmp_path: Path, interval: str) -> None:
    """PHONO_PROGRESS_INTERVAL=inf (or any value past what a thread can wait) was a
    traceback on stderr from the heartbeat thread ("OverflowError: timestamp out of range
    for platform time_t"), on a columnar workspace as on a SQLite one; it means quiet."""
    demo = Path(__file__).resolve().parents[1] / "src" / "phonotheque" / "demo_data"
    env = {k: v for k, v in os.environ.items() if k != "PHONO_PROGRESS"}
    env["PHONO_PROGRESS_INTERVAL"] = interval
    ws = tmp_path / "ws"
    subprocess.run([PHONO, "init", str(ws), "--engine", "duckdb"], check=True, env=env,
                   capture_output=True)
    run = subprocess.run([PHONO, "ingest", "musicbrainz", str(demo / "musicbrainz"),
                          "-w", str(ws)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and not _lines(run.stderr), run.stderr
