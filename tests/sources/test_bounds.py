"""Hostile sizes at ingest: numbers past 64 bits, huge text, overlong lines, bad UTF-8.

Each bad value becomes a reject naming where, what and why; the rest of the
record (or file) is kept and the rest of the batch is written (issue 12 §1, §2).
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from mutagen.flac import FLAC

from phonotheque.cli import main
from phonotheque.ingest import ingest
from phonotheque.select import SelectOptions, select
from phonotheque.sources import _base, bounds
from phonotheque.stats import catalogue_stats
from phonotheque.workspace import Workspace

REC = "00000000-0000-4000-8000-0000000000{:02d}"


def _rejects(ws: Workspace) -> dict[tuple[str, str], str]:
    """(file name, locator) -> reason; several reasons at one place joined by `` | ``."""
    out: dict[tuple[str, str], list[str]] = {}
    with ws.store(readonly=True) as s:
        for r in s.rejects():
            out.setdefault((Path(r.source).name, r.locator), []).append(r.reason)
    return {k: " | ".join(sorted(v)) for k, v in out.items()}


# -- tags ----------------------------------------------------------------------


def _flac(data: Path, folder: Path, name: str, **tags: str) -> Path:
    path = folder / name
    shutil.copy(data / "beets/full.flac", path)
    f = FLAC(path)
    assert f.tags is not None
    del f.tags["musicbrainz_trackid"]  # each file its own track
    del f.tags["musicbrainz_albumid"]  # and its release named by its own album tag
    for k, v in tags.items():
        f.tags[k] = v
    f.save()
    return path


def test_oversized_tag_numbers_and_text_are_rejects_and_files_kept(
    ws: Workspace, data: Path, tmp_path: Path
) -> None:
    music = tmp_path / "music"
    music.mkdir()
    _flac(data, music, "a.flac", tracknumber="9223372036854775808")
    _flac(data, music, "b.flac", discnumber="1" * 23)
    _flac(data, music, "c.flac", tracknumber="7" * 5000)
    _flac(data, music, "d.flac", title="T" * (bounds.MAX_TEXT + 10), album="A" * 100_000)
    # Invalid UTF-8 inside a Vorbis comment: write a placeholder, then swap the bytes.
    e = _flac(data, music, "e.flac", title="caf#BAD#")
    raw = e.read_bytes()
    e.write_bytes(raw.replace(b"#BAD#", b"\xff\xfe\xc3(\x80"))
    report = ingest(ws, "tags", [music])

    why = _rejects(ws)
    assert why[("a.flac", "tag track number")] == (
        "tag track number: a 19-digit number is out of range")
    assert why[("b.flac", "tag disc number")] == (
        "tag disc number: a 23-digit number is out of range")
    assert why[("c.flac", "tag track number")] == (
        "tag track number: a 5,000-digit number is out of range")
    assert why[("d.flac", "tags")] == (
        f"release title: 100,000 characters, kept the first {bounds.MAX_TEXT:,} | "
        f"track title: {bounds.MAX_TEXT + 10:,} characters, kept the first {bounds.MAX_TEXT:,}")
    assert why[("e.flac", "tag title")] == "tag title: not valid UTF-8 (bad bytes stored as U+FFFD)"
    with ws.store(readonly=True) as s:
        rows = {Path(r["path"]).name: r for r in s.query(
            "SELECT a.path, t.title, t.disc, t.position FROM source_audio a "
            "JOIN track t ON t.id = a.track_id")}
        longest = s.scalar("SELECT max(length(title)) FROM release")
    # every file is attached; only the bad value is missing
    assert sorted(rows) == ["a.flac", "b.flac", "c.flac", "d.flac", "e.flac"]
    assert (rows["a.flac"]["position"], rows["a.flac"]["disc"]) == (None, 4)
    assert (rows["b.flac"]["position"], rows["b.flac"]["disc"]) == (2, None)
    assert rows["c.flac"]["position"] is None
    assert rows["d.flac"]["title"] == "T" * bounds.MAX_TEXT
    assert longest == bounds.MAX_TEXT
    assert rows["e.flac"]["title"].startswith("caf\ufffd")
    assert report.rejected + report.values_dropped == len(why) + 1
    assert report.rejected == 0  # every file was kept: nothing refused, exit 0
    # a re-run reads nothing again and adds nothing twice
    again = ingest(ws, "tags", [music])
    assert again.added == 0 and again.rejected == 0


# -- MusicBrainz JSON ------------------------------------------------------------


def test_musicbrainz_oversized_length_and_bad_position(
    ws: Workspace, data: Path, tmp_path: Path
) -> None:
    release = json.loads((data / "picard/ws_data/release.json").read_text())
    release["media"][0]["tracks"][1]["position"] = {}
    release["media"][0]["tracks"][2]["position"] = 2**64 - 1
    rec = {"id": REC.format(1), "title": "Long", "length": 1e30}
    rec2 = {"id": REC.format(2), "title": "Fine", "length": 1000}
    path = tmp_path / "dump.jsonl"
    path.write_bytes(b"".join(json.dumps(o).encode() + b"\n" for o in (release, rec, rec2)))
    report = ingest(ws, "musicbrainz", [path])
    why = _rejects(ws)
    assert why[("dump.jsonl", "line 2")] == (
        f"recording {REC.format(1)}: duration (ms): "
        "1000000000000000019884624838656 out of range (0 to 2,147,483,647)")
    line1 = why[("dump.jsonl", "line 1")].split(" | ")
    assert len(line1) == 2
    assert line1[0].endswith("track position: 18446744073709551615 out of range (0 to 99,999)")
    assert line1[1].endswith("track position: not a whole number ({})")
    with ws.store(readonly=True) as s:
        assert s.scalar("SELECT duration_ms FROM track WHERE mbid = ?", (REC.format(1),)) is None
        assert s.scalar("SELECT duration_ms FROM track WHERE mbid = ?", (REC.format(2),)) == 1000
        tracks = s.scalar("SELECT count(*) FROM track WHERE release_id IS NOT NULL")
        nulls = s.scalar("SELECT count(*) FROM track WHERE release_id IS NOT NULL "
                         "AND position IS NULL")
    assert tracks == len(release["media"][0]["tracks"]) and nulls == 2
    assert report.rejected + report.values_dropped == 3


def _tar_xz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:xz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def test_overlong_archive_line_is_rejected_and_reading_goes_on(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_base, "MAX_LINE", 1 << 20)
    lines = [json.dumps({"id": REC.format(i), "title": f"t{i}", "length": 1}).encode() + b"\n"
             for i in range(3)]
    long_line = b'{"id": "' + b"x" * (3 << 20) + b'"}\n'
    archive = _tar_xz(tmp_path / "dump.tar.xz",
                      {"mbdump/recording": lines[0] + long_line + lines[1] + lines[2]})
    report = ingest(ws, "musicbrainz", [archive])
    why = _rejects(ws)
    assert why == {("dump.tar.xz", "mbdump/recording:line 2"):
                   f"line of {len(long_line):,} bytes is longer than the limit of 1,048,576 bytes"}
    with ws.store(readonly=True) as s:
        assert s.scalar("SELECT count(*) FROM track") == 3
    assert report.rejected + report.values_dropped == 1
    # the same in a plain JSON Lines file
    plain = tmp_path / "dump.jsonl"
    plain.write_bytes(lines[0] + long_line + lines[1])
    assert ingest(ws, "musicbrainz", [plain]).rejected == 1
    assert _rejects(ws)[("dump.jsonl", "line 2")].startswith(f"line of {len(long_line):,} bytes")


def test_mbdump_number_past_64_bits_is_a_reject(ws: Workspace, data: Path,
                                                tmp_path: Path) -> None:
    dump = tmp_path / "mbdump"
    shutil.copytree(data / "mbdump/webservice", dump)
    rec = dump / "mbdump/recording"
    first = rec.read_bytes().splitlines(keepends=True)[0]
    fields = first.split(b"\t")
    fields[0] = b"99999999999999999999999"
    rec.write_bytes(rec.read_bytes() + b"\t".join(fields))
    report = ingest(ws, "mbdump", [dump])
    assert any(v == "number out of range (23 digits)" for v in _rejects(ws).values())
    assert report.added > 0


# -- listens -----------------------------------------------------------------


def _listens(ws: Workspace) -> dict[str, int]:
    with ws.store(readonly=True) as s:
        return {r["key"]: r["count"] for r in s.query("SELECT key, count FROM listens")}


def test_listen_counts_past_the_bound_are_rejects(ws: Workspace, tmp_path: Path) -> None:
    csv = tmp_path / "plays.csv"
    csv.write_text("isrc,count\nGBAHS1400099,123456789012345678901234\nUSRO20707501,3\n"
                   f"FRZ039800212,{'9' * 5000}\n")
    doc = tmp_path / "top.json"
    doc.write_text(json.dumps([
        {"recording_mbid": REC.format(1), "listen_count": 7},
        {"recording_mbid": REC.format(2), "listen_count": 1e30},
        {"recording_mbid": REC.format(3), "listen_count": 2**62},
        {"recording_mbid": REC.format(3), "listen_count": 2**62},
        {"recording_mbid": REC.format(4), "listen_count": 9, "total_user_count": 10**40},
    ]))
    report = ingest(ws, "listens", [csv, doc])
    why = _rejects(ws)
    assert why[("plays.csv", "row 1")] == (
        "listen count: 123456789012345678901234 out of range (0 to 1,000,000,000,000)")
    assert why[("plays.csv", "row 3")] == "listen count of 5,000 digits is out of range"
    assert why[("top.json", "document item 2")] == (
        "listen count: 1000000000000000019884624838656 out of range (0 to 1,000,000,000,000)")
    assert why[("top.json", "document item 3")] == (
        f"listen count: {2**63} out of range (0 to 1,000,000,000,000)")
    assert why[("top.json", "document item 5")].startswith("user count: 1000000000000000")
    assert _listens(ws) == {"USRO20707501": 3, REC.format(1): 7, REC.format(4): 9}
    assert report.rejected + report.values_dropped == 5


def test_csv_with_a_duplicate_count_column_is_a_reject(ws: Workspace, tmp_path: Path) -> None:
    csv = tmp_path / "dup.csv"
    csv.write_text("isrc,count,count\nGBAHS1400099,1,2\n")
    fine = tmp_path / "fine.csv"
    fine.write_text("isrc,count,x,x\nGBAHS1400099,1,2,3\n")
    report = ingest(ws, "listens", [csv, fine])
    why = _rejects(ws)
    assert why == {("dup.csv", "file"): "header: column 'count' appears more than once "
                                       "(columns: ['isrc', 'count', 'count'])"}
    assert _listens(ws) == {"GBAHS1400099": 1}  # from fine.csv: its duplicate is not used
    assert report.rejected + report.values_dropped == 1


def test_listen_totals_past_64_bits_do_not_break_select_or_stats(ws: Workspace) -> None:
    """A catalogue holding counts whose sum passes 2^63 (written before the bound)."""
    with ws.store() as s, s.transaction():
        for i in range(1, 5):
            s.conn.execute("INSERT INTO track(key, title, mbid) VALUES (?, ?, ?)",
                           (REC.format(i), f"t{i}", REC.format(i)))
        tid = {r["key"]: r["id"] for r in s.query("SELECT id, key FROM track")}
        for i, count in ((1, 2**62), (2, 2**62), (3, 2**62), (4, 5)):
            for dataset in ("a", "b"):
                s.conn.execute(
                    "INSERT INTO listens(dataset, key_kind, key, count, track_id) "
                    "VALUES (?, 'mbid', ?, ?, ?)", (dataset, REC.format(i), count,
                                                    tid[REC.format(i)]))
    stats = catalogue_stats(ws)
    assert stats.total_listens == 2**63 - 1  # saturated, not an "integer overflow"
    report = select(ws, SelectOptions(coverage=0.5))
    assert report.selected >= 1
    out = CliRunner().invoke(main, ["stats", "--json", "-w", str(ws.root)])
    assert out.exit_code == 0 and orjson.loads(out.output)["total_listens"] == 2**63 - 1
