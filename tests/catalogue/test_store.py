import sqlite3
from pathlib import Path

import pytest

from phonotheque.catalogue.schema import MIGRATIONS, SCHEMA_VERSION
from phonotheque.catalogue.store import Store
from phonotheque.errors import SchemaTooNew, WorkspaceError
from phonotheque.model import (
    Artist,
    Checkpoint,
    Exclusion,
    Listen,
    Provenance,
    Reject,
    Release,
    SourceAudio,
    Track,
    TrackISRC,
)
from phonotheque.workspace import Workspace

P = Provenance("test.jsonl", "line 1", "CC0-1.0")


def _records() -> list:
    return [
        Artist("a1", "Artist One", mbid="a1", prov=P),
        Release("r1", "Album", mbid="r1", date="2001", prov=P),
        Track("t1", "Song", mbid="t1", artist_keys=("a1",), release_key="r1", disc=1,
              position=1, duration_ms=1000, prov=P),
        Track("t2", "Song 2", mbid="t2", artist_keys=("a1",), release_key="r1", prov=P),
        TrackISRC("t1", "GBAAA9900303", prov=P),
        TrackISRC("t2", "GBAAA9900303", prov=P),  # one ISRC on two tracks
        TrackISRC("t1", "USPR37300012", prov=P),  # two ISRCs on one track
        Listen("mbid", "t1", 10, dataset="lb"),
        Listen("isrc", "GBAAA9900303", 5, dataset="csv"),
    ]


