"""The columnar ingest runner: the same tables and rejects as the SQLite path, ids
included; idempotent re-runs; a killed ingest redoes only the input in progress."""

from __future__ import annotations

import gzip
import io
import json
import lzma
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import pyzstd
from click.testing import CliRunner

from phonotheque import columnar_ingest
from phonotheque.catalogue import bulk, bulk_merge
from phonotheque.cli import main
from phonotheque.columnar_ingest import musicbrainz as mb_columnar
from phonotheque.errors import InputError
from phonotheque.ingest import IngestOptions, IngestReport, ingest
from phonotheque.synth import SynthOptions, synth
from phonotheque.workspace import Workspace

PHONO = [str(Path(sys.executable).parent / "phono")]
DEMO = Path(__file__).parents[1] / "src" / "phonotheque" / "demo_data" / "musicbrainz"
DATA = Path(__file__).parent / "data"
BULK = {
    "artist": "id, key, mbid, name, sort_name, source, locator, licence",
    "release": "id, key, mbid, title, date, label, barcode, artist_credit, art_path, "
               "source, locator, licence",
    "track": "id, key, mbid, title, artist_credit, release_id, disc, position, duration_ms, "
             "excluded, source, locator, licence",
    "track_artist": "track_id, position, artist_id",
    "track_isrc": "track_id, isrc, known_country, source, locator, licence",
}


def sqlite_tables(ws: Workspace) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(f"file:{ws.catalogue}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT {c} FROM {t} ORDER BY 1, 2").fetchall()
                for t, c in BULK.items()} | {"reject": _rejects(conn)}
    finally:
        conn.close()


def columnar_tables(ws: Workspace) -> dict[str, list[tuple]]:
    con = bulk.open_bulk(ws.root)
    try:
        out = {t: con.execute(f"SELECT {c} FROM {t} ORDER BY 1, 2").fetchall()
               for t, c in BULK.items()}
    finally:
        con.close()
    conn = sqlite3.connect(f"file:{ws.catalogue}?mode=ro", uri=True)
    try:
        return out | {"reject": _rejects(conn)}
    finally:
        conn.close()


def _rejects(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT stage, source, locator, reason FROM reject "
                        "ORDER BY source, locator, reason").fetchall()


def _both(tmp_path: Path, paths: list[Path]) -> tuple[Workspace, Workspace]:
    row = Workspace.create(tmp_path / "sqlite")
    col = Workspace.create(tmp_path / "columnar", engine="duckdb")
    assert col.engine == "duckdb"
    a = ingest(row, "musicbrainz", paths)
    b = columnar_ingest.ingest(col, "musicbrainz", paths)
    assert (a.rejected, a.values_dropped, a.new_rejects) == (
        b.rejected, b.values_dropped, b.new_rejects)
    _same_counts(a, b)
    return row, col


def _same_counts(a: IngestReport, b: IngestReport) -> None:
    """``--json`` reports the same ``read`` (docs/cli.md) on both engines, per input and
    in total, and the same rows added. (``updated``/``unchanged`` count a key once per
    batch or part, and the engines cut those differently.)"""
    assert [(s.source, s.read, s.added) for s in b.sources] == [
        (s.source, s.read, s.added) for s in a.sources]
    assert (b.read, b.added) == (a.read, a.added)
    assert {k: v[0] for k, v in b.by_kind.items()} == {k: v[0] for k, v in a.by_kind.items()}


def _synth(tmp_path: Path, tracks: int, seed: int = 7) -> Path:
    out = tmp_path / f"synth{tracks}-{seed}"
    synth(out, SynthOptions(tracks=tracks, seed=seed))
    return out / "release.jsonl"


def _malformed(tmp_path: Path, good: Path) -> Path:
    """Good lines, then the kinds of bad line the Python reader refuses, by line."""
    lines = good.read_bytes().splitlines(keepends=True)[:40]
    rec = json.loads(lines[0])
    track = rec["media"][0]["tracks"][0]["recording"]
    bad_isrc = dict(track, id="00000000-0000-4000-8000-000000000001",
                    isrcs=["NOT-AN-ISRC", "xx-x1x-99-00001"], title="t" * 5000, length=-3)
    bad = [b'{"id": "oops", "title": \n', json.dumps(bad_isrc).encode() + b"\n",
           json.dumps({k: v for k, v in rec.items() if k != "id"}).encode() + b"\n",
           b'{"title": "caf\xc3\x28", "length": 1}\n', b"\n", b"[1, 2]\n"]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(lines[:20] + bad + lines[20:]) + lines[0][:40])
    return path


# fixtures the SQL reads itself (the Python reader only for lines it flags)
SQL_READ = {"synth", "zst", "gz", "duplicates", "demo", "tar.xz", "json.xz"}


