"""`phono ingest mbdump` on a columnar workspace: DuckDB reads the PostgreSQL COPY
tables itself and gives the SQLite path's tables and rejects, ids included, for every
odd line a dump can hold (escapes, NULLs, broken lines, bytes DuckDB reads otherwise,
text and numbers past the bounds, repeated ids, odd ISRCs), as a folder and as an
archive; lines and tables DuckDB does not read as the row reader does are counted."""

from __future__ import annotations

import io
import json
import lzma
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from phonotheque.columnar_ingest import mbdump as columnar_mbdump
from phonotheque.ingest import ingest
from phonotheque.sources.mbdump import TABLES
from phonotheque.workspace import Workspace
from tests.test_columnar_ingest import (
    PHONO,
    _same_counts,
    columnar_pair,
    columnar_tables,
    kill_after_first_input,
    linked_tar,
    sqlite_tables,
)

STAMP = "2026-11-30 12:00:00+00"


def _gid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


def _line(*fields: object) -> bytes:
    return "\t".join("\\N" if f is None else str(f) for f in fields).encode() + b"\n"


def _tables() -> dict[str, bytes]:
    """A small dump whose every table holds lines of each odd kind among plain ones."""
    long_name = "x" * 5000  # past bounds.MAX_TEXT: kept cut, with a reject
    wide = "é" * 3000  # 6,000 bytes but 3,000 characters: within the bound
    artist = [
        _line(1, _gid(1), "Plain Artist", "Artist, Plain", 1990, *[None] * 14),
        _line(2, _gid(2), "Tab\\tin name", "Back\\\\slash", 1990, *[None] * 14),
        _line(3, _gid(3), "Octal \\101 and hex \\x42", "\\\\N", 1990, *[None] * 14),
        _line(4, None, "No gid", None, *[None] * 15),
        _line(5, _gid(5), None, None, *[None] * 15),  # no name: ""
        _line(6, _gid(6), long_name, wide, *[None] * 15),
        _line(3, _gid(33), "Repeated id", "", *[None] * 15),
        b"7\tonly two columns\n",
        _line("seven", _gid(7), "A word for an id", None),
        _line("+8", _gid(8), "A plus sign", None),  # Python's int() reads it
        _line(" 9", _gid(9), "A space", None),
        _line("9" * 19, _gid(10), "Nineteen digits", None),
        _line("9" * 18, _gid(11), "Eighteen digits", None),
        b"\n",  # blank
        _line(12, _gid(12), "", "Empty name"),
        _line(None, _gid(15), "No id: first in id order", None),
        _line(13, _gid(13), "Unicode \u00e9\u4e2d\u266b", None),
        # escapes in a column the reader does not keep: one decodes to a byte that is not
        # UTF-8 (the row reader refuses the line), one to a letter
        _line(16, _gid(16), "Hex escape in a comment", None, 1990, *[None] * 9, "\\xff"),
        _line(17, _gid(17), "Octal escape in a comment", None, 1990, *[None] * 9, "\\101"),
        _line(14, _gid(14), "Last line, no newline", None).rstrip(b"\n"),
    ]
    credit = [_line(1, "Plain Artist", 1, 1, STAMP, 0, _gid(101)),
              _line(2, "Plain Artist & Tab", 2, 1, STAMP, 0, _gid(102)),
              _line(3, long_name, 1, 1, STAMP, 0, _gid(103)),
              _line(2, "A repeated credit id", 1, 1, STAMP, 0, _gid(104)),
              _line(4, "Three, out of order", 3, 1, STAMP, 0, _gid(105))]
    credit_name = [_line(1, 0, 1, "Plain", ""), _line(2, 1, 2, "Tab", ""),
                   _line(2, 0, 1, "Plain", " & "), _line(3, 0, 6, "Long", ""),
                   _line(4, 2, 13, "c", ""), _line(4, 0, 12, "a", ""),
                   _line(4, 1, 5, "b", ""), _line(4, None, 4, "no gid", ""),
                   _line(4, 1, 14, "tie", "")]
    release = [_line(1, _gid(201), "First Release", 1, 1, 1, None, 120, 28, "0123456789012",
                     "", 0, -1, STAMP),
               _line(2, _gid(202), "Second\\nLine", 2, 2, 1, None, 120, 28, "", "", 0, -1, STAMP),
               _line(3, _gid(203), long_name, 3, 3, 1, None, 120, 28, None, "", 0, -1, STAMP),
               _line(4, None, "No gid release", 1, 4, 1, None, 120, 28, None, "", 0, -1, STAMP),
               _line(5, _gid(205), "Repeated credit", 2, 5, 1, None, 120, 28, "x" * 4100, "", 0,
                     -1, STAMP),
               b"6\tbroken\n"]
    medium = [_line(1, 1, 1, 1, "", 0, STAMP, 3), _line(2, 1, 2, 1, "", 0, STAMP, 1),
              _line(3, 2, None, 1, "", 0, STAMP, 2), _line(4, 3, 100000, 1, "", 0, STAMP, 1),
              _line(5, 5, -1, 1, "", 0, STAMP, 1), _line(6, 4, 1, 1, "", 0, STAMP, 1)]
    track = [
        _line(1, _gid(401), 1, 1, 1, "1", "t", 1, 200000, 0, STAMP, "f"),
        _line(2, _gid(402), 2, 1, 2, "2", "t", 2, None, 0, STAMP, "f"),
        _line(3, _gid(403), 3, 1, 3, "3", "t", 1, 180000, 0, STAMP, "f"),
        _line(4, _gid(404), 1, 2, 1, "1", "t", 1, 100, 0, STAMP, "f"),  # also on disc 2
        _line(5, _gid(405), 4, 3, None, "1", "t", 3, 150000, 0, STAMP, "f"),
        _line(6, _gid(406), 4, 3, 2, "2", "t", 3, 150000, 0, STAMP, "f"),
        _line(7, _gid(407), 5, 4, 100000, "1", "t", 1, 0, 0, STAMP, "f"),
        _line(8, _gid(408), 6, 5, 1, "1", "t", 1, 3_000_000_000, 0, STAMP, "f"),
        _line(9, _gid(409), 7, 6, 1, "1", "t", 1, 1, 0, STAMP, "f"),
        _line(10, _gid(410), 8, 1, 4, "4", "t", 1, -5, 0, STAMP, "f"),
        _line(11, _gid(411), 2, 99, 1, "1", "on no medium", 1, 1, 0, STAMP, "f"),
        _line(12, _gid(412), 9, None, 1, "1", "t", 1, 1, 0, STAMP, "f"),
        _line(13, _gid(413), 12, 1, 123456, "1", "t", 1, 1, 0, STAMP, "f"),
        # on two releases, the one with the higher id first in the file
        _line(14, _gid(414), 13, 6, 1, "1", "t", 1, 1, 0, STAMP, "f"),
        _line(15, _gid(415), 13, 3, 3, "3", "t", 1, 1, 0, STAMP, "f"),
    ]
    recording = [
        _line(1, _gid(301), "Placed twice", 1, 210000, "", 0, STAMP, "f"),
        _line(2, _gid(302), "No length\\\\", 2, None, "", 0, STAMP, "f"),
        _line(3, _gid(303), long_name, 3, 3_000_000_000, "", 0, STAMP, "f"),
        _line(4, _gid(304), "No medium position", 4, 0, "", 0, STAMP, "f"),
        _line(5, _gid(305), "Position too big", 1, None, "", 0, STAMP, "f"),
        _line(6, _gid(306), "Disc negative", 99, None, "", 0, STAMP, "f"),
        _line(7, _gid(307), wide, 1, -1, "", 0, STAMP, "f"),
        _line(8, _gid(308), "Negative track length", None, None, "", 0, STAMP, "f"),
        _line(9, None, "No gid", 1, 1, "", 0, STAMP, "f"),
        _line(1, _gid(310), "Repeated id", 2, 1, "", 0, STAMP, "f"),
        _line(10, _gid(311), "Unplaced", 1, 1, "", 0, STAMP, "f"),
        _line(11, _gid(312), None, 4, 1, "", 0, STAMP, "f"),
        _line("x", _gid(313), "bad id", 1, 1, "", 0, STAMP, "f"),
        _line(None, _gid(314), "No id", 1, 1, "", 0, STAMP, "f"),
        _line(12, _gid(315), "Only its position too big", 1, None, "", 0, STAMP, "f"),
        _line(13, _gid(316), "On two releases", 1, None, "", 0, STAMP, "f"),
    ]
    isrc = [_line(1, 1, "GBAAA0000001", None, 0, STAMP),
            _line(2, 1, "usbbb0000002", None, 0, STAMP),  # normalised by isrc.parse
            _line(3, 2, "FR-CCC-00-00003", None, 0, STAMP),
            _line(4, 3, "TOO-SHORT", None, 0, STAMP),  # a reject
            _line(5, 4, None, None, 0, STAMP),
            _line(6, 9, "GBAAA0000006", None, 0, STAMP),  # recording without gid
            _line(7, 10, "ZZAAA0000007", None, 0, STAMP),  # unknown country
            _line(8, 99, "GBAAA0000008", None, 0, STAMP),  # no such recording
            _line(9, 1, "GBAAA0000001", None, 0, STAMP)]  # the same ISRC again
    return {"artist": b"".join(artist), "artist_credit": b"".join(credit),
            "artist_credit_name": b"".join(credit_name), "release": b"".join(release),
            "medium": b"".join(medium), "track": b"".join(track),
            "recording": b"".join(recording), "isrc": b"".join(isrc)}


