"""The ingest runner: skip, resume, idempotence, exit codes, and a real SIGKILL mid-ingest."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.ingest import ingest
from phonotheque.model import Checkpoint, Exclusion
from phonotheque.sources import ReadOptions, get
from phonotheque.synth import SynthOptions, synth
from phonotheque.workspace import Workspace

PHONO = [str(Path(sys.executable).parent / "phono")]
TABLES = {
    "artist": "*", "release": "*", "track": "*", "track_artist": "*", "track_isrc": "*",
    "listens": "*", "source_audio": "*",
    "reject": "id, stage, source, locator, reason",
    "ingest_checkpoint": "source, kind, size, mtime_ns, offset, line, done",
}


def snapshot(catalogue: Path) -> dict[str, list[tuple]]:
    """Every row of the tables ingest writes (minus wall-clock columns), ids included."""
    conn = sqlite3.connect(f"file:{catalogue}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT {cols} FROM {t} ORDER BY 1, 2").fetchall()
                for t, cols in TABLES.items()}
    finally:
        conn.close()


def _synth(tmp_path: Path, tracks: int) -> Path:
    out = tmp_path / f"synth{tracks}"
    synth(out, SynthOptions(tracks=tracks, seed=7))
    return out / "release.jsonl"


def test_rerun_adds_nothing_and_skips_done_files(tmp_path: Path, data: Path) -> None:
    ws = Workspace.create(tmp_path / "w")
    paths = [_synth(tmp_path, 500), data / "picard/ws_data/release.json"]
    first = ingest(ws, "musicbrainz", paths)
    before = snapshot(ws.catalogue)
    second = ingest(ws, "musicbrainz", paths)
    assert [s.status for s in second.sources] == ["skipped", "skipped"]
    assert second.read == second.added == second.updated == 0
    forced = ingest(ws, "musicbrainz", paths, options=_force())
    assert forced.added == 0 and forced.updated == 0 and forced.read == first.read
    after = snapshot(ws.catalogue)
    assert before == after


def _force():  # type: ignore[no-untyped-def]
    from phonotheque.ingest import IngestOptions

    return IngestOptions(force=True)


def test_changed_file_is_read_again(ws: Workspace, tmp_path: Path, data: Path) -> None:
    path = tmp_path / "r.jsonl"
    line = orjson.dumps(orjson.loads((data / "picard/ws_data/recording.json").read_bytes()))
    path.write_bytes(line + b"\n")
    ingest(ws, "musicbrainz", [path])
    release = orjson.dumps(orjson.loads((data / "picard/ws_data/release.json").read_bytes()))
    path.write_bytes(line + b"\n" + release + b"\n")
    report = ingest(ws, "musicbrainz", [path])
    assert report.sources[0].status == "read"
    assert report.by_kind["track"][0] == 10


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path: Path) -> None:
    path = _synth(tmp_path, 3000)
    whole = Workspace.create(tmp_path / "whole")
    ingest(whole, "musicbrainz", [path])
    # Emulate a crash: commit everything up to the first checkpoint, plus a few
    # records after it (a batch boundary rarely falls on a checkpoint).
    crashed = Workspace.create(tmp_path / "crashed")
    src = get("musicbrainz")
    item = src.inputs([path])[0]
    records = src.read(item, ReadOptions())
    head, seen = [], 0
    for r in records:
        head.append(r)
        if isinstance(r, Checkpoint):
            seen += 1
            if seen == 1:
                break
    head.extend(itertools.islice(records, 37))
    with crashed.store() as s:
        s.write(head, batch_size=100)
        cp = s.checkpoint(item.source)
    assert cp is not None and cp.offset > 0 and not cp.done
    report = ingest(crashed, "musicbrainz", [path])
    assert report.sources[0].status == "resumed"
    assert report.sources[0].start_offset == cp.offset
    assert snapshot(crashed.catalogue) == snapshot(whole.catalogue)


def test_exclusions_apply_to_newly_ingested_tracks(ws: Workspace, data: Path) -> None:
    with ws.store() as s:
        s.add_exclusion(Exclusion("isrc", "GBAHS1400099", "takedown request"))
    report = ingest(ws, "musicbrainz", [data / "picard/ws_data/recording.json"])
    assert report.excluded_tracks == 1
    with ws.store(readonly=True) as s:
        assert s.scalar("SELECT excluded FROM track") == 1


def test_cli_exit_codes_and_report(tmp_path: Path, data: Path) -> None:
    runner = CliRunner()
    ws = tmp_path / "w"
    assert runner.invoke(main, ["init", str(ws)]).exit_code == 0
    clean = runner.invoke(main, ["ingest", "musicbrainz", "-w", str(ws),
                                 str(data / "picard/ws_data/release.json")])
    assert clean.exit_code == 0, clean.output
    assert "added" in clean.output and "total" in clean.output
    dirty = runner.invoke(main, ["ingest", "musicbrainz", "-w", str(ws),
                                 str(data / "picard/ws_data/release_null.json")])
    assert dirty.exit_code == 10, dirty.output
    assert "phono rejects" in dirty.output
    helptext = runner.invoke(main, ["ingest", "musicbrainz", "--help"]).output
    assert "10" in helptext and "Exit status" in helptext
    for kind in ("musicbrainz", "mbdump", "tags", "listens"):
        assert runner.invoke(main, ["ingest", kind, "--help"]).exit_code == 0
    missing = runner.invoke(main, ["ingest", "mbdump", "-w", str(ws), str(data / "picard")])
    assert missing.exit_code == 2 and "not an mbdump folder" in missing.output
    listens = runner.invoke(main, ["ingest", "listens", "-w", str(ws), "--dataset", "lb",
                                   str(data / "listenbrainz/top_recording_db_data_for_api_test.json")])
    assert listens.exit_code == 0, listens.output


def _checkpoint(catalogue: Path) -> tuple[int, int] | None:
    try:
        conn = sqlite3.connect(f"file:{catalogue}?mode=ro", uri=True, timeout=0.05)
        try:
            row = conn.execute("SELECT offset, done FROM ingest_checkpoint").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return None if row is None else (row[0], row[1])


def test_sigkill_mid_ingest_then_rerun_matches_uninterrupted(tmp_path: Path) -> None:
    path = _synth(tmp_path, 30_000)
    env = dict(os.environ, PHONO_PROGRESS="0")
    whole = tmp_path / "whole"
    killed = tmp_path / "killed"
    for ws in (whole, killed):
        subprocess.run([*PHONO, "init", str(ws)], check=True, env=env, capture_output=True)
    subprocess.run([*PHONO, "ingest", "musicbrainz", "-w", str(whole), str(path)], check=True,
                   env=env, capture_output=True)

    proc = subprocess.Popen([*PHONO, "ingest", "musicbrainz", "-w", str(killed),
                             "--batch-size", "2000", str(path)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    progress = None
    while time.monotonic() < deadline:
        progress = _checkpoint(killed / "catalogue.sqlite")
        if progress and progress[0] > 0:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "ingest finished before it could be killed"
    progress = _checkpoint(killed / "catalogue.sqlite")
    assert progress is not None and progress[0] > 0 and progress[1] == 0
    assert progress[0] < path.stat().st_size

    rerun = subprocess.run([*PHONO, "ingest", "musicbrainz", "-w", str(killed), str(path)],
                           env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed" in rerun.stdout  # it did not start from zero
    assert snapshot(killed / "catalogue.sqlite") == snapshot(whole / "catalogue.sqlite")


def test_cli_a_dropped_date_tag_is_no_refusal_and_a_rerun_is_not_news(
        tmp_path: Path, data: Path) -> None:
    """An unparseable date is listed by `phono rejects`, but the file was ingested: exit 0.
    A re-run over the same bad file refuses nothing new: exit 0 as well (README)."""
    runner = CliRunner()
    ws = tmp_path / "w"
    assert runner.invoke(main, ["init", str(ws)]).exit_code == 0
    dated = runner.invoke(main, ["ingest", "tags", "-w", str(ws),
                                 str(data / "beets" / "unparseable.flac")])
    assert dated.exit_code == 0, dated.output
    assert "left out of records that were kept" in dated.output
    assert "input(s) refused" not in dated.output
    rejects = runner.invoke(main, ["rejects", "-w", str(ws)])
    assert "Oct 3, 1995" in rejects.output.replace("\n", "")
    bad = runner.invoke(main, ["ingest", "tags", "-w", str(ws),
                               str(data / "mutagen" / "too-short.mp3")])
    assert bad.exit_code == 10, bad.output
    again = runner.invoke(main, ["ingest", "tags", "-w", str(ws),
                                 str(data / "mutagen" / "too-short.mp3")])
    assert again.exit_code == 0, again.output
    assert "already recorded by an earlier run" in again.output


def test_cli_rejects_title_says_when_limit_shows_fewer(tmp_path: Path, data: Path) -> None:
    """The table's title gave the total ("2 rejects") above the one row --limit 1 shows."""
    runner = CliRunner()
    ws = tmp_path / "w"
    assert runner.invoke(main, ["init", str(ws)]).exit_code == 0
    for name in ("beets/unparseable.flac", "mutagen/too-short.mp3"):
        runner.invoke(main, ["ingest", "tags", "-w", str(ws), str(data / name)])
    everything = runner.invoke(main, ["rejects", "-w", str(ws)])
    assert "2 rejects" in everything.output and " of " not in everything.output.split("\n")[0]
    one = runner.invoke(main, ["rejects", "-w", str(ws), "--limit", "1"])
    assert "1 of 2 rejects (--limit)" in one.output
