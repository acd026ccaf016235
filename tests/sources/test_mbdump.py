"""MusicBrainz PostgreSQL dump tables, on the two real mbdump sets in tests/data/mbdump."""

from __future__ import annotations

import itertools
import shutil
import tarfile
import threading
import time
from pathlib import Path

import pytest

from phonotheque.ingest import ingest
from phonotheque.sources.mbdump import copy_fields
from phonotheque.workspace import Workspace


def _rows(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines()]


def _expected(dump: Path) -> dict[str, int]:
    """Counts worked out from the table files themselves, independently of the reader."""
    t = dump / "mbdump"
    recordings = {r[0] for r in _rows(t / "recording")}
    isrcs = [(r[1], r[2]) for r in _rows(t / "isrc") if r[1] in recordings]
    placed = {r[2] for r in _rows(t / "track")}
    return {
        "track": len(recordings),
        "track_isrc": len(set(isrcs)),
        "distinct_isrc": len({code for _, code in isrcs}),
        "artist": len({r[1] for r in _rows(t / "artist")}),
        "release": len({r[1] for r in _rows(t / "release")}),
        "placed": len(recordings & placed),
    }


def _got(ws: Workspace) -> dict[str, int]:
    with ws.store(readonly=True) as s:
        return {
            "track": s.scalar("SELECT count(*) FROM track"),
            "track_isrc": s.scalar("SELECT count(*) FROM track_isrc"),
            "distinct_isrc": s.scalar("SELECT count(DISTINCT isrc) FROM track_isrc"),
            "artist": s.scalar("SELECT count(*) FROM artist"),
            "release": s.scalar("SELECT count(*) FROM release"),
            "placed": s.scalar("SELECT count(*) FROM track WHERE release_id IS NOT NULL"),
        }


@pytest.mark.parametrize("name,counts", [
    ("webservice", {"track": 126, "track_isrc": 17, "distinct_isrc": 17, "artist": 14,
                    "release": 24, "placed": 124}),
    ("isrc", {"track": 3, "track_isrc": 3, "distinct_isrc": 2, "artist": 2, "release": 0,
              "placed": 0}),
])
def test_exact_counts(ws: Workspace, data: Path, name: str, counts: dict[str, int]) -> None:
    dump = data / "mbdump" / name
    report = ingest(ws, "mbdump", [dump])
    assert report.rejected == 0
    assert _expected(dump) == counts
    assert _got(ws) == counts


def test_isrc_fixture_quirks_and_joins(ws: Workspace, data: Path) -> None:
    ingest(ws, "mbdump", [data / "mbdump/isrc"])
    with ws.store(readonly=True) as s:
        # one ISRC on two recordings, one recording with two ISRCs
        shared = s.query("SELECT isrc, count(*) n FROM track_isrc GROUP BY isrc HAVING n > 1")
        assert [tuple(r) for r in shared] == [("DEE250800230", 2)]
        two = s.scalar("SELECT group_concat(i.isrc, ' ') FROM track t JOIN track_isrc i "
                       "ON i.track_id = t.id WHERE t.mbid = '845c079d-374e-4436-9448-da92dedef3ce'")
        assert sorted(two.split()) == ["DEE250800230", "DEE250800231"]
        # two artists are both named ABBA: kept apart by MBID
        assert s.scalar("SELECT count(*) FROM artist WHERE name = 'ABBA'") == 2
        row = s.query("SELECT t.title, t.artist_credit, a.mbid, t.source, t.locator, t.licence "
                      "FROM track t JOIN track_artist ta ON ta.track_id = t.id "
                      "JOIN artist a ON a.id = ta.artist_id WHERE t.title = 'Dancing Queen'")
        assert tuple(row[0]) == ("Dancing Queen", "ABBA", "5f9913b0-7219-11de-8a39-0800200c9a66",
                                 "isrc", "mbdump/recording:line 1", "CC0-1.0")


def test_webservice_placement_on_first_release(ws: Workspace, data: Path) -> None:
    ingest(ws, "mbdump", [data / "mbdump/webservice"])
    with ws.store(readonly=True) as s:
        row = s.query("SELECT t.title, t.duration_ms, r.title AS album, r.barcode, t.disc, "
                      "t.position FROM track t JOIN release r ON r.id = t.release_id "
                      "WHERE t.mbid = 'c43ee188-0049-4eec-ba2e-0385c5edd2db'")[0]
        assert tuple(row) == ("Hello Goodbye / Galaxie", 211133, "Soup", "0208311348266", 1, 1)