def _folder(tmp_path: Path, tables: dict[str, bytes]) -> Path:
    root = tmp_path / "dump"
    (root / "mbdump").mkdir(parents=True)
    for name, data in tables.items():
        (root / "mbdump" / name).write_bytes(data)
    (root / "TIMESTAMP").write_text(STAMP)
    return root


def _archive(tmp_path: Path, tables: dict[str, bytes], cut: int | None = None, *,
             compress: Callable[[bytes], bytes] = lambda tar: lzma.compress(tar, preset=0),
             filename: str = "mbdump.tar.xz") -> Path:
    """The tables (and a TIMESTAMP) as a compressed dump archive, cut after ``cut`` bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in [("TIMESTAMP", STAMP.encode()), *tables.items()]:
            info = tarfile.TarInfo(f"mbdump/{name}" if name in TABLES else name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = compress(buf.getvalue())
    path = tmp_path / filename
    path.write_bytes(data if cut is None else data[:cut])
    return path


def _compare(tmp_path: Path, source: Path) -> dict[str, list[tuple]]:
    row = Workspace.create(tmp_path / "sqlite")
    col = Workspace.create(tmp_path / "columnar", engine="duckdb")
    a = ingest(row, "mbdump", [source])
    b = ingest(col, "mbdump", [source])  # dispatches on the engine
    assert (a.rejected, a.values_dropped, a.new_rejects) == (
        b.rejected, b.values_dropped, b.new_rejects)
    _same_counts(a, b)
    want, got = sqlite_tables(row), columnar_tables(col)
    for table in want:
        assert got[table] == want[table], table
    return got


class Watch:
    """Counts what the reader sends to Python: whole tables and single lines."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tables: list[str] = []
        self.lines: dict[str, int] = {}
        self.windows: list[str] = []  # the kinds numbered by a window, not by their ids
        python_table, insert = columnar_mbdump._python_table, columnar_mbdump._insert
        seq = columnar_mbdump._seq

        def watch_seq(con, kind, table, alias, *, once):  # type: ignore[no-untyped-def]
            sql = seq(con, kind, table, alias, once=once)
            if "OVER" in sql:
                self.windows.append(table)
            return sql

        def watch_table(con, item, table, path, rejects):  # type: ignore[no-untyped-def]
            self.tables.append(table)
            return python_table(con, item, table, path, rejects)

        def watch_insert(con, table, numbered, item, rejects):  # type: ignore[no-untyped-def]
            numbered = list(numbered)
            self.lines[table] = self.lines.get(table, 0) + len(numbered)
            return insert(con, table, iter(numbered), item, rejects)

        monkeypatch.setattr(columnar_mbdump, "_python_table", watch_table)
        monkeypatch.setattr(columnar_mbdump, "_insert", watch_insert)
        monkeypatch.setattr(columnar_mbdump, "_seq", watch_seq)


