"""`phono publish` on a columnar workspace publishes what the SQLite engine publishes.

One archive (packed, released, one track taken down, one not selected) is published
by its SQLite workspace; a copy converted with `phono init --engine duckdb` is
published again. Every table of metadata.sqlite (search_order and track_fts too) and
every Parquet file must hold the same rows; building twice (with another thread
count) must give the same bytes.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from phonotheque.catalogue import bulk
from phonotheque.cli import main
from phonotheque.errors import PhonoError
from phonotheque.progress import ProgressEvent
from phonotheque.publish import columnar_export
from phonotheque.publish.columnar_export import BULK_PARQUET
from phonotheque.publish.export import PARQUET_TABLES
from phonotheque.publish.publisher import PublishOptions, publish
from phonotheque.serve.queries import PublishedDB
from phonotheque.workspace import Workspace
from tests import sigint
from tests.conftest import DATA
from tests.publish.archive import make_archive

VICTIM = 1  # taken down after its first wave: its old torrent is withdrawn
UNSELECTED = -1  # the last track: published as not_selected

SQLITE_BULK = ("track_isrc", "track_artist", "listens", "track", "release", "artist")


def _run(ws: Workspace, *args: str) -> str:
    res = CliRunner().invoke(main, [*args, "-w", str(ws.root)])
    assert res.exit_code == 0, res.output
    return res.output


def _columnar_copy(ws: Workspace, root: Path) -> Workspace:
    """A copy of ``ws`` converted to a columnar workspace whose catalogue.sqlite holds no
    bulk rows any more (so a publish that read them there would publish nothing)."""
    shutil.copytree(ws.root, root, symlinks=True)
    col = Workspace.create(root, engine="duckdb")
    conn = sqlite3.connect(col.catalogue)
    with conn:
        for table in (*SQLITE_BULK, "selection", "ledger"):
            conn.execute(f"DELETE FROM {table}")
    conn.close()
    return col


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Workspace, int]:
    """The SQLite workspace (published), its columnar copy (not yet) and the victim's id."""
    base = tmp_path_factory.mktemp("columnar")
    ws = Workspace.create(base / "sqlite")
    arc = make_archive(ws, DATA, patch_every=2)
    with ws.store() as store, store.transaction():
        last = arc.track_ids[UNSELECTED]
        store.conn.execute("DELETE FROM selection WHERE track_id = ?", (last,))
        store.conn.execute("DELETE FROM ledger WHERE track_id = ?", (last,))
    _run(ws, "pack", "--max-files", "3")
    _run(ws, "release")
    victim = arc.track_ids[VICTIM]
    with ws.store(readonly=True) as store:
        isrc = str(store.scalar("SELECT isrc FROM track_isrc WHERE track_id = ?", (victim,)))
    _run(ws, "exclude", "add", "--isrc", isrc, "--reason", "takedown request")
    _run(ws, "release")  # repacks without the victim and publishes
    return ws, _columnar_copy(ws, base / "columnar"), victim


