"""An archive with audio and torrents from a columnar workspace (`--engine duckdb`).

The same small collection (the demo's MusicBrainz sample and a few of its real audio
files: one matched by recording MBID, two describing new tracks, one broken, and a
copy ingested later that matches a new track by its ISRC) is built up to `pack` on a SQLite workspace and on a columnar one: the audio
files must be byte-identical, the torrents the same (infohashes included) and every
track's ledger status the same. A takedown (`phono exclude add`) then leaves the next
pack, and `phono gc` removes the file, on both alike; an audio run killed between its
two commits (catalogue.sqlite, then catalogue.duckdb) resumes without disagreement;
`phono release` publishes a wave.
Real ffmpeg, real files; before the columnar audio path these commands exited 2.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from phonotheque import clock
from phonotheque.audio import AudioOptions, run_audio
from phonotheque.catalogue import bulk, bulk_selection, ledger
from phonotheque.cli import main
from phonotheque.pipeline import BuildOptions, SourceSpec, build
from phonotheque.workspace import Workspace
from tests.require import require_tool

DEMO = Path(str(resources.files("phonotheque") / "demo_data"))
AUDIO = DEMO / "audio"
# new tracks from their own tags (one with an ISRC), a recording-MBID match, a broken file
FILES = [AUDIO / "by-isrc" / "GBAAA9900295.oga",
         AUDIO / "Pink Floyd" / "The Dark Side of the Moon" / "07 Us and Them.oga",
         AUDIO / "freedesktop" / "Bell.oga", AUDIO / "freedesktop" / "Dialog Error.oga"]
EPOCH = 1767225600  # 2026-01-01T00:00:00Z: both builds stamp the same times


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The collection built up to pack on both engines (tests work on copies)."""
    require_tool("ffmpeg")
    root = tmp_path_factory.mktemp("columnar-archive")
    music = root / "Music"
    music.mkdir()
    for f in FILES:
        shutil.copy(f, music / f.name)
    # a second copy, ingested on its own: matched by its ISRC to the first one's track
    again = root / "Again"
    again.mkdir()
    shutil.copy(FILES[0], again / "copy.oga")
    sources = [SourceSpec("musicbrainz", DEMO / "musicbrainz" / "mbdump-sample.jsonl"),
               SourceSpec("tags", music), SourceSpec("tags", again),
               SourceSpec("listens", DEMO / "listens.csv")]  # selects tracks not held too
    clock.freeze_epoch(EPOCH)
    try:
        out = {}
        for engine in ("sqlite", "duckdb"):
            ws = Workspace.create(root / engine, engine=engine)
            build(ws, sources, BuildOptions(workers=0, stop_after="select"))
            # selected, nothing archived yet: for the crash test
            out[f"{engine}-selected"] = _copy(ws, root / f"{engine}-selected")
            report = build(ws, [], BuildOptions(workers=0, stop_after="pack"))
            assert [s.name for s in report.stages if s.skipped] == []
            audio = report.stage("audio")
            assert audio is not None and report.stage("pack") is not None
            out[engine] = ws
            out[f"audio-{engine}"] = audio.report
        yield out
    finally:
        clock.freeze(None)


def _copy(ws: Workspace, dest: Path) -> Workspace:
    shutil.copytree(ws.root, dest, symlinks=True)
    return Workspace.open(dest)