def test_odd_lines_give_the_sqlite_paths_tables_and_rejects(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    watch = Watch(monkeypatch)
    got = _compare(tmp_path, _folder(tmp_path, _tables()))
    assert len(got["track"]) == 14 and len(got["track_isrc"]) == 6
    reasons = " | ".join(r[3] for r in got["reject"])
    for why in ("expected at least 4 tab-separated columns", "not a number",
                "number out of range", "characters, kept the first", "invalid ISRC",
                "duration (ms): 3000000000 out of range", "disc number: 100000 out of range",
                "track position: 123456 out of range"):
        assert why in reasons, why
    # Every table was read by DuckDB; only the odd lines went to Python, one by one.
    assert watch.tables == []
    assert watch.lines == {"artist": 10, "recording": 2, "release": 2}
    # Repeated and missing ids: each kind numbered by a window over (id, line).
    assert watch.windows == ["artist", "release", "recording"]


def test_distinct_ids_number_the_rows_by_id(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A dump as MusicBrainz writes it (every id once): the same tables without a window."""
    tables = _tables()
    for name in ("artist", "artist_credit", "recording"):
        tables[name] = b"".join(
            line for line in tables[name].splitlines(keepends=True)
            if b"Repeated" not in line and b"repeated" not in line and b"Eighteen" not in line
            and not line.startswith(b"\\N\t"))
    watch = Watch(monkeypatch)
    got = _compare(tmp_path, _folder(tmp_path, tables))
    assert watch.windows == [] and len(got["track"]) == 12


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_recording_is_placed_on_its_first_release_as_the_row_reader_does(
        tmp_path: Path, seed: int) -> None:
    """Recordings on many tracks: on several releases, on one release several times (on
    two discs, twice on a disc, with and without positions), releases and media listed
    out of id order, repeated release ids. The release, disc and position each track
    gets are the row reader's (the lowest release id, then disc and position, NULLs
    first, then the lines)."""
    import random

    rng = random.Random(seed)
    releases = list(range(1, 41)) + [rng.randint(1, 40) for _ in range(3)]  # repeated ids
    rng.shuffle(releases)
    release = [_line(rid, _gid(200 + n), f"Release {n}", 1, n, 1, None, 120, 28, "", "", 0,
                     -1, STAMP) for n, rid in enumerate(releases)]
    medium, media = [], []
    for mid in range(1, 121):
        rid = rng.randint(1, 40)
        disc = rng.choice([None, 1, 1, 2, 3])
        media.append(mid)
        medium.append(_line(mid, rid, disc, 1, "", 0, STAMP, 3))
    rng.shuffle(medium)
    recordings = 150
    recording = [_line(n, _gid(300 + n), f"Recording {n}", 1, None, "", 0, STAMP, "f")
                 for n in range(1, recordings + 1)]
    track = []
    for tid in range(1, 601):
        rec = rng.randint(1, recordings) if rng.random() < 0.8 else rng.randint(1, 10)
        pos = rng.choice([None, 1, 2, 2, 3, 7])
        track.append(_line(tid, _gid(4000 + tid), rec, rng.choice(media), pos, str(pos), "t",
                           1, rng.choice([None, 1000 * tid]), 0, STAMP, "f"))
    rng.shuffle(track)
    tables = _tables()
    tables.update(release=b"".join(release), medium=b"".join(medium),
                  track=b"".join(track), recording=b"".join(recording))
    got = _compare(tmp_path, _folder(tmp_path, tables))
    placed = [t for t in got["track"] if any(v is not None for v in t[-4:])]
    assert len(got["track"]) == recordings and len(placed) > recordings // 2


@pytest.mark.parametrize("odd", ["crlf", "invalid utf-8", "bom", "x01", "nul"])
def test_a_table_duckdb_reads_otherwise_is_read_by_python(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, odd: str) -> None:
    tables = _tables()
    rec = tables["recording"].splitlines(keepends=True)
    if odd == "crlf":
        rec = [r.replace(b"\n", b"\r\n") for r in rec]
    elif odd == "invalid utf-8":
        rec[1] = rec[1].replace(b"No length", b"No \xff length")
    elif odd == "bom":
        rec[0] = b"\xef\xbb\xbf" + rec[0]
    elif odd == "x01":
        rec[1] = rec[1].replace(b"No length", b"No \x01 length")
    else:
        rec[1] = rec[1].replace(b"No length", b"No \x00 length")
    tables["recording"] = b"".join(rec)
    watch = Watch(monkeypatch)
    _compare(tmp_path, _folder(tmp_path, tables))
    assert watch.tables == ["recording"]


def test_a_folder_whose_path_is_not_utf8_is_read_by_python(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dump folder whose name holds a byte that is not UTF-8 (any byte but / and NUL
    may be in a Linux file name): its path cannot be put in DuckDB's SQL, so every table
    is parsed by the row reader's parser, with the SQLite path's tables and rejects."""
    source = _folder(tmp_path, _tables()).rename(tmp_path / os.fsdecode(b"dump-\xff"))
    watch = Watch(monkeypatch)
    got = _compare(tmp_path, source)
    assert len(got["track"]) == 14
    assert watch.tables == list(TABLES)


def test_an_archive_gives_the_same_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    tables = _tables()
    tables["medium"] = b""  # an empty table: COPY writes a zero-byte file
    del tables["isrc"]  # and one that is missing
    watch = Watch(monkeypatch)
    got = _compare(tmp_path, _archive(tmp_path, tables))
    assert got["track"] and not got["track_isrc"]
    assert watch.tables == []
    assert {r[2].split(":")[0] for r in got["reject"]} >= {"mbdump/artist", "mbdump/release"}


def test_a_broken_archive_is_read_by_the_row_reader(tmp_path: Path) -> None:
    tables = _tables()
    tables["track"] = tables["track"] * 2000  # so the cut lands inside the archive's data
    whole = _archive(tmp_path, tables).read_bytes()
    path = _archive(tmp_path, tables, cut=len(whole) * 3 // 4)
    got = _compare(tmp_path, path)
    assert any("truncated or corrupt archive" in r[3] for r in got["reject"])


@pytest.mark.parametrize("layout", ["dump/", "", "none"])
def test_an_archive_without_dump_tables_is_a_reject(tmp_path: Path, layout: str) -> None:
    """The tables packed under another folder (or at the top), or no table at all (a
    MusicBrainz archive of another kind): both engines read it whole, found nothing and
    exited 0, as if the dump were empty. Now it is a reject naming the archive and what
    was expected (exit 10), on both engines."""
    buf = io.BytesIO()
    members = {"TIMESTAMP": STAMP.encode()}
    if layout != "none":
        members |= {layout + name: data for name, data in _tables().items()}
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "mbdump-derived.tar.xz"
    path.write_bytes(lzma.compress(buf.getvalue(), preset=0))
    got = _compare(tmp_path, path)
    assert got["track"] == []
    assert [(r[2], r[3]) for r in got["reject"]] == [
        ("archive", "no MusicBrainz dump table in it (members named mbdump/<table>: "
                    + ", ".join(TABLES) + ")")]


_OUT = ("outside the archive: not followed, its table is not read")


@pytest.mark.parametrize(("links", "reasons"), [
    # tar -h was not used: mbdump/track a symbolic link to a file after it, or before it
    ([("mbdump/track", "sym", "track.real"), ("mbdump/track.real", "file", None)], []),
    ([("mbdump/track.real", "file", None), ("mbdump/track", "sym", "./track.real")], []),
    # a hard link (tar writes the first name as the file), and a chain of two links
    ([("data/track", "file", None), ("mbdump/track", "hard", "data/track")], []),
    ([("mbdump/track", "sym", "../data/t"), ("data/t", "hard", "data/track"),
      ("data/track", "file", None)], []),
    # two tables naming one file: both read (each table its own copy of the lines)
    ([("data/track", "file", None), ("mbdump/track", "hard", "data/track"),
      ("mbdump/medium", "sym", "../data/track")], []),
    # never followed out of the archive; not in it; a loop; a folder
    ([("mbdump/track", "sym", "../../track")], ["a symbolic link to ../../track, " + _OUT]),
    ([("mbdump/track", "sym", "/etc/passwd")], ["a symbolic link to /etc/passwd, " + _OUT]),
    ([("mbdump/track", "hard", "mbdump/gone")],
     ["a hard link to mbdump/gone, which is not a file in the archive: its table is not "
      "read"]),
    ([("mbdump/track", "sym", "t2"), ("mbdump/t2", "sym", "track")],
     ["a symbolic link to t2: a loop of links, its table is not read"]),
    ([("mbdump/track", "dir", "")],
     ["not a file (a folder, device or pipe): its table is not read"]),
])
def test_an_archive_table_that_is_a_link_is_read_or_a_reject(
        tmp_path: Path, links: list[tuple[str, str, str | None]], reasons: list[str]) -> None:
    """A dump archive whose ``mbdump/track`` member is a link (packed from a folder
    where the table was a link) or not a file: both engines skipped it, exit 0 with
    every recording unplaced and no reject. Now a link to a file of the archive is read
    as that file (a second pass over the archive), and one leading outside it (never
    followed), to nothing, or in a loop, is a reject naming the archive and the member
    (exit 10), on both engines."""
    tables = _tables()
    members = [("TIMESTAMP", "file", STAMP.encode())]
    members += [(f"mbdump/{t}", "file", data) for t, data in tables.items()
                if t != "track" and not any(name == f"mbdump/{t}" for name, _, _ in links)]
    members += [(name, kind, tables["track"] if data is None else data)
                for name, kind, data in links]
    path = linked_tar(tmp_path / "mbdump-linked.tar.xz", members)  # type: ignore[arg-type]
    want = _compare(tmp_path / "plain", _folder(tmp_path, tables))
    got = _compare(tmp_path, path)
    ours = [r for r in got["reject"] if ":" not in r[2]]  # not a line's
    assert [(r[1], r[2], r[3]) for r in ours] == [
        (str(path), "mbdump/track", reason) for reason in reasons]
    placed = [(t[1], t[5:8]) for t in got["track"]]  # key, release_id, disc, position
    if reasons:
        assert got["track"] and all(p == (None, None, None) for _, p in placed)
    elif any(name == "mbdump/medium" for name, _, _ in links):  # the track lines, refused
        assert any(r[2].startswith("mbdump/medium:line ") for r in got["reject"])
    else:
        assert placed == [(t[1], t[5:8]) for t in want["track"]]
        assert sum(p != (None, None, None) for _, p in placed) > 5


@pytest.mark.parametrize(("odd", "reason"), [
    ("link", None),  # a symbolic link to a file of the user's: read as that file
    ("broken", "a symbolic link to gone, which names no file: its table is not read"),
    ("loop", "a symbolic link to track: a loop of links, its table is not read"),
    ("folder", "not a file (a folder, device or pipe): its table is not read"),
    ("fifo", "not a file (a folder, device or pipe): its table is not read"),
])
@pytest.mark.parametrize("given", ["root", "mbdump"])
def test_a_folder_table_that_is_not_a_file_is_read_or_a_reject(
        tmp_path: Path, odd: str, reason: str | None, given: str) -> None:
    """An unpacked dump whose ``mbdump/track`` is a broken symbolic link, a loop of
    links, a folder or a pipe: both engines' ``is_file()`` skipped it, exit 0 with every
    recording unplaced and no reject. Now it is a reject naming the folder and the
    table's path in it (exit 10), on both engines; a link to a file is read."""
    tables = _tables()
    want = _compare(tmp_path / "plain", _folder(tmp_path / "plain", tables))
    root = _folder(tmp_path, tables)
    track = root / "mbdump" / "track"
    track.unlink()
    if odd == "link":
        (root / "track.real").write_bytes(tables["track"])
        track.symlink_to("../track.real")
    elif odd == "broken":
        track.symlink_to("gone")
    elif odd == "loop":
        track.symlink_to("track")
    elif odd == "folder":
        track.mkdir()
    else:
        os.mkfifo(track)  # opening it would wait for a writer for ever
    source = root if given == "root" else root / "mbdump"
    got = _compare(tmp_path, source)
    ours = [r for r in got["reject"] if ":" not in r[2]]  # not a line's
    shown = "mbdump/track" if given == "root" else "track"
    assert [(r[1], r[2], r[3]) for r in ours] == (
        [] if reason is None else [(str(source), shown, reason)])
    placed = [(t[1], t[5:8]) for t in got["track"]]  # key, release_id, disc, position
    if reason is None:
        assert placed == [(t[1], t[5:8]) for t in want["track"]]
    else:
        assert got["track"] and all(p == (None, None, None) for _, p in placed)


def test_a_rerun_changes_nothing(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    source = _folder(tmp_path, _tables())
    first = ingest(ws, "mbdump", [source])
    before = columnar_tables(ws)
    again = ingest(ws, "mbdump", [source])
    assert again.sources[0].status == "skipped"
    forced = ingest(ws, "mbdump", [source], options=_force())
    assert forced.added == 0 and forced.new_rejects == 0 and first.added > 0
    assert columnar_tables(ws) == before


def _force():  # type: ignore[no-untyped-def]
    from phonotheque.ingest import IngestOptions
    return IngestOptions(force=True)


def test_sigkill_between_dumps_then_rerun_matches_uninterrupted(tmp_path: Path) -> None:
    """A real `phono ingest mbdump` SIGKILLed after its first dump committed: the re-run
    skips that one, reads the others whole, and the tables and rejects equal an
    uninterrupted run's."""
    data = Path(__file__).parent / "data" / "mbdump"
    paths = [_folder(tmp_path, _tables()), data / "webservice", data / "isrc"]
    env = dict(os.environ, PHONO_PROGRESS="0", PHONO_PROGRESS_INTERVAL="0")
    whole, killed = columnar_pair(tmp_path, env)
    subprocess.run([*PHONO, "ingest", "mbdump", "-w", str(whole), *map(str, paths)],
                   env=env, capture_output=True)
    kill_after_first_input([*PHONO, "ingest", "mbdump", "-w", str(killed), *map(str, paths)],
                           env)
    rerun = subprocess.run([*PHONO, "ingest", "mbdump", "-w", str(killed), *map(str, paths),
                            "--json"], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr  # the rejects were recorded by the first run
    statuses = [s["status"] for s in json.loads(rerun.stdout)["report"]["sources"]]
    assert statuses[0] == "skipped" and statuses[1:] != ["skipped", "skipped"], statuses
    assert columnar_tables(Workspace(killed)) == columnar_tables(Workspace(whole))


@pytest.mark.parametrize("shape", ["folder", "archive"])
def test_progress_names_each_step_of_the_one_part(tmp_path: Path, shape: str) -> None:
    """A dump is one part, committed at its end (minutes at 10 M recordings): progress
    says which table is loaded, then the joins and the merge, with the bytes of the input
    read so far (never past its size, never going back)."""
    from phonotheque import columnar_ingest
    from phonotheque.progress import ProgressEvent

    source = _folder(tmp_path, _tables()) if shape == "folder" else _archive(tmp_path, _tables())
    events: list[ProgressEvent] = []
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    columnar_ingest.ingest(ws, "mbdump", [source], progress=events.append)
    name = str(source)
    steps = [e.message.removeprefix(f"{name}: ") for e in events if e.message != name]
    # a folder's tables in the row reader's order, an archive's in the archive's
    assert sorted(steps[:-2]) == sorted(f"table {t} loaded" for t in TABLES)
    assert steps[-2:] == ["joining the tables", "merging into the catalogue"]
    done = [e.done for e in events]
    assert done == sorted(done) and done[-1] == events[-1].total
    assert all(e.done <= (e.total or 0) for e in events)
    assert 0 < events[0].done  # the first table's bytes (a tiny archive is read at once)
    if shape == "folder":
        assert events[0].done == len(_tables()["artist"])