@pytest.mark.parametrize("fixture", [
    "picard", "mbpseudo", "demo", "synth", "malformed", "duplicates", "tar.xz", "zst", "gz",
    "json.xz",
])
def test_columnar_tables_equal_the_sqlite_path(tmp_path: Path, fixture: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    if fixture == "picard":
        paths = [DATA / "picard" / "ws_data"]
    elif fixture == "mbpseudo":
        paths = [DATA / "beets" / "mbpseudo"]
    elif fixture == "demo":
        paths = [DEMO]
    elif fixture == "synth":
        paths = [_synth(tmp_path, 3000)]
    elif fixture == "malformed":
        paths = [_malformed(tmp_path, _synth(tmp_path, 300))]
    elif fixture == "duplicates":
        # the same releases twice (other seed: overlapping keys, new titles), then a
        # recording file: every merge rule meets stored rows
        paths = [_synth(tmp_path, 400), _synth(tmp_path, 400, seed=8),
                 DATA / "picard" / "ws_data" / "recording.json", _synth(tmp_path, 400)]
    elif fixture == "zst":
        plain = _synth(tmp_path, 2000)
        paths = [plain.with_name("release.jsonl.zst")]
        paths[0].write_bytes(pyzstd.compress(plain.read_bytes()))
    elif fixture == "gz":
        plain = _synth(tmp_path, 2000)
        paths = [plain.with_name("release.jsonl.gz")]
        paths[0].write_bytes(gzip.compress(plain.read_bytes()))
    elif fixture == "json.xz":  # JSON Lines named .json, compressed as DuckDB does not read
        plain = _synth(tmp_path, 2000)
        paths = [plain.with_name("release.json.xz")]
        paths[0].write_bytes(lzma.compress(plain.read_bytes()))
    else:
        paths = [_tar_xz(tmp_path, DEMO / "mbdump-sample.jsonl")]
    if fixture in SQL_READ:
        def whole_file_in_python(*args: object) -> None:
            raise AssertionError("read by the Python reader, not DuckDB")

        if fixture == "duplicates":  # the recording.json document is Python's
            paths = [p for p in paths if p.suffix == ".jsonl"]
        monkeypatch.setattr(mb_columnar._records, "stage", whole_file_in_python)
    row, col = _both(tmp_path, paths)
    want = sqlite_tables(row)
    assert want["track"], "the fixture gave no tracks: nothing compared"
    got = columnar_tables(col)
    for table in want:
        assert got[table] == want[table], table
    if fixture == "malformed":
        lines = {loc for _s, _src, loc, _why in got["reject"]}
        assert {"line 21", "line 22", "line 23", "line 24", "line 26"} <= lines
        last = len(paths[0].read_bytes().splitlines())
        assert f"line {last}" in lines  # the truncated last line


def _edit(line: bytes, change: str) -> bytes:
    rec = json.loads(line)
    medium = rec["media"][0]
    track = medium["tracks"][0]
    recording = track["recording"]
    credit = rec["artist-credit"]
    if change == "spaces":  # stripped as Python's str.strip() does
        recording["title"] = "\u2003 " + recording["title"] + " \t"
    elif change == "isrc":  # normalisable, not canonical: Python normalises it
        recording["isrcs"] = ["gb-ahs-14-00099"]
    elif change == "position":
        track["position"] = "2"
    elif change == "number-title":
        rec["title"] = 5
    elif change == "underscore":
        recording["artist_credit"] = recording.pop("artist-credit")
    elif change == "pregap":
        medium["pregap"] = dict(track, position=0)
    elif change == "long":
        recording["length"] = 2**40
    elif change == "escapes":
        rec["title"] = 'caf\u00e9 "quoted" \\ back'
    elif change == "no-id":
        del recording["id"]
    elif change == "joinphrase":
        credit[0]["joinphrase"] = " & "
        credit.append({"name": "Other", "joinphrase": "  ", "artist": {
            "id": "00000000-0000-4000-8000-00000000000a", "name": "Other",
            "sort-name": "Other, The"}})
    elif change == "disc0":
        medium["position"] = 0
    elif change == "length0":
        recording["length"], track["length"] = 0, 1234
    elif change == "track-credit":
        track["artist-credit"], recording["artist-credit"] = recording["artist-credit"], []
    elif change == "duplicate-artist":
        credit.append(dict(credit[0]))
    elif change == "long-title":
        rec["title"] = "x" * 5000
    return json.dumps(rec, ensure_ascii=change != "escapes").encode() + b"\n"


# change -> whether the SQL reads the line (else the Python reader does)
EDITS = {"spaces": True, "isrc": False, "position": False, "number-title": False,
         "underscore": False, "pregap": False, "long": False, "escapes": True, "no-id": False,
         "joinphrase": True, "disc0": True, "length0": True, "track-credit": False,
         "duplicate-artist": False, "long-title": False}


def _python_lines(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The numbers of the lines the Python reader parses from now on (a spy on the real
    ``parse_lines``, which still does the parsing)."""
    from phonotheque.sources.musicbrainz import SOURCE

    seen: set[int] = set()
    real = SOURCE.parse_lines

    def spy(item, numbered, *member):  # type: ignore[no-untyped-def]
        for n, records in real(item, numbered, *member):
            seen.add(n)
            yield n, records

    monkeypatch.setattr(SOURCE, "parse_lines", spy)
    return seen


def _edited_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracks: int,
                   edits: dict[str, bool], edit: Callable[[bytes, str], bytes],
                   name: str) -> tuple[dict[str, list[tuple]], dict[str, list[tuple]]]:
    """A synth file with line 2n edited by the n-th of ``edits`` (True: the SQL reads the
    edited line itself); assert exactly the other edited lines go to the Python reader,
    and return the SQLite path's and the columnar path's tables."""
    lines = _synth(tmp_path, tracks).read_bytes().splitlines(keepends=True)
    python_lines: set[int] = set()
    for n, change in enumerate(edits, start=1):
        lines[2 * n] = edit(lines[2 * n], change)
        if not edits[change]:
            python_lines.add(2 * n + 1)
    path = tmp_path / name
    path.write_bytes(b"".join(lines))
    seen = _python_lines(monkeypatch)
    row, col = _both(tmp_path, [path])
    assert seen == python_lines
    return sqlite_tables(row), columnar_tables(col)


def test_lines_sql_cannot_read_exactly_go_to_the_python_reader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shape the SQL does not read the Python way is handed to the Python reader,
    line by line; the rest of the file stays on the SQL path, and the tables and rejects
    equal the SQLite path's."""
    want, got = _edited_tables(tmp_path, monkeypatch, 600, EDITS, _edit, "edited.jsonl")
    for table in want:
        assert got[table] == want[table], table
    assert want["reject"]  # the no-id line, the bounds


def _credit(*names: str) -> list[dict[str, object]]:
    return [{"name": n, "joinphrase": " & " if i < len(names) - 1 else "", "artist": {
        "id": f"00000000-0000-4000-8000-0000000000{i + 1:02d}" if n != "Beta" else
              "00000000-0000-4000-8000-0000000000bb", "name": n, "sort-name": n}}
        for i, n in enumerate(names)]


def test_read_counts_every_credited_artist_on_both_engines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``read`` is the same on both engines and counts each artist of the release's
    credit and of each track's own credit, a credit repeated from the one before too
    (the row reader converts such a credit once; it used to count its artists once, the
    SQL every time: 1 M synthetic tracks read 2,162,518 against 3,162,518)."""
    both = _credit("Alpha", "Gamma")  # two artists
    beta = _credit("Beta")

    def track(n: int, credit: list[dict[str, object]] | None) -> dict[str, object]:
        rec: dict[str, object] = {"id": f"00000000-0000-4000-9000-0000000000{n:02d}",
                                  "title": f"Song {n}", "length": 1000 * n,
                                  "isrcs": ["GBAAA9900001"] if n == 1 else []}
        if credit is not None:
            rec["artist-credit"] = credit
        return {"position": n, "title": f"Song {n}", "recording": rec}

    release = {"id": "00000000-0000-4000-a000-000000000001", "title": "Credits",
               "artist-credit": both,
               "media": [{"position": 1, "tracks": [track(1, both), track(2, beta),
                                                    track(3, both), track(4, None)]}]}
    path = tmp_path / "credits.jsonl"
    path.write_text(json.dumps(release) + "\n")
    seen = _python_lines(monkeypatch)
    row, col = _both(tmp_path, [path])  # asserts the same read on both engines
    assert not seen  # the columnar path read the line in SQL
    report = ingest(row, "musicbrainz", [path], IngestOptions(force=True))
    # 1 release + 4 tracks + 1 ISRC + artists: release 2, track 1 2 (the same credit
    # again), track 2 1, track 3 2, track 4 none (it has the release's)
    assert report.read == 1 + 4 + 1 + (2 + 2 + 1 + 2)
    assert sqlite_tables(row) == columnar_tables(col)


def _tar_xz(tmp_path: Path, jsonl: Path) -> Path:
    path = tmp_path / "dump.tar.xz"
    payload = jsonl.read_bytes()
    with tarfile.open(path, "w:xz") as tar:
        for name in ("mbdump/release",):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def _dump(tmp_path: Path, members: list[tuple[str, bytes]], name: str = "dump.tar.xz") -> Path:
    path = tmp_path / name
    with tarfile.open(path, "w:xz") as tar:
        for member, payload in members:
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def _recording_lines() -> bytes:
    return b"".join(json.dumps(json.loads((DATA / "picard" / "ws_data" / f).read_bytes()))
                    .encode() + b"\n" for f in ("recording.json", "recording_credits.json"))


@pytest.mark.parametrize("truncated", [False, True])
def test_tar_xz_release_members_are_read_by_duckdb_as_python_reads_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, truncated: bool) -> None:
    """The JSON Lines members of a .tar.xz dump go through DuckDB chunk by chunk and part
    by part (was: the whole archive through the Python reader); lines are numbered on
    across members as the row reader numbers them, locators name the member and its line
    ("mbdump/release:line 21"); the chunks DuckDB refuses (bad lines) and the members that
    are not releases go to the Python reader. Tables, ids and rejects equal the SQLite
    path's, also for an archive that breaks part-way (the part it breaks in is read by
    the Python reader, which says where it broke)."""
    bad = _malformed(tmp_path, _synth(tmp_path, 300)).read_bytes()  # lines 21-26 bad
    recordings = _recording_lines()
    more = _synth(tmp_path, 300, seed=8).read_bytes()
    path = _dump(tmp_path, [("mbdump/TIMESTAMP", b"2026-12-01\n"), ("mbdump/release", bad),
                            ("mbdump/recording", recordings), ("mbdump/README", b"x\n"),
                            ("dump2/release", more)])
    if truncated:
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) * 3 // 4])
    else:
        def whole_file_in_python(*args: object) -> None:
            raise AssertionError("read by the Python reader, not DuckDB")

        monkeypatch.setattr(mb_columnar._records, "stage", whole_file_in_python)
    monkeypatch.setattr(mb_columnar, "CHUNK_LINES", 7)
    monkeypatch.setattr(mb_columnar, "PART_ROWS", 300)
    seen = _python_lines(monkeypatch)
    row, col = _both(tmp_path, [path])
    want, got = sqlite_tables(row), columnar_tables(col)
    assert want["track"]
    for table in want:
        assert got[table] == want[table], table
    locators = {loc for _s, _src, loc, _why in got["reject"]}
    if truncated:
        assert any(loc.startswith("after dump2/release:line ") for loc in locators), locators
        return
    # the chunks of lines 21-26 (15-28) and of the truncated last line, the recordings
    total = bad.count(b"\n") + 1
    last = (total - 1) // 7 * 7 + 1
    assert seen == set(range(15, 29)) | set(range(last, total + 1 + recordings.count(b"\n")))
    assert {"mbdump/release:line 21", f"mbdump/release:line {total}"} <= locators
    tracks = {loc for *_k, loc, _lic in got["track"]}
    assert "dump2/release:line 1" in tracks and "line 1" not in tracks


def linked_tar(path: Path, members: list[tuple[str, str, bytes | str]]) -> Path:
    """Write ``path``, a .tar.xz of ``members`` (name, "file"/"sym"/"hard"/"dir", the bytes
    of a file or the target of a link), in that order; return it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "dir": tarfile.DIRTYPE}[kind]
            info.linkname = str(data)
            tar.addfile(info)
    path.write_bytes(lzma.compress(buf.getvalue(), preset=0))
    return path