def _files(ws: Workspace, *folders: str) -> dict[str, str]:
    return {p.relative_to(ws.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted((ws.root / folder).rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _torrents(ws: Workspace) -> list[tuple[object, ...]]:
    with ws.store(readonly=True) as store:
        return [tuple(r) for r in store.conn.execute(
            "SELECT name, kind, infohash_v2, obsolete, built FROM torrent ORDER BY id")]


def _ledger(ws: Workspace) -> dict[str, tuple[str, str | None]]:
    """Every track's status and detail, by track key."""
    if ws.engine == "duckdb":
        con = bulk.open_bulk(ws.root, readonly=True)
        try:
            entries = bulk_selection.ledger_entries(con, limit=None)
        finally:
            con.close()
    else:
        with ws.store(readonly=True) as store:
            entries = ledger.ledger_entries(store, limit=None)
    return {e.key: (e.status, e.detail) for e in entries}


def _packed(ws: Workspace) -> set[str]:
    """Archive files in current data torrents."""
    with ws.store(readonly=True) as store:
        return {r[0] for r in store.conn.execute(
            """SELECT a.path FROM torrent t JOIN torrent_file f ON f.torrent_id = t.id
               JOIN audio_file a ON a.id = f.audio_file_id
               WHERE t.kind = 'data' AND t.obsolete = 0""")}


def _same_archive(sq: Workspace, dk: Workspace) -> None:
    assert _files(dk, "audio", "torrents") == _files(sq, "audio", "torrents")
    assert _torrents(dk) == _torrents(sq)
    assert _ledger(dk) == _ledger(sq)
    with sq.store(readonly=True) as a, dk.store(readonly=True) as b:
        for sql in ("SELECT path, track_id, match FROM source_audio ORDER BY path",
                    "SELECT track_id, path, sha256, tier FROM audio_file ORDER BY track_id",
                    "SELECT stage, source, locator, reason FROM reject ORDER BY 1, 2, 3, 4"):
            assert [tuple(r) for r in b.conn.execute(sql)] == \
                [tuple(r) for r in a.conn.execute(sql)], sql


def test_a_columnar_workspace_builds_the_same_archive(built: dict[str, Any]) -> None:
    sq, dk = built["sqlite"], built["duckdb"]
    assert dk.engine == "duckdb" and sq.engine == "sqlite"
    _same_archive(sq, dk)
    with dk.store(readonly=True) as store:
        matches = sorted(r[0] for r in store.conn.execute("SELECT match FROM source_audio"))
        assert matches == ["created", "created", "isrc", "mbid"]
        assert store.scalar("SELECT count(*) FROM track") == 0  # the tracks are in DuckDB
        assert store.scalar("SELECT count(*) FROM reject WHERE source LIKE '%Dialog%'") == 1
    assert len(_packed(dk)) == 3
    statuses = sorted(s for s, _ in _ledger(dk).values())
    assert statuses.count("success") == 3 and statuses.count("wanted") > 0
    # the selected tracks no file is held for are planned in DuckDB: the same counts
    a, b = built["audio-sqlite"], built["audio-duckdb"]
    assert (b.selected, b.wanted, b.excluded, b.planned, b.succeeded, b.by_tier) == \
        (a.selected, a.wanted, a.excluded, a.planned, a.succeeded, a.by_tier)
    assert b.wanted == statuses.count("wanted") and b.planned == 3


def test_a_takedown_leaves_the_next_pack_and_gc_removes_it(built: dict[str, Any],
                                                          tmp_path: Path) -> None:
    sq, dk = _copy(built["sqlite"], tmp_path / "sq"), _copy(built["duckdb"], tmp_path / "dk")
    runner = CliRunner()
    clock.freeze_epoch(EPOCH + 3600)
    try:
        gone: dict[str, str] = {}
        for ws in (sq, dk):
            with ws.store(readonly=True) as store:
                gone[ws.engine] = str(store.scalar(
                    "SELECT a.path FROM audio_file a JOIN source_audio s "
                    "ON s.track_id = a.track_id WHERE s.match = 'isrc'"))
            assert gone[ws.engine] in _packed(ws)
            for args in (["exclude", "add", "--isrc", "GBAAA9900295", "--reason", "takedown"],
                         ["pack"], ["gc"]):
                out = runner.invoke(main, [*args, "-w", str(ws.root)])
                assert out.exit_code == 0, (ws.engine, args, out.output)
            assert gone[ws.engine] not in _packed(ws)
            assert len(_packed(ws)) == 2
            assert not (ws.root / gone[ws.engine]).exists()  # gc removed the file
    finally:
        clock.freeze(None)
    assert gone["duckdb"] == gone["sqlite"]
    _same_archive(sq, dk)
    assert ("excluded", "exclusion; audio removed by gc") in _ledger(dk).values()


def test_an_audio_run_killed_between_its_two_commits_resumes(
        built: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """catalogue.sqlite commits the batch's files first; a crash before catalogue.duckdb
    takes their statuses leaves them ``todo`` with a file, and the next run makes them
    ``success`` without archiving them again."""
    expected = _ledger(built["duckdb"])
    dk = _copy(built["duckdb-selected"], tmp_path / "dk")
    assert sorted(s for s, _ in _ledger(dk).values()).count("todo") == 3

    def killed(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt  # after catalogue.sqlite's commit, before DuckDB's

    monkeypatch.setattr(bulk_selection, "record_outcomes", killed)
    with pytest.raises(KeyboardInterrupt):
        run_audio(dk, AudioOptions())
    monkeypatch.undo()
    with dk.store(readonly=True) as store:
        assert store.scalar("SELECT count(*) FROM audio_file") == 3  # committed first
    statuses = sorted(s for s, _ in _ledger(dk).values())
    assert statuses.count("todo") == 3  # ... and the ledger never says more than it has
    again = run_audio(dk, AudioOptions())
    assert (again.already_done, again.planned, again.written) == (3, 0, 0)
    assert _ledger(dk) == expected


def test_release_publishes_a_wave_from_a_columnar_workspace(built: dict[str, Any],
                                                             tmp_path: Path) -> None:
    """`phono release` (pack, then the next wave, then publish) runs there too."""
    dk = _copy(built["duckdb"], tmp_path / "dk")
    out = CliRunner().invoke(main, ["release", "--wave-bands", "1", "-w", str(dk.root)])
    assert out.exit_code == 0, out.output
    entries = orjson.loads((dk.publish / "torrents.json").read_bytes())
    data = {e["display_name"] for e in entries if e["kind"] == "data" and e["wave"] == 1}
    with dk.store(readonly=True) as store:
        released = {r[0] for r in store.conn.execute(
            "SELECT name FROM torrent WHERE kind = 'data' AND wave = 1")}
    assert released and data == released