def test_archive_equals_folder(tmp_path: Path, data: Path) -> None:
    archive = tmp_path / "mbdump.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        tar.add(data / "mbdump/webservice/TIMESTAMP", "TIMESTAMP")
        tar.add(data / "mbdump/webservice/mbdump", "mbdump")
    a = Workspace.create(tmp_path / "a")
    b = Workspace.create(tmp_path / "b")
    ingest(a, "mbdump", [data / "mbdump/webservice"])
    ingest(b, "mbdump", [archive])
    assert _got(a) == _got(b)
    q = "SELECT key, title, artist_credit, disc, position, duration_ms FROM track ORDER BY key"
    with a.store(readonly=True) as sa, b.store(readonly=True) as sb:
        assert [tuple(r) for r in sa.query(q)] == [tuple(r) for r in sb.query(q)]


def test_copy_escapes() -> None:
    assert copy_fields(b"1\t\\N\ta\\tb\\\\c\\nd\t\\303\\251t\\xc3\\xa9\n") == [
        "1", None, "a\tb\\c\nd", "\u00e9t\u00e9"]


def test_bad_rows_rejected_run_continues(ws: Workspace, data: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(data / "mbdump/isrc", dump)
    for f in (dump / "mbdump").iterdir():
        f.chmod(0o644)
    with open(dump / "mbdump/recording", "ab") as f:
        f.write(b"4\tnot-enough-columns\n")                       # line 4
        f.write(b"5\t11111111-2222-4333-8444-555555555555\tBad \xff name\t1\t\\N\t\t0\t\\N\tf\n")
        f.write(b"6\t11111111-2222-4333-8444-666666666666\tGood\t1\t1000\t\t0\t\\N\tf\n")
    with open(dump / "mbdump/isrc", "ab") as f:
        f.write(b"4\t6\tnot an isrc\t0\t2026-01-01\n")           # line 4
    report = ingest(ws, "mbdump", [dump])
    with ws.store(readonly=True) as s:
        got = {(r.locator, r.reason.split(":")[0]) for r in s.rejects()}
        assert s.scalar("SELECT title FROM track WHERE mbid LIKE '%666666666666'") == "Good"
    assert got == {
        ("mbdump/recording:line 4", "expected at least 5 tab-separated columns, got 2"),
        ("mbdump/recording:line 5", "invalid UTF-8"),
        ("mbdump/isrc:line 4", "recording 11111111-2222-4333-8444-666666666666"),
    }
    assert report.rejected == 3
    # re-running the same dump adds nothing
    again = ingest(ws, "mbdump", [dump], )
    assert again.added == 0 and [s.status for s in again.sources] == ["skipped"]


def test_not_a_dump(ws: Workspace, data: Path) -> None:
    from phonotheque.errors import InputError

    with pytest.raises(InputError, match="not an mbdump folder"):
        ingest(ws, "mbdump", [data / "picard"])


def test_a_read_started_in_another_thread_closes_from_this_one(data: Path, tmp_path: Path) -> None:
    """The row-path ingest reads in a read-ahead thread; on Ctrl-C the main thread drops
    the reader mid-way, and closing it there closed the join database's connection from
    another thread: sqlite3's ProgrammingError, printed as "Exception ignored ..." with a
    traceback after "interrupted" (seen on `phono ingest mbdump` of 1 M recordings)."""
    from phonotheque.sources import ReadOptions
    from phonotheque.sources.mbdump import MusicBrainzDump

    src = MusicBrainzDump()
    item = src.inputs([data / "mbdump/webservice"])[0]
    reader = src.read(item, ReadOptions(tmp_dir=tmp_path))
    first: list[object] = []
    worker = threading.Thread(target=lambda: first.append(next(reader)))
    worker.start()
    worker.join()
    assert first  # the join database is open, the reader suspended at its first record
    reader.close()  # here, in the main thread: must not raise
    assert not list(tmp_path.iterdir())  # and the join database is gone with it


def test_a_stopped_read_ahead_does_not_wait_for_the_load(data: Path, tmp_path: Path) -> None:
    """On Ctrl-C the row-path ingest stops its read-ahead, whose cleanup waits for the
    reader thread; the SQLite engine's mbdump reader yields nothing until every table is
    loaded, so a Ctrl-C waited for the load (~6 s at 1 M recordings, minutes at 35 M). The
    load now looks at read_ahead.stopping() and ends within a few thousand lines."""
    from phonotheque.read_ahead import read_ahead
    from phonotheque.sources import ReadOptions
    from phonotheque.sources.mbdump import MusicBrainzDump

    dump = tmp_path / "dump"
    shutil.copytree(data / "mbdump/webservice", dump)
    table = dump / "mbdump/recording"
    lines = table.read_bytes().splitlines(keepends=True)
    table.write_bytes(b"".join(lines * (800_000 // len(lines) + 1)))  # a load of seconds
    src = MusicBrainzDump()
    item = src.inputs([dump])[0]
    items = itertools.chain(["ready"], src.read(item, ReadOptions(tmp_dir=tmp_path)))
    reader = read_ahead(items, 1)  # type: ignore[arg-type]
    assert next(reader) == "ready"  # the reader thread now loads the tables
    time.sleep(0.3)
    started = time.monotonic()
    reader.close()
    assert time.monotonic() - started < 1.0
