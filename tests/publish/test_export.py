"""The published metadata database and Parquet read back equal to the catalogue."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from phonotheque.pack.aac import public_source
from phonotheque.pack.packer import PackOptions, pack
from phonotheque.progress import ProgressEvent
from phonotheque.publish.dbschema import PUBLISH_SCHEMA_VERSION
from phonotheque.publish.export import PARQUET_TABLES
from phonotheque.publish.publisher import publish
from phonotheque.publish.waves import ReleaseOptions, release
from phonotheque.workspace import Workspace
from tests import sigint
from tests.publish.archive import make_archive


@pytest.fixture
def published(ws: Workspace, data: Path) -> Workspace:
    make_archive(ws, data, patch_every=3)
    with ws.store() as store, store.transaction():
        # an unselected track, an excluded one: they are published with their status
        store.conn.execute("DELETE FROM selection WHERE track_id = (SELECT max(id) FROM track)")
        store.conn.execute("DELETE FROM ledger WHERE track_id = (SELECT max(id) FROM track)")
    release(ws, ReleaseOptions(pack_options=PackOptions(max_files=4)))
    return ws


def _rows(conn: sqlite3.Connection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute(sql)]


def test_sqlite_round_trip(published: Workspace) -> None:
    ws = published
    db = sqlite3.connect(ws.publish / "metadata.sqlite")
    cat = sqlite3.connect(ws.catalogue)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert db.execute("PRAGMA user_version").fetchone()[0] == PUBLISH_SCHEMA_VERSION
    assert _rows(db, "SELECT id, mbid, name, sort_name FROM artist ORDER BY id") == _rows(
        cat, "SELECT id, mbid, name, sort_name FROM artist ORDER BY id")
    assert _rows(db, "SELECT * FROM release ORDER BY id") == _rows(
        cat, "SELECT id, mbid, title, date, label, barcode, artist_credit FROM release ORDER BY id")
    assert _rows(db, "SELECT * FROM track_isrc ORDER BY 1, 2") == _rows(
        cat, "SELECT track_id, isrc FROM track_isrc ORDER BY 1, 2")
    assert _rows(db, "SELECT * FROM track_artist ORDER BY 1, 2") == _rows(
        cat, "SELECT track_id, position, artist_id FROM track_artist ORDER BY 1, 2")
    assert _rows(db, "SELECT id, mbid, title, artist_credit, release_id, disc, position, "
                     "duration_ms, listens, rank, band, tier FROM track ORDER BY id") == _rows(
        cat, """SELECT t.id, t.mbid, t.title, t.artist_credit, t.release_id, t.disc, t.position,
                       t.duration_ms, (SELECT sum(count) FROM listens l WHERE l.track_id = t.id),
                       s.rank, s.band, a.tier
                FROM track t LEFT JOIN selection s ON s.track_id = t.id
                LEFT JOIN audio_file a ON a.track_id = t.id ORDER BY t.id""")
    sources = _rows(db, "SELECT source, licence FROM track ORDER BY id")
    assert sources == [(f"{i:02d}.oga", "CC-BY-SA-3.0") for i in range(10)]  # no builder paths
    statuses = dict(_rows(db, "SELECT status, count(*) FROM track GROUP BY status"))
    assert statuses == {"success": 9, "not_selected": 1}
    # file -> torrent + path + sha256 + merkle root, exactly as packed
    assert _rows(db, "SELECT track_id, torrent_id, path, size, sha256, btv2_root FROM file "
                     "ORDER BY 2, 3") == _rows(
        cat, """SELECT a.track_id, tf.torrent_id, tf.path, tf.size, tf.sha256, tf.pieces_root
                FROM torrent_file tf JOIN audio_file a ON a.id = tf.audio_file_id
                JOIN torrent t ON t.id = tf.torrent_id
                WHERE tf.role = 'audio' AND t.wave IS NOT NULL ORDER BY 2, 3""")
    patched = _rows(db, "SELECT path, patch_path FROM file WHERE patch_path IS NOT NULL")
    assert len(patched) == 3 and all(p == f + ".zstdpatch" for f, p in patched)
    assert _rows(db, "SELECT name, infohash_v1, infohash_v2, magnet, wave FROM torrent "
                     "ORDER BY id") == _rows(
        cat, "SELECT name, infohash_v1, infohash_v2, magnet, wave FROM torrent "
             "WHERE wave IS NOT NULL ORDER BY id")
    info = dict(_rows(db, "SELECT key, value FROM info"))
    assert info["schema_version"] == str(PUBLISH_SCHEMA_VERSION)
    assert info["built_at"] == "2026-03-01T12:00:04+00:00"
    stats = dict(_rows(db, "SELECT key, value FROM stats"))
    assert stats["tracks"] == 10 and stats["unique_isrcs"] == 10
    assert stats["tracks_archived"] == 9
    total = sum(1000 // (i + 1) for i in range(10))
    assert stats["coverage_share"] == pytest.approx((total - 1000 // 10) / total)


def test_fts_finds_tracks_by_title_artist_release(published: Workspace) -> None:
    db = sqlite3.connect(published.publish / "metadata.sqlite")

    def find(q: str) -> list[str]:
        return [r[0] for r in db.execute(
            "SELECT t.title FROM track_fts f JOIN search_order o ON o.pos = f.rowid "
            "JOIN track t ON t.id = o.track_id "
            "WHERE track_fts MATCH ? ORDER BY t.id", (q,))]

    assert find("alarm") == ["Alarm Clock"]
    assert find("unicode") == ["Alarm Clock", "Bell"]  # diacritics folded: Ünïcode
    assert find('release:"third release"') == ["Message", "Power Plug"]
    # ISRCs are not text (schema 3): track_isrc's index finds them, for every track
    assert find("GBAYE0000002*") == []
    assert [r[0] for r in db.execute(
        "SELECT t.title FROM track_isrc i JOIN track t ON t.id = i.track_id "
        "WHERE i.isrc >= 'GBAYE0000002' AND i.isrc < 'GBAYE0000003'")] == ["../../etc/passwd"]
    # contentless: the index gives rowids, the text is in track
    assert db.execute("SELECT title FROM track_fts WHERE track_fts MATCH 'alarm'").fetchall() \
        == [(None,)]


def test_opens_with_the_sqlite3_cli(published: Workspace) -> None:
    out = subprocess.run(["sqlite3", str(published.publish / "metadata.sqlite"),
                          "SELECT count(*) FROM track; SELECT count(*) FROM file;"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["10", "9"]
    # every table scans, track_fts too (a contentless FTS5 table without column sizes
    # refuses any scan that is not a MATCH: Python's iterdump, Datasette's table pages)
    db = sqlite3.connect(published.publish / "metadata.sqlite")
    try:
        assert any("track_fts" in line for line in db.iterdump())
        assert db.execute("SELECT count(*) FROM track_fts").fetchone() == (10,)
    finally:
        db.close()


def test_parquet_equals_sqlite(published: Workspace) -> None:
    db = sqlite3.connect(published.publish / "metadata.sqlite")
    for table in PARQUET_TABLES:
        path = published.publish / "parquet" / f"{table}.parquet"
        meta = pq.ParquetFile(path).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD" if meta.num_row_groups else True
        got = pq.read_table(path).to_pylist()
        cols = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
        want = [dict(zip(cols, r, strict=True)) for r in
                db.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
        if table == "stats":  # untyped column: Parquet holds it as text
            want = [{"key": r["key"], "value": str(r["value"])} for r in want]
        assert got == want, table
    # DuckDB users get the same answer as sqlite3 users
    con = duckdb.connect()
    n = con.execute(f"SELECT count(*) FROM '{published.publish}/parquet/file.parquet'").fetchall()
    assert n == [(9,)]


def test_publishing_twice_gives_identical_bytes(published: Workspace) -> None:
    from tests.publish.helpers import output_hashes

    before = output_hashes(published.root)
    publish(published)
    assert output_hashes(published.root) == before


def test_fresh_workspaces_publish_identical_bytes(tmp_path: Path, data: Path) -> None:
    from tests.publish.helpers import output_hashes

    outs = []
    for name in ("a", "b"):
        ws = Workspace.create(tmp_path / name)
        make_archive(ws, data, patch_every=3)
        release(ws, ReleaseOptions(pack_options=PackOptions(max_files=4)))
        outs.append(output_hashes(ws.root))
    assert outs[0] == outs[1]
    assert any(k.endswith("metadata.sqlite") for k in outs[0])


def test_interrupted_publish_leaves_no_half_file(published: Workspace) -> None:
    from tests.publish.helpers import output_hashes

    before = output_hashes(published.root)
    calls = 0

    def crash(event: ProgressEvent) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt

    (published.publish / "metadata.sqlite").unlink()
    with pytest.raises(KeyboardInterrupt):
        publish(published, progress=crash)
    for p in published.publish.rglob("*"):
        assert ".tmp-" not in p.name or p.name.startswith(".")
    publish(published)
    assert output_hashes(published.root) == before


@pytest.mark.parametrize("value,want", [
    ("/home/me/Music/a.flac", "a.flac"), ("C:\\Users\\me\\a.flac", "a.flac"),
    ("mbdump-sample.jsonl", "mbdump-sample.jsonl"), (None, None), ("~/x/y.ogg", "y.ogg"),
])
def test_builder_paths_are_not_published(value: str | None, want: str | None) -> None:
    assert public_source(value) == want


def test_publish_before_any_release_lists_only_the_database(ws: Workspace, data: Path) -> None:
    make_archive(ws, data, n=3)
    pack(ws)
    report = publish(ws)
    assert report.unreleased == 1 and report.listed == 1
    assert report.database_torrent is not None


# The published database as the publish's own readers meet it, with a table standing for
# one of 10^9 rows none of which matches (a recursive count: minutes on any machine), so
# only an interruption ends the statement in time: the excluded tracks read back after a
# columnar export, and the Parquet export (both engines) of a table.
_ENDLESS_READERS = (
    "import signal, sqlite3, sys\n"
    "from pathlib import Path\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # as on a terminal\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from phonotheque.cli._common import handle_errors\n"
    "from phonotheque.publish import publisher\n"
    "from phonotheque.publish.export import export_parquet\n"
    "from phonotheque.workspace import Workspace\n"
    "tmp, which = Path(sys.argv[1]), sys.argv[2]\n"
    "db = tmp / 'metadata.sqlite'\n"
    "count = ('WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c '\n"
    "         'WHERE i < 1000000000)')\n"
    "conn = sqlite3.connect(db)\n"
    "conn.execute(f\"CREATE VIEW track AS {count} SELECT i AS id, CASE WHEN i < 0 \"\n"
    "             \"THEN 'excluded' ELSE 'published' END AS status FROM c\")\n"
    "conn.execute(f\"CREATE VIEW info AS {count} SELECT 'k' || i AS key, i AS value \"\n"
    "             'FROM c WHERE i < 0')\n"
    "conn.close()\n"
    "ws = Workspace.create(tmp / 'ws')\n"
    "def stage():\n"
    "    with ws.store() as store:\n"
    "        print('ready', flush=True)\n"
    "        if which == 'excluded':\n"
    "            publisher._excluded_tracks(store, db)\n"
    "        else:\n"
    "            export_parquet(db, tmp / 'parquet', tables=['info'])\n"
    "handle_errors(stage)()\n")


@pytest.mark.parametrize("which", ["excluded", "parquet"])
def test_ctrl_c_stops_the_publish_reading_its_database(tmp_path: Path, which: str) -> None:
    """`phono publish` read the database it had just written on plain sqlite3
    connections (the excluded tracks, on a columnar workspace; the Parquet export), which
    run no signal handler during a statement: Ctrl-C waited for the statement to end
    (the excluded tracks are a scan of every track, 0.27 s at 2 M). It must stop within a
    second: exit 130 "interrupted", no traceback. In a child process of its own, SIGINT
    unblocked and Python's own handler put back (see tests/test_cli_scripting.py)."""

    rc, err, took = sigint.interrupt_child([_ENDLESS_READERS, str(tmp_path), which])
    sigint.assert_interrupted(rc, err)
    assert took < 5, took


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_publish_rerun_restores_a_lost_file_of_the_database_torrent(
        tmp_path: Path, engine: str) -> None:
    """A file of the seeded database torrent's payload (torrents/<name>/parquet/...)
    deleted or cut short stayed so after a `phono publish` with nothing changed (exit 0:
    the torrent is the same, its folder was kept as it was): the seeder offered an
    incomplete torrent and `phono verify torrents/` reported it missing. The re-run puts
    it back, on either engine."""
    from click.testing import CliRunner

    from phonotheque.cli import main
    from phonotheque.ingest import ingest
    from phonotheque.select import select
    from phonotheque.workspace import Workspace

    demo = Path(__file__).resolve().parents[2] / "src" / "phonotheque" / "demo_data"
    ws = Workspace.create(tmp_path / "ws", engine=engine)
    ingest(ws, "musicbrainz", [demo / "musicbrainz" / "mbdump-sample.jsonl"])
    select(ws)
    name = publish(ws).database_torrent
    assert name is not None
    payload = ws.torrents / name
    lost, cut = payload / "parquet" / "track.parquet", payload / "metadata.sqlite"
    size = cut.stat().st_size
    lost.unlink()
    with open(cut, "r+b") as f:
        f.truncate(size // 2)
    assert publish(ws).database_torrent == name
    assert lost.is_file() and cut.stat().st_size == size
    out = CliRunner().invoke(main, ["verify", str(ws.torrents), "--against", str(ws.publish)])
    assert out.exit_code == 0, out.output