def _tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(db)
    try:
        out = {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]
               for t in (*PARQUET_TABLES, "search_order")}
        out["track_fts"] = _fts_index(conn)
        out["schema"] = [tuple(r) for r in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO track_fts(track_fts) VALUES ('integrity-check')")
        out["matches"] = [tuple(r) for w in ("bell", "dev*", "ärtist", "gold")
                          for r in conn.execute("SELECT ?, rowid FROM track_fts WHERE track_fts "
                                                "MATCH ? ORDER BY rowid", (w, w))]
        out["user_version"] = conn.execute("PRAGMA user_version").fetchall()
    finally:
        conn.close()
    return out


def _fts_index(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """What track_fts holds: every token instance (term, rowid, column, offset), read from
    the index itself (the table is contentless: it has no text to compare)."""
    conn.execute("CREATE VIRTUAL TABLE temp.fts_terms USING fts5vocab(main, track_fts, instance)")
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT doc, col, offset, term FROM temp.fts_terms ORDER BY 1, 2, 3")]
    finally:
        conn.execute("DROP TABLE temp.fts_terms")


def _parquet(folder: Path) -> dict[str, list[dict[str, Any]]]:
    assert sorted(p.stem for p in folder.glob("*.parquet")) == sorted(PARQUET_TABLES)
    return {p.stem: pq.read_table(p).to_pylist() for p in folder.glob("*.parquet")}


def _index(publish: Path) -> list[dict[str, Any]]:
    """torrents.json without the database torrent (its payload differs by build)."""
    entries = orjson.loads((publish / "torrents.json").read_bytes())
    return [e for e in entries if e["role"] != "database"]


def test_columnar_publish_equals_the_sqlite_one(archives: tuple[Workspace, Workspace, int]) -> None:
    ws, col, victim = archives
    publish(col)
    want, got = _tables(ws.publish / "metadata.sqlite"), _tables(col.publish / "metadata.sqlite")
    assert got["track"], "nothing published"
    for table in want:
        assert got[table] == want[table], table
    assert _parquet(col.publish / "parquet") == _parquet(ws.publish / "parquet")
    assert _index(col.publish) == _index(ws.publish)
    # the takedown holds: the victim's metadata stays, its files do not, the torrent
    # that carried it is listed without magnet
    conn = sqlite3.connect(col.publish / "metadata.sqlite")
    statuses = dict(conn.execute("SELECT status, count(*) FROM track GROUP BY status"))
    assert statuses["excluded"] == 1 and statuses["not_selected"] == 1
    assert conn.execute("SELECT status FROM track WHERE id = ?", (victim,)).fetchone() == (
        "excluded",)
    assert conn.execute("SELECT count(*) FROM file WHERE track_id = ?", (victim,)).fetchone() == (
        0,)
    assert conn.execute("SELECT count(*) FROM torrent WHERE magnet = ''").fetchone()[0] >= 1
    conn.close()
    withdrawn = [e for e in _index(col.publish) if e["withdrawn"]]
    assert withdrawn and all(e["magnet_link"] is None for e in withdrawn)
    assert not any((col.publish / e["torrent"]).exists() for e in _index(col.publish)
                   if e["withdrawn"] and e["torrent"])


def test_columnar_publish_is_reproducible(archives: tuple[Workspace, Workspace, int],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _ws, col, _victim = archives
    scratch = col.root / "tmp" / "duckdb"
    scratch_file = scratch / columnar_export._SCRATCH
    # a catalogue whose tracks fit DuckDB's memory limit keeps the scratch tables in
    # memory: no scratch file at any step ...
    seen: list[bool] = []
    publish(col, progress=lambda _event: seen.append(scratch_file.exists()))
    assert seen and not any(seen)
    first = _snapshot(col.publish)
    # ... a larger one in the scratch file (compressed), with the same bytes published
    monkeypatch.setattr(columnar_export, "SCRATCH_BYTES_PER_TRACK", 1 << 40)  # never fits
    seen.clear()
    # (the second build also checks when the scratch files go: in this test, not one of
    # its own, because a publish costs seconds of the suite)
    finish = columnar_export._finish
    left: list[list[str]] = []

    def spy(*args: Any, **kwargs: Any) -> dict[str, int]:
        left.append(sorted(p.name for p in scratch.iterdir()))
        return finish(*args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(columnar_export, "_finish", spy)
    # ... and with the published tracks computed in ranges of 2 track ids (the archive's
    # catalogue crosses several, as 100 M tracks cross ~20 under the default memory)
    monkeypatch.setattr(bulk, "RANGE_IDS", 2)
    # ... from a catalogue whose bulk tables are stored in reverse key order (a re-ingest
    # appends the rows it rewrites at the end): the published files are still in key
    # order, though nothing sorts a whole table any more
    _reverse_storage(col.root)
    publish(col, PublishOptions(threads=1),
            progress=lambda _event: seen.append(scratch_file.exists()))
    assert any(seen)
    assert _snapshot(col.publish) == first
    # DuckDB's scratch copy of the published tracks (and its WAL) is deleted before the
    # secondary indexes are built (their sorts need temporary space of their own): at
    # 100 M tracks it is ~5 GB; the full-text index's file is still there
    assert len(left) == 1
    assert columnar_export._FTS_FILE in left[0]
    assert not [n for n in left[0] if n.startswith(columnar_export._SCRATCH)], left
    # DuckDB wrote these, with every thread it had the first time and one the second
    assert all(name in first for name in (f"parquet/{t}.parquet" for t in BULK_PARQUET))


def _reverse_storage(root: Path) -> None:
    """Rewrite the bulk tables of the columnar catalogue at ``root`` in reverse key order
    (same rows, other storage order)."""
    con = bulk.open_bulk(root)
    try:
        for table, key in (("artist", "id"), ("release", "id"), ("track", "id"),
                           ("track_artist", "track_id, position"),
                           ("track_isrc", "track_id, isrc")):
            desc = ", ".join(f"{k.strip()} DESC" for k in key.split(","))
            con.execute(f"CREATE TEMP TABLE r AS SELECT * FROM {table} ORDER BY {desc}")
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} SELECT * FROM r")
            con.execute("DROP TABLE r")
            first = con.execute(f"SELECT {key} FROM {table} LIMIT 1").fetchone()
            last = con.execute(f"SELECT {key} FROM {table} ORDER BY {desc} LIMIT 1"
                               ).fetchone()
            assert first == last, (table, first, last)  # the storage order did change
    finally:
        con.close()


def _snapshot(publish_dir: Path) -> dict[str, bytes]:
    root = publish_dir.resolve()
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()
            and (p.suffix == ".parquet" or p.name == "metadata.sqlite")}


def test_search_tracks_bounds_text_search_only(archives: tuple[Workspace, Workspace, int]) -> None:
    """--search-tracks N: track_fts holds the N most listened tracks, in both engines;
    every other table stays complete, so the others are still found by id and ISRC."""
    ws, col, _victim = archives
    for w in (ws, col):
        publish(w, PublishOptions(search_tracks=3))
    want, got = _tables(ws.publish / "metadata.sqlite"), _tables(col.publish / "metadata.sqlite")
    for table in want:
        assert got[table] == want[table], table
    assert sorted({r[0] for r in got["track_fts"]}) == [1, 2, 3]
    assert len(got["track"]) == len(got["search_order"]) == 10
    db = PublishedDB(col.publish / "metadata.sqlite")
    try:
        assert db.stats()["tracks_searchable"] == 3
        top = got["search_order"][0][1]
        top_title = next(r[2] for r in got["track"] if r[0] == top)
        assert top in [r["id"] for r in db.search(top_title).results]
        last = got["search_order"][-1][1]  # the least listened track
        title = next(r[2] for r in got["track"] if r[0] == last)
        assert all(r["id"] != last for r in db.search(title).results)
        track = db.track(last)
        assert track is not None and track["title"] == title
        isrc = next(r[1] for r in got["track_isrc"] if r[0] == last)
        assert [r["id"] for r in db.by_isrc(isrc)] == [last]
        # the start of its ISRC finds it too: a range of track_isrc, not the text index
        page = db.search(isrc[:9].lower())
        assert page.kind == "isrc_prefix" and last in [r["id"] for r in page.results]
    finally:
        db.close()
    publish(col)  # the default indexes every track of a catalogue this small
    assert len({r[0] for r in _tables(col.publish / "metadata.sqlite")["track_fts"]}) == 10


def test_search_tracks_past_sqlite_integers_means_every_track(
        archives: tuple[Workspace, Workspace, int]) -> None:
    """`--search-tracks` above 2**63 - 1 is accepted (IntRange(0)) and, like any number
    above the catalogue's size, indexes every track on both engines (the SQLite engine
    stopped with an OverflowError traceback binding it, the columnar one published)."""
    ws, col, _victim = archives
    for w in (ws, col):
        _run(w, "publish", "--search-tracks", str(2**64))
    want, got = _tables(ws.publish / "metadata.sqlite"), _tables(col.publish / "metadata.sqlite")
    for table in want:
        assert got[table] == want[table], table
    assert len({r[0] for r in got["track_fts"]}) == len(got["track"]) == 10
    assert dict(got["stats"])["tracks_searchable"] == 10
    publish(ws)  # the other tests expect the default


def test_a_failed_text_index_stops_the_publish_before_the_indexes(
        archives: tuple[Workspace, Workspace, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB failing on the text index's rows (at 100 M tracks: out of memory) fails the
    publish before the bulk load, not after the secondary indexes and stats (at 100 M,
    24 minutes in instead of 18), and publishes nothing."""
    _ws, col, _victim = archives
    publish(col)
    before = _snapshot(col.publish)
    # a statement DuckDB refuses, in place of the rows' (fault injection: the rest is real)
    monkeypatch.setattr(columnar_export, "_FTS",
                        "SELECT no_such_column FROM pub.search WHERE {limit} > 0")
    finished: list[bool] = []
    finish = columnar_export._finish
    monkeypatch.setattr(columnar_export, "_finish",
                        lambda *a, **k: finished.append(True) or finish(*a, **k))
    with pytest.raises(PhonoError, match="DuckDB failed while publishing") as err:
        publish(col)
    assert "metadata.sqlite" in str(err.value)
    assert finished == []
    assert _snapshot(col.publish) == before
    assert not list((col.root / "tmp" / "duckdb").iterdir())


def test_a_columnar_publish_reports_every_step(archives: tuple[Workspace, Workspace, int],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """At 100 M tracks a columnar publish runs for half an hour: its progress names each
    range of each step (not one "metadata.sqlite" event and then nothing until the
    Parquet of the small tables), and the rows count the Parquet as on SQLite."""
    _ws, col, _victim = archives
    monkeypatch.setattr(bulk, "RANGE_IDS", 4)
    events: list[ProgressEvent] = []
    publish(col, progress=events.append)
    steps = [e.message for e in events]
    tracks = len(_tables(col.publish / "metadata.sqlite")["track"])
    ranges = -(-tracks // 4)
    assert [s for s in steps if s.startswith("published tracks ")] == [
        f"published tracks {i}/{ranges}" for i in range(1, ranges + 1)]
    for step in ("published track_isrc 1/", "search order", "text index rows 1/",
                 "text index: FTS5", "metadata.sqlite: track", "parquet/track.parquet",
                 "metadata.sqlite: index ", "metadata.sqlite: stats",
                 "metadata.sqlite: text index", "metadata.sqlite: ANALYZE"):
        assert any(s.startswith(step) for s in steps), (step, steps)
    assert steps.index("search order") < steps.index("metadata.sqlite: ANALYZE")
    assert steps[-1] == "parquet"  # the small tables' Parquet comes last, under its own name
    # the rows: every bulk table's Parquet once, then the small tables'
    parquet = col.publish / "parquet"
    bulk_rows = sum(pq.read_metadata(parquet / f"{t}.parquet").num_rows for t in BULK_PARQUET)
    # (the bulk tables' Parquet is done before the secondary indexes start)
    at_indexes = next(e.done for e in events if e.message.startswith("metadata.sqlite: index"))
    assert at_indexes == bulk_rows
    assert events[-1].done == sum(pq.read_metadata(p).num_rows for p in parquet.glob("*.parquet"))
    assert all(e.stage == "publish" and e.unit == "rows" for e in events)


# The FTS5 build of the text index (columnar_export._fts) from an endless source: a view
# standing for fts_rows (minutes of FTS5 on any machine), so only an interruption ends
# the statement in time. In the main thread, or in a helper thread of the pool _export
# runs it in (interrupts.helpers) while the main thread waits for its result.
_ENDLESS_FTS = (
    "import signal, sqlite3, sys\n"
    "from pathlib import Path\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # as on a terminal\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from phonotheque.cli._common import handle_errors\n"
    "from phonotheque.publish import columnar_export as ce\n"
    "from phonotheque.publish.dbschema import DDL\n"
    "db, where = Path(sys.argv[1]), sys.argv[2]\n"
    "conn = sqlite3.connect(db)\n"
    "conn.executescript(DDL)\n"
    "conn.execute('CREATE VIEW fts_rows AS WITH RECURSIVE c(pos) AS (SELECT 1 UNION ALL '\n"
    "             'SELECT pos + 1 FROM c WHERE pos < 1000000000) SELECT pos, '\n"
    "             \"'song ' || pos || ' of ' || (pos % 977) AS title, \"\n"
    "             \"'artist ' || (pos % 7919) AS artists, 'album ' || (pos % 104729) \"\n"
    "             'AS release FROM c')\n"
    "conn.close()\n"
    "def tell(step, rows=0):\n"
    "    if step == 'text index: FTS5':\n"
    "        print('ready', flush=True)\n"
    "def stage():\n"
    "    if where == 'main':\n"
    "        ce._fts(db, tell)\n"
    "    else:\n"
    "        from phonotheque import interrupts\n"
    "        with interrupts.helpers(max_workers=2) as pool:\n"
    "            pool.submit(ce._fts, db, tell).result()\n"
    "handle_errors(stage)()\n")


@pytest.mark.parametrize("where", ["main", "helper"])
def test_ctrl_c_stops_the_text_index_build_at_once(tmp_path: Path, where: str) -> None:
    """Ctrl-C during `phono publish`'s FTS5 build (a columnar workspace) took effect only
    when the build ended: Python's sqlite3 runs no signal handler during a statement, and
    the build runs in a helper thread the pool waited for (SIGINT at the build's start at
    2 M tracks: exit 130 after 42.6 s). It must stop the statement within a second, in
    either thread, and exit 130 as an interruption (SQLite's "interrupted" too), no
    traceback. In a child process of its own, SIGINT unblocked and Python's own handler
    put back (see tests/test_cli_scripting.py's Ctrl-C test)."""

    rc, err, took = sigint.interrupt_child([_ENDLESS_FTS, str(tmp_path / "fts.sqlite"), where])
    sigint.assert_interrupted(rc, err)
    assert took < 5, took


# columnar_export._finish on a published database whose track table holds 3 M rows of
# random MBIDs (the real schema, catalogue and index statements): the sort of the CREATE
# INDEX track_mbid is one SQLite instruction of ~3 s (more on a loaded machine; 13-17 s at
# 10 M tracks), which no interrupt() cuts. "sorting" is printed when the statement starts.
_LONG_SORT = (
    "import signal, sys\n"
    "from concurrent.futures import Future\n"
    "from pathlib import Path\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # as on a terminal\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from phonotheque import interrupts\n"
    "from phonotheque.catalogue.store import Store\n"
    "from phonotheque.cli._common import handle_errors\n"
    "from phonotheque.publish import columnar_export as ce\n"
    "from phonotheque.publish.export import ExportContext\n"
    "db, cat = Path(sys.argv[1]), Path(sys.argv[2])\n"
    "Store(cat, create=True).close()\n"
    "indexes = [i for i in ce._create(db) if i[0] == 'track_mbid']\n"
    "conn = interrupts.sqlite_connect(db, isolation_level=None)\n"
    "conn.execute('PRAGMA journal_mode = OFF')\n"
    "conn.execute('INSERT INTO track(id, mbid, title, status) WITH RECURSIVE n(i) AS '\n"
    "             '(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) '\n"
    "             \"SELECT i, lower(hex(randomblob(18))), 't', 'todo' FROM n\")\n"
    "conn.close()\n"
    "def tell(step, rows=0):\n"
    "    if step == 'metadata.sqlite: index track_mbid':\n"
    "        print('sorting', flush=True)\n"
    "ctx = ExportContext(built_at='2026-01-01T00:00:00Z')\n"
    "handle_errors(lambda: ce._finish(db, cat, ctx, indexes, Future(), 1, tell))()\n")


def test_ctrl_c_stops_a_long_index_sort_at_once(tmp_path: Path) -> None:
    """Ctrl-C during `phono publish`'s CREATE INDEX track_mbid (a columnar workspace, 10 M
    tracks) exited 130 only 13-17 s later: SQLite sorts in one virtual machine instruction
    and checks for an interruption (the progress handler, interrupt()) only between two.
    The publish's SQLite statements now run in a helper thread the main thread waits on,
    which a Ctrl-C stops within a second, the sort left to end in its thread: exit 130,
    "interrupted", no traceback nor "Exception ignored" (Python's exit with that thread
    inside sqlite3_step). Child process as in the test above."""

    rc, err, took = sigint.interrupt_child(
        [_LONG_SORT, str(tmp_path / "pub.sqlite"), str(tmp_path / "catalogue.sqlite")],
        ready="sorting", after=1, timeout=30)  # the table scan (~0.5 s) is over: inside the sort
    sigint.assert_interrupted(rc, err)
    assert took < 1.5, took