_UNREAD = "its lines are not read"


@pytest.mark.parametrize(("links", "reason"), [
    # packed without tar -h: the release member a symbolic link to a file after it, or a
    # hard link to one before it (tar writes the first name as the file)
    ([("mbdump/release", "sym", "release.data"), ("mbdump/release.data", "file", None)],
     None),
    ([("data/r", "file", None), ("mbdump/release", "hard", "data/r")], None),
    # never followed out of the archive; not in it; a loop; a folder
    ([("mbdump/release", "sym", "../../release")],
     "a symbolic link to ../../release, outside the archive: not followed, " + _UNREAD),
    ([("mbdump/release", "hard", "mbdump/gone")],
     "a hard link to mbdump/gone, which is not a file in the archive: " + _UNREAD),
    ([("mbdump/release", "sym", "r2"), ("mbdump/r2", "sym", "release")],
     "a symbolic link to r2: a loop of links, " + _UNREAD),
    ([("mbdump/release", "dir", "")], "not a file (a folder, device or pipe): " + _UNREAD),
])
def test_a_tar_xz_member_that_is_a_link_is_read_or_a_reject(
        tmp_path: Path, links: list[tuple[str, str, str | None]], reason: str | None) -> None:
    """A JSON dump archive whose mbdump/release member is a link (packed from a folder
    where it was one) or a folder: both engines' isfile() filter skipped it, exit 0 with
    nothing read and no reject. Now a link to a file of the archive is read as that file
    (after the other members, as the mbdump reader does: the shared
    sources._base.archive_members), and one leading outside it, to nothing, in a loop,
    or a folder is a reject naming the archive and the member, on both engines."""
    releases = _synth(tmp_path, 40).read_bytes()
    recordings = _recording_lines()  # a plain member before it: its lines come first
    plain = _both(tmp_path / "plain", [_dump(tmp_path, [("mbdump/recording", recordings),
                                                        ("mbdump/release", releases)])])
    path = linked_tar(tmp_path / "linked.tar.xz", [("mbdump/recording", "file", recordings)] + [
        (name, kind, releases if data is None else data) for name, kind, data in links])
    row, col = _both(tmp_path, [path])
    want, got = sqlite_tables(row), columnar_tables(col)
    for table in want:
        assert got[table] == want[table], table
    assert [(src, loc, why) for _s, src, loc, why in got["reject"]] == (
        [] if reason is None else [(str(path), "mbdump/release", reason)])
    if reason is None:  # as the plain archive's, tracks and their places (but the file)
        assert [t[:10] + t[11:] for t in got["track"]] == [
            t[:10] + t[11:] for t in columnar_tables(plain[1])["track"]]
    else:
        assert got["track"] and not any(t[5] for t in got["track"])  # no release


@pytest.mark.parametrize(("kind", "given", "suffix"), [
    ("listens", Path("listens.csv"), ".csv"),
    ("musicbrainz", Path("musicbrainz") / "mbdump-sample.jsonl", ".jsonl"),
])
def test_a_folders_file_that_is_a_broken_link_a_loop_or_a_pipe_is_a_reject(
        tmp_path: Path, kind: str, given: Path, suffix: str) -> None:
    """`phono ingest listens|musicbrainz <folder>`: a file of the folder named as an
    input (``*.csv``) that is a symbolic link to nothing, a loop of links or a pipe was
    skipped silently (``is_file()``), exit 0, on both engines. Now each is a ``file``
    reject naming it (exit 10), the pipe never opened (it would wait for ever), the rest
    of the folder read; a link to a file is read; a re-run skips them (exit 0)."""
    folder = tmp_path / "in"
    folder.mkdir()
    data = (DEMO.parent / given).read_bytes()
    (folder / f"a{suffix}").write_bytes(data)
    (folder / f"linked{suffix}").symlink_to(f"a{suffix}")
    (folder / f"broken{suffix}").symlink_to(f"gone{suffix}")
    (folder / f"loop{suffix}").symlink_to(f"loop{suffix}")
    os.mkfifo(folder / f"pipe{suffix}")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to("..")  # a folder's loop: not walked into
    row = Workspace.create(tmp_path / "sqlite")
    col = Workspace.create(tmp_path / "columnar", engine="duckdb")
    a = ingest(row, kind, [folder])
    b = ingest(col, kind, [folder])  # dispatches on the engine
    assert (a.rejected, a.new_rejects) == (b.rejected, b.new_rejects) == (3, 3)
    _same_counts(a, b)
    assert a.read > 0
    want, got = sqlite_tables(row), columnar_tables(col)
    for table in want:
        assert got[table] == want[table], table
    ours = [(src, loc, why) for _s, src, loc, why in got["reject"] if loc == "file"]
    assert ours == [
        (str(folder / f"broken{suffix}"), "file",
         f"a symbolic link to gone{suffix}, which names no file: not read"),
        (str(folder / f"loop{suffix}"), "file",
         f"a symbolic link to loop{suffix}, a loop of links: not read"),
        (str(folder / f"pipe{suffix}"), "file",
         "not a regular file (a pipe or device): not read")]
    for ws in (row, col):
        again = ingest(ws, kind, [folder])
        assert again.new_rejects == 0