def test_workspace_layout_and_wal(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w")
    for sub in ("audio", "quarantine", "torrents", "publish"):
        assert (ws.root / sub).is_dir()
    conn = sqlite3.connect(ws.catalogue)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_write_is_idempotent_and_counts(ws: Workspace) -> None:
    with ws.store() as s:
        c1 = s.write(_records())
        assert c1.by_kind["artist"] == [1, 0, 0]
        assert c1.by_kind["track"] == [2, 0, 0]
        assert c1.by_kind["isrc"] == [3, 0, 0]
        assert c1.by_kind["listens"] == [2, 0, 0]
        c2 = s.write(_records())
        assert c2.added == 0 and c2.updated == 0
        assert s.scalar("SELECT count(*) FROM track") == 2
        # listens resolve: by mbid to t1, by ISRC to the lowest track id
        rows = s.query("SELECT key_kind, t.key FROM listens JOIN track t ON t.id = track_id ORDER BY 1")
        assert [(r[0], r[1]) for r in rows] == [("isrc", "t1"), ("mbid", "t1")]
        c3 = s.write([Artist("a1", "Artist 1", mbid="a1", prov=P)])
        assert c3.by_kind["artist"] == [0, 1, 0]
        assert s.scalar("SELECT source || '#' || locator || '#' || licence FROM track WHERE key='t1'") == "test.jsonl#line 1#CC0-1.0"


def test_small_batches_equal_one_batch(tmp_path: Path) -> None:
    a = Workspace.create(tmp_path / "a")
    b = Workspace.create(tmp_path / "b")
    with a.store() as s:
        s.write(_records(), batch_size=1)
    with b.store() as s:
        s.write(_records(), batch_size=10_000)
    q = "SELECT key, title, release_id, disc FROM track ORDER BY key"
    with a.store() as sa, b.store() as sb:
        assert [tuple(r) for r in sa.query(q)] == [tuple(r) for r in sb.query(q)]


def test_source_audio_matches_mbid_then_isrc_then_creates(ws: Workspace) -> None:
    with ws.store() as s:
        s.write(_records())
        fb = (Track("tags:x", "Fallback"), TrackISRC("tags:x", "FRZ039800212"))
        s.write([
            SourceAudio("/m/1.flac", 10, 1, mbid="t2", fallback=fb),
            SourceAudio("/m/2.flac", 10, 1, isrcs=("USPR37300012",), fallback=fb),
            SourceAudio("/m/3.flac", 10, 1, isrcs=("FRZ039800212",), fallback=fb),
        ])
        rows = {r[0]: (r[1], r[2]) for r in s.query(
            "SELECT path, t.key, match FROM source_audio JOIN track t ON t.id = track_id")}
        assert rows == {"/m/1.flac": ("t2", "mbid"), "/m/2.flac": ("t1", "isrc"),
                        "/m/3.flac": ("tags:x", "created")}


def test_exclusions_cover_isrc_mbid_release_artist_and_path(ws: Workspace) -> None:
    with ws.store() as s:
        s.write(_records())
        s.write([SourceAudio("/music/a/1.flac", 1, 1, mbid="t1")])
        assert s.add_exclusion(Exclusion("isrc", "USPR37300012", "takedown"))
        assert not s.add_exclusion(Exclusion("isrc", "USPR37300012", "again"))
        assert s.scalar("SELECT group_concat(key) FROM track WHERE excluded") == "t1"
        s.remove_exclusion("isrc", "USPR37300012")
        assert s.refresh_exclusions() == 0
        s.add_exclusion(Exclusion("mbid", "r1"))
        assert s.refresh_exclusions() == 2
        s.remove_exclusion("mbid", "r1")
        s.add_exclusion(Exclusion("mbid", "a1"))
        assert s.refresh_exclusions() == 2
        s.remove_exclusion("mbid", "a1")
        s.add_exclusion(Exclusion("path", "/music/a"))
        assert s.scalar("SELECT group_concat(key) FROM track WHERE excluded") == "t1"


def test_rejects_and_checkpoints_commit_with_batch(ws: Workspace) -> None:
    with ws.store() as s:
        s.write([Reject("ingest", "f.jsonl", "line 3", "malformed JSON"),
                 Checkpoint("f.jsonl", "musicbrainz", 1234)])
        assert s.rejects()[0].locator == "line 3"
        cp = s.checkpoint("f.jsonl")
        assert cp is not None and cp.offset == 1234 and not cp.done


def test_refuses_newer_schema(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w")
    conn = sqlite3.connect(ws.catalogue)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew, match="newer than this phono"):
        ws.store()


def test_forward_migration_applies(tmp_path: Path) -> None:
    Store(tmp_path / "c.sqlite", create=True).close()
    extra = (*MIGRATIONS, "ALTER TABLE track ADD COLUMN genre TEXT;")
    s = Store(tmp_path / "c.sqlite", migrations=extra)
    assert s.scalar("PRAGMA user_version") == len(extra)
    s.conn.execute("SELECT genre FROM track")
    s.close()


def test_not_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a workspace"):
        Workspace.open(tmp_path)
    (tmp_path / "catalogue.sqlite").write_bytes(b"garbage" * 100)
    with pytest.raises(WorkspaceError):
        Workspace.open(tmp_path).store()


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_an_empty_catalogue_sqlite_is_exit_3_not_a_traceback(tmp_path: Path,
                                                             engine: str) -> None:
    """catalogue.sqlite cut to nothing (0 bytes): SQLite opens an empty file as a new,
    empty database, and the read-only open every command makes first (the workspace's
    engine, in its meta table) ended in a traceback, sqlite3.OperationalError "no such
    table: meta", exit 1, on both engines. Now exit 3 naming the file, as a damaged one."""
    from click.testing import CliRunner

    from phonotheque.cli import main

    ws = Workspace.create(tmp_path / "w", engine=engine)
    ws.catalogue.write_bytes(b"")
    for args in (["stats"], ["ledger"], ["rejects"], ["select"], ["gc"]):
        out = CliRunner().invoke(main, [*args, "-w", str(ws.root)])
        assert out.exit_code == 3, (args, out.output, out.exception)
        assert f"{ws.catalogue}: not a readable SQLite catalogue" in out.output, out.output
    assert ws.catalogue.stat().st_size == 0  # nothing written over it
    # `phono init` (idempotent) still makes a catalogue of an empty file
    Store(ws.catalogue, create=True).close()
    with Store(ws.catalogue, readonly=True) as store:
        assert store.scalar("PRAGMA user_version") == SCHEMA_VERSION


def test_reject_count_by_stage(tmp_path: Path) -> None:
    with Store(tmp_path / "c.sqlite", create=True) as s:
        s.add_rejects([Reject("ingest", "a.json", "line 1", "bad"),
                       Reject("ingest", "a.json", "line 2", "bad"),
                       Reject("audio", "x.flac", "track 1", "error_decode: bad frame")])
        assert (s.reject_count(), s.reject_count("ingest"), s.reject_count("pack")) == (3, 2, 0)