def test_tags_folder_entries_that_are_not_files_are_rejects_on_both_engines(
        tmp_path: Path) -> None:
    """`phono ingest tags <folder>`: a pipe named ``x.ogg``, a link to a pipe, a link to a
    folder (even one leading back up) were skipped silently on both engines (exit 0, no
    reject), and a loop of links was reported as 'Too many levels of symbolic links'.
    Now the walk follows the listens/musicbrainz folders' rule (sources._base.found_entry):
    each is a ``file`` reject naming it, the pipe never opened, a folder link not walked
    into (the loop never followed); a link to a file is read; a re-run adds no reject."""
    audio = DEMO.parent / "audio" / "by-isrc"
    folder = tmp_path / "music"
    (folder / "sub").mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    for name in ("GBAAA9900295.oga", "GBAAA9900297.oga"):
        (folder / name).write_bytes((audio / name).read_bytes())
    (other / "GBAAA9900298.oga").write_bytes((audio / "GBAAA9900298.oga").read_bytes())
    (folder / "sub" / "linked.oga").symlink_to("../GBAAA9900297.oga")
    os.mkfifo(folder / "x.ogg")
    (folder / "to-pipe.ogg").symlink_to("x.ogg")
    (folder / "broken.ogg").symlink_to("gone.ogg")
    (folder / "loop.ogg").symlink_to("loop.ogg")
    (folder / "linked-folder").symlink_to(other)
    (folder / "sub" / "up").symlink_to("..")
    row = Workspace.create(tmp_path / "sqlite")
    col = Workspace.create(tmp_path / "columnar", engine="duckdb")
    a = ingest(row, "tags", [folder])
    b = ingest(col, "tags", [folder])  # dispatches on the engine
    assert (a.rejected, a.new_rejects) == (b.rejected, b.new_rejects) == (6, 6)
    want, got = sqlite_tables(row), columnar_tables(col)
    for table in want:
        assert got[table] == want[table], table
    isrcs = {r[1] for r in got["track_isrc"]}
    assert {"GBAAA9900295", "GBAAA9900297"} <= isrcs and "GBAAA9900298" not in isrcs
    pipe = "not a regular file (a pipe or device): not read"
    assert [(src, loc, why) for _s, src, loc, why in got["reject"]] == [
        (str(folder / "broken.ogg"), "file",
         "a symbolic link to gone.ogg, which names no file: not read"),
        (str(folder / "linked-folder"), "file",
         f"a symbolic link to a folder ({other}): not walked into; give that folder as an "
         "input to read it"),
        (str(folder / "loop.ogg"), "file", "a symbolic link to loop.ogg, a loop of links: not read"),
        (str(folder / "sub" / "up"), "file",
         "a symbolic link to a folder (..): not walked into; give that folder as an input "
         "to read it"),
        (str(folder / "to-pipe.ogg"), "file", pipe),
        (str(folder / "x.ogg"), "file", pipe)]
    for ws in (row, col):
        again = ingest(ws, "tags", [folder])
        assert again.new_rejects == 0
    for ws in (row, col):  # given directly, a pipe is an error (as a listens file is)
        with pytest.raises(InputError, match="not a folder or a regular file"):
            ingest(ws, "tags", [folder / "x.ogg"])


@pytest.mark.parametrize("dump", ["webservice", "isrc"])
def test_mbdump_tables_equal_the_sqlite_path(tmp_path: Path, dump: str) -> None:
    paths = [DATA / "mbdump" / dump]
    row = Workspace.create(tmp_path / "sqlite")
    col = Workspace.create(tmp_path / "columnar", engine="duckdb")
    a = ingest(row, "mbdump", paths)
    b = ingest(col, "mbdump", paths)  # dispatches on the engine
    assert (a.rejected, a.new_rejects) == (b.rejected, b.new_rejects)
    _same_counts(a, b)
    want, got = sqlite_tables(row), columnar_tables(col)
    assert want["track"]
    for table in want:
        assert got[table] == want[table], table


def test_rerun_changes_nothing_and_force_counts_unchanged(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    paths = [_synth(tmp_path, 500), DATA / "picard" / "ws_data" / "release.json"]
    first = columnar_ingest.ingest(ws, "musicbrainz", paths)
    assert first.added > 0
    before = columnar_tables(ws)
    second = columnar_ingest.ingest(ws, "musicbrainz", paths)
    assert [s.status for s in second.sources] == ["skipped", "skipped"]
    forced = columnar_ingest.ingest(ws, "musicbrainz", paths, IngestOptions(force=True))
    assert forced.added == forced.updated == 0
    assert forced.read == first.read and forced.unchanged > 0
    assert columnar_tables(ws) == before


def test_exclusions_apply_to_ingested_tracks(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    recording = DATA / "picard" / "ws_data" / "recording.json"
    mbid = json.loads(recording.read_text())["id"]
    runner = CliRunner()
    added = runner.invoke(main, ["exclude", "add", "--mbid", mbid, "--reason", "test",
                                 "-w", str(ws.root)])
    assert added.exit_code == 0, added.output
    report = columnar_ingest.ingest(ws, "musicbrainz", [recording])
    assert report.excluded_tracks == 1
    removed = runner.invoke(main, ["exclude", "remove", "mbid", mbid, "-w", str(ws.root)])
    assert removed.exit_code == 0, removed.output
    con = bulk.open_bulk(ws.root)
    try:
        assert con.execute("SELECT count(*) FROM track WHERE excluded = 1").fetchone() == (0,)
    finally:
        con.close()
    again = runner.invoke(main, ["exclude", "add", "--mbid", mbid, "--reason", "test",
                                 "-w", str(ws.root)])
    assert again.exit_code == 0, again.output
    con = bulk.open_bulk(ws.root)
    try:
        assert con.execute("SELECT count(*) FROM track WHERE excluded = 1").fetchone() == (1,)
    finally:
        con.close()


def test_cli_exit_codes_on_a_columnar_workspace(tmp_path: Path) -> None:
    runner = CliRunner()
    ws = tmp_path / "w"
    assert runner.invoke(main, ["init", str(ws), "--engine", "duckdb"]).exit_code == 0
    clean = runner.invoke(main, ["ingest", "musicbrainz", "-w", str(ws),
                                 str(DATA / "picard" / "ws_data" / "release.json")])
    assert clean.exit_code == 0, clean.output
    dirty = runner.invoke(main, ["ingest", "musicbrainz", "-w", str(ws),
                                 str(DATA / "picard" / "ws_data" / "release_null.json")])
    assert dirty.exit_code == 10, dirty.output
    again = runner.invoke(main, ["ingest", "musicbrainz", "--force", "-w", str(ws),
                                 str(DATA / "picard" / "ws_data" / "release_null.json")])
    assert again.exit_code == 0, again.output  # refused before: not news
    # own files are ingested there too (columnar_tags): beets' broken files are refused
    tags = runner.invoke(main, ["ingest", "tags", "-w", str(ws), str(DATA / "beets")])
    assert tags.exit_code == 10, tags.output
    assert "Traceback" not in tags.output


def _done(ws: Path) -> int | None:
    """Inputs the columnar catalogue has checkpointed, or None while it is busy."""
    try:
        con = bulk.open_bulk(ws)
    except Exception:  # noqa: BLE001 - locked by the ingest, or not there yet
        return None
    try:
        row = con.execute("SELECT count(*) FROM ingest_checkpoint WHERE done = 1").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def columnar_pair(tmp_path: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """Two fresh columnar workspaces made by `phono init`: one for an uninterrupted run,
    one for the run that is killed."""
    pair = tmp_path / "whole", tmp_path / "killed"
    for ws in pair:
        subprocess.run([*PHONO, "init", str(ws), "--engine", "duckdb"], check=True, env=env,
                       capture_output=True)
    return pair


def committed(line: bytes) -> bool:
    """A plain progress line of a committed input or part: its message is the input
    alone (a reader's step inside a part says ``<input>: <step>``)."""
    return b" - " in line and b": " not in line.rsplit(b" - ", 1)[1]


def kill_after_first_input(cmd: list[str], env: dict[str, str]) -> None:
    """Run ``cmd`` (an ingest of several inputs printing a plain progress line after each
    committed one: ``PHONO_PROGRESS_INTERVAL=0``) and SIGKILL it at the first such line;
    assert the kill landed before it finished."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    while (line := proc.stdout.readline()) and not committed(line):
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, "ingest finished before it could be killed"


def test_sigkill_mid_ingest_then_rerun_matches_uninterrupted(tmp_path: Path) -> None:
    """A real `phono ingest` killed with SIGKILL between inputs' commits: the re-run
    skips the committed inputs, redoes the one in progress, and the tables equal an
    uninterrupted run's."""
    paths = [_synth(tmp_path, 1500, seed=s) for s in (1, 2, 3, 4)]
    # a plain progress line on stderr after every committed input
    env = dict(os.environ, PHONO_PROGRESS="0", PHONO_PROGRESS_INTERVAL="0")
    whole, killed = columnar_pair(tmp_path, env)
    subprocess.run([*PHONO, "ingest", "musicbrainz", "-w", str(whole), *map(str, paths)],
                   check=True, env=env, capture_output=True)
    for _attempt in range(3):
        kill_after_first_input([*PHONO, "ingest", "musicbrainz", "-w", str(killed),
                                *map(str, paths)], env)
        done = _done(killed)
        if done is not None and 0 < done < len(paths):
            break
    assert done is not None and 0 < done < len(paths), done
    rerun = subprocess.run([*PHONO, "ingest", "musicbrainz", "-w", str(killed),
                            *map(str, paths), "--json"], env=env, capture_output=True,
                           text=True)
    assert rerun.returncode == 0, rerun.stderr
    statuses = [s["status"] for s in json.loads(rerun.stdout)["report"]["sources"]]
    assert statuses.count("skipped") == done and "read" in statuses
    assert columnar_tables(Workspace(killed)) == columnar_tables(Workspace(whole))


@pytest.mark.parametrize(("compress", "part_rows"), [("", mb_columnar.PART_ROWS),
                                                     (".zst", mb_columnar.PART_ROWS),
                                                     (".zst", 40)])
def test_a_file_is_read_in_chunks_and_only_refused_chunks_go_to_python(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: str, part_rows: int) -> None:
    """DuckDB reads a file CHUNK_LINES lines at a time (bounded memory: a whole 10 M-track
    file ran out of 3 GiB); a chunk it refuses (here the malformed lines, 21-26) is read
    by the Python reader and every other chunk stays set-based; the tables and rejects
    equal the SQLite path's, also when every few chunks merge as a part of their own
    (PART_ROWS: the merge's memory bound)."""

    path = _malformed(tmp_path, _synth(tmp_path, 300))
    if compress:
        path = path.with_name(path.name + compress)
        path.write_bytes(pyzstd.compress(path.with_suffix("").read_bytes()))
    monkeypatch.setattr(mb_columnar, "CHUNK_LINES", 7)
    monkeypatch.setattr(mb_columnar, "PART_ROWS", part_rows)
    seen = _python_lines(monkeypatch)
    row, col = _both(tmp_path, [path])
    total = len(path.with_suffix("").read_bytes().splitlines()) if compress else \
        len(path.read_bytes().splitlines())
    # the chunks holding lines 21-26 (lines 15-28) and the truncated last line's chunk
    last = (total - 1) // 7 * 7 + 1
    assert seen == set(range(15, 29)) | set(range(last, total + 1)), sorted(seen)
    want, got = sqlite_tables(row), columnar_tables(col)
    for table in want:
        assert got[table] == want[table], table
    assert not list((col.root / "tmp").rglob("chunk-*")), "chunk files left behind"


@pytest.mark.parametrize("compress", ["", ".zst"])
def test_a_chunk_is_read_from_its_pieces_in_one_go_and_a_refused_chunk_piece_by_piece(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: str) -> None:
    """A chunk (CHUNK_LINES) is cut into files of PIECE_LINES lines, which DuckDB reads
    in one statement, in order (the lines numbered across them); a chunk it refuses is
    read again piece by piece, and only the pieces it still refuses (the malformed lines
    21-26: pieces 15-21 and 22-28, and the truncated last line's) go to the Python
    reader. The tables and rejects equal the SQLite path's."""
    path = _malformed(tmp_path, _synth(tmp_path, 300))
    if compress:
        path = path.with_name(path.name + compress)
        path.write_bytes(pyzstd.compress(path.with_suffix("").read_bytes()))
    monkeypatch.setattr(mb_columnar, "PIECE_LINES", 7)
    monkeypatch.setattr(mb_columnar, "CHUNK_LINES", 21)
    reads: list[int] = []  # pieces per read_json
    real_read = mb_columnar.MusicBrainzReader._read

    def read(self, con, files, first, lines):  # type: ignore[no-untyped-def]
        reads.append(len(files))
        return real_read(self, con, files, first, lines)

    monkeypatch.setattr(mb_columnar.MusicBrainzReader, "_read", read)
    seen = _python_lines(monkeypatch)
    row, col = _both(tmp_path, [path])
    total = len((path.with_suffix("") if compress else path).read_bytes().splitlines())
    last = (total - 1) // 7 * 7 + 1
    assert seen == set(range(15, 29)) | set(range(last, total + 1)), sorted(seen)
    assert reads.count(3) >= total // 21 - 2, reads  # chunks of three pieces, in one go
    assert reads.count(1) >= 3, reads  # the refused chunks, piece by piece
    want, got = sqlite_tables(row), columnar_tables(col)
    for table in want:
        assert got[table] == want[table], table
    assert not list((col.root / "tmp").rglob("chunk-*")), "chunk files left behind"


def _shortcut_edit(line: bytes, change: str) -> bytes:
    """Values at the edges of the SQL's cheap tests (the strip's first/last character
    test, the MBID round trip through UUID, credits summarised without an aggregate)."""
    rec = json.loads(line)
    track = rec["media"][0]["tracks"][0]
    recording = track["recording"]
    credit = rec["artist-credit"]
    if change == "edge-spaces":  # str.isspace at both ends, below 32 and above 132
        rec["title"] = "\x1f" + rec["title"] + "\x85"
        recording["title"] = "\u3000" + recording["title"] + "\u2029\x1c"
        rec["label-info"][0]["label"]["name"] = "\u205fLabel\u00a0"
        credit[0]["name"] = "\u202f" + credit[0]["name"] + "\x0b"
        credit[0]["artist"]["sort-name"] = "\u1680Sort\u200a"
    elif change == "not-spaces":  # at the edges, but not str.isspace: kept
        rec["title"] = "\u200b" + rec["title"] + "\x7f"
        recording["title"] = recording["title"] + " \u0301"
        credit[0]["name"] = "\x01" + credit[0]["name"] + "\ufeff"
    elif change == "blank-credit-name":  # the artist's name stands in
        credit[0]["name"] = " \u2003 "
    elif change == "empty-credit":
        rec["artist-credit"] = []
    elif change == "mbid-upper":  # Python lowercases it
        recording["id"] = recording["id"].upper()
    elif change == "mbid-braces":
        rec["id"] = "{" + rec["id"] + "}"
    elif change == "mbid-bare":
        credit[0]["artist"]["id"] = credit[0]["artist"]["id"].replace("-", "")
    elif change in ("credits-40", "credits-41"):
        n = int(change[-2:])
        recording["artist-credit"] = [
            {"name": f"A{i}", "joinphrase": " / ", "artist": {
                "id": f"00000000-0000-4000-8000-0000000000{i:02d}", "name": f"A{i}",
                "sort-name": f"A{i}"}} for i in range(n)]
    elif change == "isrc-lower":  # Python normalises it
        recording["isrcs"] = [recording.get("isrcs", ["GBAHS1400099"])[0].lower()
                              if recording.get("isrcs") else "gbahs1400099"]
    return json.dumps(rec, ensure_ascii=False).encode() + b"\n"


# change -> whether the SQL reads the line (else the Python reader does)
SHORTCUT_EDITS = {"edge-spaces": True, "not-spaces": True, "blank-credit-name": True,
                  "empty-credit": True, "mbid-upper": False, "mbid-braces": False,
                  "mbid-bare": False, "credits-40": True, "credits-41": False,
                  "isrc-lower": False}


def test_values_at_the_edges_of_the_sql_shortcuts_read_as_python_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SQL's cheap checks (strip only when an end character may be whitespace,
    MBIDs by a round trip through UUID, credits summarised per row) give the Python
    reader's values, and hand over exactly the lines they must."""
    want, got = _edited_tables(tmp_path, monkeypatch, 300, SHORTCUT_EDITS, _shortcut_edit,
                               "edges.jsonl")
    for table in want:
        assert got[table] == want[table], table


def _credit_shape_edit(line: bytes, change: str) -> bytes:
    """Credit lists of a shape DuckDB's reader would refuse (they are read as JSON text
    and given their structure once per distinct list)."""
    rec = json.loads(line)
    recording = rec["media"][0]["tracks"][0]["recording"]
    if change == "release-credit-object":
        rec["artist-credit"] = {"name": "Alpha"}
    elif change == "recording-credit-string":
        recording["artist-credit"] = "Alpha"
    elif change == "credit-entry-number":
        recording["artist-credit"] = [1]
    elif change == "credit-artist-string":
        rec["artist-credit"][0]["artist"] = "Alpha"
    elif change == "credit-entry-list":
        recording["artist-credit"] = [[]]
    text = json.dumps(rec)
    if change == "credit-key-twice":  # json.dumps cannot write it: spliced in
        text = text.replace('"joinphrase": ', '"joinphrase": " & ", "joinphrase": ', 1)
    elif change == "artist-key-twice":
        text = text.replace('"sort-name": ', '"sort-name": "X", "sort-name": ', 1)
    return text.encode() + b"\n"


# every one goes to the Python reader, line by line (the rest of its chunk stays SQL)
CREDIT_SHAPE_EDITS = {"release-credit-object": False, "recording-credit-string": False,
                      "credit-entry-number": False, "credit-artist-string": False,
                      "credit-entry-list": False, "credit-key-twice": False,
                      "artist-key-twice": False}


def test_credit_lists_of_an_odd_shape_send_their_lines_to_python(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A credit list that is not a list of objects (or has a key twice) sends its line,
    not its whole chunk, to the Python reader; the tables and rejects equal the SQLite
    path's."""
    want, got = _edited_tables(tmp_path, monkeypatch, 300, CREDIT_SHAPE_EDITS,
                               _credit_shape_edit, "shapes.jsonl")
    for table in want:
        assert got[table] == want[table], table


def test_a_refused_chunk_whose_error_quotes_cut_text_goes_to_python(tmp_path: Path) -> None:
    """DuckDB's refusal quotes the bad value cut to a few bytes, here inside a two-byte
    character: the message is not UTF-8 (a UnicodeDecodeError, not a DuckDB error). The
    chunk still goes to the Python reader (was: a traceback)."""
    lines = _synth(tmp_path, 100).read_bytes().splitlines(keepends=True)
    bad = json.loads(lines[3])
    bad["media"] = "é" * 100  # a string where the media list belongs
    lines[3] = json.dumps(bad, ensure_ascii=False).encode() + b"\n"
    path = tmp_path / "quoted.jsonl"
    path.write_bytes(b"".join(lines))
    row, col = _both(tmp_path, [path])
    want, got = sqlite_tables(row), columnar_tables(col)
    assert want["reject"]
    for table in want:
        assert got[table] == want[table], table


@pytest.mark.parametrize("layout", [".zst", pytest.param(".tar.xz", marks=pytest.mark.slow)])
def test_sigkill_mid_file_resumes_after_the_last_committed_part(tmp_path: Path,
                                                                layout: str) -> None:
    """One big input merges part by part (PART_ROWS), each part committed with a
    checkpoint at the line it reaches: a real `phono ingest` SIGKILLed mid-file resumes
    there (it does not read the file from line 1 again), and the tables and rejects
    equal an uninterrupted one-part run's and the SQLite path's. The same for the
    release member of a .tar.xz dump."""
    # ~190 lines, ~10 parts of 20 (each part costs DuckDB ~0.3 s of CPU, and the test
    # merges the file two times over: 3000 tracks, ~19 parts each, took 15 s of CPU)
    good = _synth(tmp_path, 1500)
    plain = _malformed(tmp_path, good)  # rejects in the first part, a truncated last line
    lines = plain.read_bytes().splitlines(keepends=True)
    plain.write_bytes(b"".join(lines[:-1] + good.read_bytes().splitlines(keepends=True)[40:]
                               + lines[-1:]))
    if layout == ".zst":
        path = plain.with_name(plain.name + ".zst")
        path.write_bytes(pyzstd.compress(plain.read_bytes()))
    else:
        path = _dump(tmp_path, [("mbdump/release", plain.read_bytes())])
    total = len(plain.read_bytes().splitlines())
    row = Workspace.create(tmp_path / "sqlite")
    ingest(row, "musicbrainz", [path])
    whole = Workspace.create(tmp_path / "whole", engine="duckdb")
    columnar_ingest.ingest(whole, "musicbrainz", [path])  # one part
    # a plain progress line on stderr after every committed part; a part every 20 lines
    env = dict(os.environ, PHONO_PROGRESS="0", PHONO_PROGRESS_INTERVAL="0",
               **{mb_columnar.CHUNK_ENV: "20", mb_columnar.PART_ENV: "1"})
    parts, killed = tmp_path / "parts", tmp_path / "killed"
    for ws in (parts, killed):
        subprocess.run([*PHONO, "init", str(ws), "--engine", "duckdb"], check=True, env=env,
                       capture_output=True)
    uninterrupted = subprocess.run([*PHONO, "ingest", "musicbrainz", "-w", str(parts),
                                    str(path), "--json"], env=env, capture_output=True,
                                   text=True)
    read_all = json.loads(uninterrupted.stdout)["report"]["sources"][0]["read"]
    proc = subprocess.Popen([*PHONO, "ingest", "musicbrainz", "-w", str(killed), str(path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for _ in range(3):  # three parts committed: kill in the middle of the file
        proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, "ingest finished before it could be killed"
    con = bulk.open_bulk(killed)
    try:
        sources = con.execute("SELECT source FROM ingest_checkpoint").fetchall()
        assert len(sources) == 1
        cp = bulk.checkpoint(con, sources[0][0])
    finally:
        con.close()
    assert cp is not None and not cp.done and 60 <= cp.line < total, cp
    assert cp.line % 20 == 0 and 0 < cp.offset < len(plain.read_bytes())
    rerun = subprocess.run([*PHONO, "ingest", "musicbrainz", "-w", str(killed), str(path),
                            "--json"], env=env, capture_output=True, text=True)
    assert rerun.returncode == 10, rerun.stderr  # the truncated last line: a new refusal
    source = json.loads(rerun.stdout)["report"]["sources"][0]
    assert source["status"] == "resumed" and source["start_offset"] == cp.offset
    assert 0 < source["read"] < read_all  # the lines before were not read again
    got = columnar_tables(Workspace(killed))
    assert got == columnar_tables(Workspace(parts)) == columnar_tables(whole)
    assert got == sqlite_tables(row)


def test_parts_of_one_input_merge_as_the_sqlite_path_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One input whose later lines meet keys of earlier parts (the same releases again
    with other titles, then the first ones again): merged part by part (here every 5
    lines), every merge rule meets stored rows of earlier parts; the tables (ids
    included) equal the SQLite path's and one single-part merge's."""
    one = b"".join(_synth(tmp_path, 400, seed=s).read_bytes() for s in (7, 8, 7))
    path = tmp_path / "again.jsonl"
    path.write_bytes(one)
    single = Workspace.create(tmp_path / "single", engine="duckdb")
    columnar_ingest.ingest(single, "musicbrainz", [path])
    monkeypatch.setattr(mb_columnar, "CHUNK_LINES", 5)
    monkeypatch.setattr(mb_columnar, "PART_ROWS", 1)
    row, col = _both(tmp_path, [path])
    want, got = sqlite_tables(row), columnar_tables(col)
    assert want["track"]
    for table in want:
        assert got[table] == want[table], table
    assert got == columnar_tables(single)


def test_credit_lists_sharing_a_key_go_to_python_not_to_a_wrong_credit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credit lists are read once per key (a hash); lists that share a key with another
    (here: every list, by a constant key) are not given that other's credit: their lines
    go to the Python reader, and the tables still equal the SQLite path's."""

    monkeypatch.setattr(mb_columnar, "_CREDIT_KEY", "0::UBIGINT + 0 * len({0})")
    seen = _python_lines(monkeypatch)
    row, col = _both(tmp_path, [_synth(tmp_path, 300)])
    assert seen, "no line went to Python: the shared key was not exercised"
    want, got = sqlite_tables(row), columnar_tables(col)
    for table in want:
        assert got[table] == want[table], table


def test_progress_of_a_compressed_input_counts_its_bytes_on_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A .jsonl.zst read in parts reports after every part how many bytes of the file on
    disk it has read, up to the file's size (was: 0 bytes until the input ended, so an
    hour-long ingest of one big dump showed "0 MiB" all along)."""
    plain = _synth(tmp_path, 6000)
    path = plain.with_name(plain.name + ".zst")
    path.write_bytes(pyzstd.compress(plain.read_bytes()))
    size = path.stat().st_size
    monkeypatch.setenv(mb_columnar.CHUNK_ENV, "100")
    monkeypatch.setenv(mb_columnar.PART_ENV, "2000")
    monkeypatch.setattr(mb_columnar, "READ_BYTES", 64 << 10)
    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    events: list = []
    report = columnar_ingest.ingest(ws, "musicbrainz", [path], progress=events.append)
    assert report.sources[0].read > 0
    done = [e.done for e in events]
    assert {e.total for e in events} == {size}
    assert done == sorted(done) and done[-1] == size
    inside = {d for d in done if 0 < d < size}
    assert len(inside) >= 3, done  # the bar moves while the file is being read


def _reference_chunks(data: bytes, size: int, start: int = 0,
                      line: int = 0) -> list[tuple[bool, int, int, bytes, int]]:
    """The chunks as cutting one line at a time gives them: (has a file, first line,
    line count, bytes, uncompressed end)."""
    lines = list(mb_columnar._raw_lines(io.BytesIO(data[start:])))
    out, first, end = [], line + 1, start
    for i in range(0, len(lines), size):
        buf = lines[i:i + size]
        end += sum(map(len, buf))
        out.append((all(x.strip() for x in buf), first, len(buf), b"".join(buf), end))
        first += len(buf)
    return out


@pytest.mark.parametrize("seed", range(40))
def test_chunks_are_cut_as_line_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        seed: int) -> None:
    """The chunks are cut from blocks of bytes (no line split out and joined again), with
    the same lines, numbers, offsets and blank-line rule (DuckDB skips a line of only
    whitespace: such a chunk has no file) as cutting one line at a time, whatever the
    block size, line lengths, whitespace-only lines, stray \\r or missing final newline;
    and from a resume offset."""
    import random

    rnd = random.Random(seed)
    pieces = [rnd.choice([b"{}", b"x" * rnd.randrange(1, 40), b"", b" \t", b"\r", b"a\rb",
                          b"\x0b", b"\x85"]) for _ in range(rnd.randrange(1, 60))]
    data = b"\n".join(pieces) + rnd.choice([b"", b"\n", b"\n\n", b" "])
    size = rnd.randrange(1, 9)
    monkeypatch.setenv(mb_columnar.CHUNK_ENV, str(size))
    monkeypatch.setattr(mb_columnar, "READ_BYTES", rnd.randrange(1, 50))
    cut = rnd.choice([0] + [i + 1 for i, b in enumerate(data) if b == 10])
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    folder = tmp_path / "chunks"
    folder.mkdir()
    got = []
    for chunk in mb_columnar._chunks(path, folder, cut, data[:cut].count(b"\n")):
        block = chunk.data if chunk.file is None else chunk.file.read_bytes()
        assert chunk.file is None or chunk.data == b""  # not held twice
        assert b"".join(chunk.lines()) == block and len(chunk.lines()) == chunk.count
        got.append((chunk.file is not None, chunk.first, chunk.count, block, chunk.end))
        chunk.done()
    assert got == _reference_chunks(data, size, cut, data[:cut].count(b"\n"))
    assert not list(folder.iterdir())


@pytest.mark.parametrize("layout", ["jsonl", "tar.xz"])
def test_the_chunk_cutter_holds_a_block_not_a_piece(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    layout: str) -> None:
    """Each piece goes to its file as its lines are read: cutting pieces of 16 MB from
    blocks of 256 KiB, the cutter's Python memory peaks at a few blocks (and an archive's
    decompression buffers, ~8 MB), not at a piece (gathering a piece of a MusicBrainz
    dump, ~200 MB, and joining it took ~450 MiB beside DuckDB's memory limit). The pieces
    hold the input's bytes, in order."""
    import tracemalloc

    line = b'{"id": "x", "pad": "' + b"p" * 7976 + b'"}\n'  # 8,000 bytes
    lines = 2 * 2000 + 17
    monkeypatch.setenv(mb_columnar.CHUNK_ENV, "2000")
    monkeypatch.setattr(mb_columnar, "READ_BYTES", 256 << 10)
    if layout == "jsonl":
        path = tmp_path / "in.jsonl"
        path.write_bytes(line * lines)
        cut = mb_columnar._chunks(path, tmp_path / "chunks")
    else:
        path = _dump(tmp_path, [("mbdump/release", line * lines)])
        cut = mb_columnar._archive_chunks(path, tmp_path / "chunks")
    (tmp_path / "chunks").mkdir()
    counts = []
    peak = 0
    tracemalloc.start()
    try:
        for chunk in cut:  # the cutter runs here: its peak, then this test's checks
            peak = max(peak, tracemalloc.get_traced_memory()[1])
            assert chunk.file is not None
            assert chunk.file.read_bytes() == line * chunk.count
            counts.append((chunk.first, chunk.count))
            chunk.done()
            tracemalloc.reset_peak()
    finally:
        tracemalloc.stop()
    assert counts == [(1, 2000), (2001, 2000), (4001, 17)]
    assert peak < 12 << 20, f"{peak / 2**20:.1f} MiB"  # a piece is 16 MB


def test_the_chunk_cutter_runs_one_ahead_and_stops_with_its_caller(tmp_path: Path) -> None:
    """The next chunk is cut in a thread while the caller stages one, at most one ahead;
    a caller that stops (an error, a merge that fails) stops the cutter, whose files
    are removed."""
    import threading

    made: list[int] = []

    def chunks():
        for i in range(1, 100):
            file = tmp_path / f"chunk-{i}.jsonl"
            file.write_bytes(b"{}\n")
            made.append(i)
            yield mb_columnar._Chunk(file, i, b"{}\n", 1, i * 3, i * 3)

    ahead = mb_columnar._one_ahead(chunks())
    first = next(ahead)
    assert first.first == 1
    deadline = threading.Event()
    for _ in range(200):  # the cutter takes the second chunk while the first is staged
        if made == [1, 2]:
            break
        deadline.wait(0.01)
    assert made == [1, 2], made  # one ahead, no more
    first.done()
    ahead.close()  # the caller stops
    assert made == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "the chunk cut ahead is removed"


@pytest.mark.parametrize("where", ["memory", "file"])
@pytest.mark.parametrize("kind", ["musicbrainz", "mbdump"])
def test_the_staging_is_freed_before_the_transaction_that_commits_a_part(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, where: str) -> None:
    """DuckDB frees a table dropped inside a transaction only when it ends: the merge is
    worked out (``bulk_merge.prepare``) and the staging dropped before the runner opens
    the transaction that writes the part, or every staging table stays spilled in tmp/
    beside the merged ones until the commit (59.5 GB of tmp/ at a 35 M-recording mbdump).
    A part too big for memory gets its merged tables in a scratch file (compressed),
    removed after the commit (and one left by a killed run before the ingest starts):
    forced here for every part. The JSON input is cut into
    parts that meet the keys of earlier ones (the same releases again). Either way the
    tables are the SQLite path's."""
    if kind == "musicbrainz":
        path = tmp_path / "again.jsonl"
        path.write_bytes(b"".join(_synth(tmp_path, 150, seed=s).read_bytes() for s in (7, 8, 7)))
        monkeypatch.setattr(mb_columnar, "CHUNK_LINES", 20)
        monkeypatch.setattr(mb_columnar, "PART_ROWS", 1)
    else:
        path = DATA / "mbdump" / "isrc"
    if where == "file":
        monkeypatch.setattr(bulk_merge, "MERGED_BYTES_PER_ROW", 10**12)
    seen: list[tuple[set[str], set[str], list[str], int]] = []
    real = columnar_ingest.columnar.transaction

    @contextmanager
    def watched(con: Any) -> Iterator[None]:
        temps = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
        scratch = {r[0] for r in con.execute(
            f"SELECT table_name FROM duckdb_tables() WHERE database_name = "
            f"'{bulk_merge.SCRATCH}'").fetchall()}
        rows = 0
        if "m_track" in temps | scratch:
            where = f"{bulk_merge.SCRATCH}." if "m_track" in scratch else "temp."
            rows = con.execute(f"SELECT count(*) FROM {where}m_track").fetchone()[0]
        seen.append((temps, scratch, sorted(p.name for p in (col.root / "tmp").rglob("*")),
                     rows))
        with real(con):
            yield

    staged_in: list[set[str]] = []  # where the staging tables are when the merge starts
    prepare = bulk_merge.prepare

    def watched_prepare(con: Any, tmp: Path | None = None) -> bulk_merge.Plan:
        staged_in.append({r[0] for r in con.execute(
            "SELECT database_name FROM duckdb_tables() WHERE table_name = 'stg_track'"
        ).fetchall()})
        return prepare(con, tmp)

    monkeypatch.setattr(bulk_merge, "prepare", watched_prepare)
    col = Workspace.create(tmp_path / "columnar", engine="duckdb")
    left = col.root / "tmp" / "ingest" / bulk_merge.SCRATCH_FILE  # by a killed run
    left.parent.mkdir(parents=True, exist_ok=True)
    left.write_bytes(b"not a database")
    monkeypatch.setattr(columnar_ingest.columnar, "transaction", watched)
    columnar_ingest.ingest(col, kind, [path])
    monkeypatch.setattr(columnar_ingest.columnar, "transaction", real)
    # (a JSON file's last part can be empty: its lines ended with the part before)
    parts = [(t, s, f) for t, s, f, rows in seen if rows]
    assert len(parts) >= (3 if kind == "musicbrainz" else 1), seen
    for temps, scratch, files in parts:
        assert not {t for t in temps if t.startswith("stg_")}, temps
        assert ("m_track" in scratch) == (where == "file"), (temps, scratch)
        assert (bulk_merge.SCRATCH_FILE in files) == (where == "file"), files
    assert not list((col.root / "tmp").rglob(bulk_merge.SCRATCH_FILE))  # removed after
    # an mbdump big for memory stages its joined rows in the scratch file too (the JSON
    # reader stages chunk by chunk, always in memory)
    staged_file = kind == "mbdump" and where == "file"
    assert staged_in and all(s == ({bulk_merge.SCRATCH} if staged_file else {"temp"})
                             for s in staged_in), staged_in
    row = Workspace.create(tmp_path / "sqlite")
    ingest(row, kind, [path])
    want, got = sqlite_tables(row), columnar_tables(col)
    assert want["track"]
    for table in want:
        assert got[table] == want[table], table


def test_ingest_into_a_truncated_catalogue_duckdb_is_an_error_not_a_traceback(
        tmp_path: Path) -> None:
    """`phono ingest listens` into a columnar workspace whose catalogue.duckdb was cut
    short (DuckDB still opens it) ended in a traceback of DuckDB's IOException, exit 1:
    the source's checkpoint is read, and the listens resolved at the end, outside the
    merge that turned DuckDB errors into "DuckDB failed while ingesting ...", exit 5 (now
    exit 3, "not a readable DuckDB catalogue", the rule for a damaged catalogue)."""
    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    ingest(ws, "musicbrainz", [DEMO / "mbdump-sample.jsonl"])
    db = ws.root / "catalogue.duckdb"
    whole = db.read_bytes()
    for share in (0.2, 0.5, 0.8):
        db.write_bytes(whole[:int(len(whole) * share) // 4096 * 4096])
        out = CliRunner().invoke(main, ["ingest", "listens", str(DEMO.parent / "listens.csv"),
                                        "-w", str(ws.root)])
        # a damaged catalogue: exit 3 naming it, as the SQLite engine (tests/
        # test_damaged_catalogue.py); it was exit 2 or 5 by where the cut fell
        assert out.exit_code == 3, (share, out.output, out.exception)
        assert f"{db}: not a readable DuckDB catalogue" in out.output, (share, out.output)
