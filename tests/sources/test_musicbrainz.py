"""MusicBrainz JSON dump reader, on real web-service JSON from Picard and beets."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from phonotheque.ingest import ingest
from phonotheque.model import Release, Track, TrackISRC
from phonotheque.sources import get
from phonotheque.sources._base import ReadOptions, file_input
from phonotheque.workspace import Workspace


def _counts(ws: Workspace) -> dict[str, int]:
    with ws.store(readonly=True) as s:
        return {t: s.scalar(f"SELECT count(*) FROM {t}")
                for t in ("track", "track_isrc", "artist", "release", "track_artist", "reject")}


def _tracks_in(doc: dict) -> list[dict]:
    return [t for m in doc.get("media") or () for t in m.get("tracks") or ()]


def test_picard_release_json(ws: Workspace, data: Path) -> None:
    path = data / "picard/ws_data/release.json"
    doc = json.loads(path.read_text())
    report = ingest(ws, "musicbrainz", [path])
    assert report.rejected == 0
    assert _counts(ws) | {"reject": 0} == {
        "track": len(_tracks_in(doc)), "track_isrc": 0, "artist": 1, "release": 1,
        "track_artist": 10, "reject": 0,
    }
    assert len(_tracks_in(doc)) == 10
    with ws.store(readonly=True) as s:
        r = s.query("SELECT * FROM release")[0]
        assert (r["mbid"], r["title"], r["date"], r["label"], r["barcode"], r["artist_credit"]) == (
            "b84ee12a-09ef-421b-82de-0441a926375b", "The Dark Side of the Moon", "1973-03-24",
            "Harvest", "123", "Pink Floyd")
        assert (r["source"], r["locator"], r["licence"]) == ("release.json", "document", "CC0-1.0")
        rows = s.query("SELECT title, disc, position, duration_ms, licence FROM track "
                       "ORDER BY position")
        assert [(x["title"], x["disc"], x["position"]) for x in rows][:2] == [
            ("Speak to Me", 1, 1), ("Breathe", 1, 2)]
        assert rows[0]["duration_ms"] == 68346 and rows[0]["licence"] == "CC0-1.0"


def test_picard_recording_json_with_isrc(ws: Workspace, data: Path) -> None:
    report = ingest(ws, "musicbrainz", [data / "picard/ws_data/recording.json"])
    assert report.rejected == 0
    with ws.store(readonly=True) as s:
        row = s.query("SELECT t.mbid, t.title, t.duration_ms, t.artist_credit, i.isrc, "
                      "i.known_country, a.sort_name FROM track t JOIN track_isrc i "
                      "ON i.track_id = t.id JOIN track_artist ta ON ta.track_id = t.id "
                      "JOIN artist a ON a.id = ta.artist_id")
        assert [tuple(r) for r in row] == [(
            "cb2cc207-8125-445c-9ef9-6ea44eee959a", "Thinking Out Loud", 281000, "Ed Sheeran",
            "GBAHS1400099", 1, "Sheeran, Ed")]


def test_beets_mbpseudo_underscore_keys(ws: Workspace, data: Path) -> None:
    folder = data / "beets/mbpseudo"
    report = ingest(ws, "musicbrainz", [folder])
    assert report.rejected == 0
    # both files describe the same recording (official release and its pseudo-release)
    assert _counts(ws)["track"] == 1 and _counts(ws)["release"] == 2
    with ws.store(readonly=True) as s:
        assert s.scalar("SELECT group_concat(isrc) FROM track_isrc") == "JPP302400868"
        official = s.query("SELECT label, barcode, date, artist_credit FROM release "
                           "WHERE mbid = 'a5ce1d11-2e32-45a4-b37f-c1589d46b103'")[0]
        assert tuple(official) == ("[no label]", "199066336168", "2025-01-10", "幾田りら")
        assert s.scalar("SELECT sort_name FROM artist") == "Ikuta, Lilas"


def test_every_ws_data_file_is_read_or_rejected_with_reason(ws: Workspace, data: Path) -> None:
    report = ingest(ws, "musicbrainz", [data / "picard/ws_data"])
    assert len(report.sources) == len(list((data / "picard/ws_data").glob("*.json")))
    with ws.store(readonly=True) as s:
        rejects = {r.source.rsplit("/", 1)[-1]: r for r in s.rejects()}
    # entities with null ids are refused naming the key
    assert "missing or invalid key 'id'" in rejects["release_null.json"].reason
    assert "missing or invalid key 'id'" in rejects["recording_null.json"].reason
    # things that are not dump entities are refused, saying what they are
    assert "not a MusicBrainz release" in rejects["collection_list.json"].reason
    # a release without media is still a release
    assert "country.json" not in rejects
    assert report.rejected == len(rejects)


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def test_bad_lines_are_rejected_with_line_numbers(ws: Workspace, data: Path, tmp_path: Path) -> None:
    good = json.dumps(json.loads((data / "picard/ws_data/recording.json").read_text())).encode()
    rec = json.loads(good)
    bad_isrc = dict(rec, id="00000000-0000-4000-8000-000000000001", isrcs=["NOT-AN-ISRC", "xx-x1x-99-00001"])
    no_id = {k: v for k, v in rec.items() if k != "id"}
    path = _write(tmp_path / "bad.jsonl", [
        good + b"\n",
        b'{"id": "oops", "title": \n',                      # 2: malformed JSON
        json.dumps(bad_isrc).encode() + b"\n",              # 3: one invalid, one unknown-country ISRC
        json.dumps(no_id).encode() + b"\n",                 # 4: missing key
        b'{"title": "caf\xc3\x28", "length": 1}\n',         # 5: broken UTF-8
        b"\n",                                              # blank: ignored
        good[:40],                                          # 7: truncated last line
    ])
    report = ingest(ws, "musicbrainz", [path])
    with ws.store(readonly=True) as s:
        got = [(r.locator, r.reason) for r in s.rejects()]
        assert all(r.source == str(path) for r in s.rejects())
        isrcs = {r["isrc"]: r["known_country"] for r in s.query("SELECT * FROM track_isrc")}
    by_line = {loc: why for loc, why in got}
    assert set(by_line) == {"line 2", "line 3", "line 4", "line 5", "line 7"}
    assert by_line["line 2"].startswith("malformed JSON")
    assert "'NOT-AN-ISRC'" in by_line["line 3"] and "invalid ISRC" in by_line["line 3"]
    assert "missing or invalid key 'id'" in by_line["line 4"]
    assert "UTF-8" in by_line["line 5"]
    assert by_line["line 7"].startswith("truncated line")
    assert isrcs == {"GBAHS1400099": 1, "XXX1X9900001": 0}  # unknown country kept, flagged
    assert report.rejected == 5 and report.added > 0


def _tar_xz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:xz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def _dump_members(data: Path) -> dict[str, bytes]:
    def line(p: str) -> bytes:
        return json.dumps(json.loads((data / p).read_text())).encode() + b"\n"

    return {
        "TIMESTAMP": b"2026-01-01 00:00:00+00\n",
        "mbdump/release": line("picard/ws_data/release.json")
        + line("beets/mbpseudo/official_release.json"),
        "mbdump/recording": line("picard/ws_data/recording.json"),
    }


def test_tar_xz_archive_is_streamed(ws: Workspace, data: Path, tmp_path: Path) -> None:
    archive = _tar_xz(tmp_path / "release.tar.xz", _dump_members(data))
    report = ingest(ws, "musicbrainz", [archive])
    assert report.rejected == 0
    assert _counts(ws)["track"] == 10 + 1 + 1
    with ws.store(readonly=True) as s:
        assert s.scalar("SELECT locator FROM track WHERE title = 'Thinking Out Loud'") == (
            "mbdump/recording:line 1")
        assert s.scalar("SELECT locator FROM release WHERE title = '百花繚乱'") == (
            "mbdump/release:line 2")
    assert not list(tmp_path.glob("mbdump*"))  # nothing unpacked


def test_truncated_tar_xz_keeps_what_was_read(ws: Workspace, data: Path, tmp_path: Path) -> None:
    members = _dump_members(data)
    members["mbdump/release"] = members["mbdump/release"] * 200  # make the cut land inside it
    whole = _tar_xz(tmp_path / "whole.tar.xz", members)
    cut = tmp_path / "cut.tar.xz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    report = ingest(ws, "musicbrainz", [cut])
    with ws.store(readonly=True) as s:
        rejects = s.rejects()
        assert len(rejects) == 1 and "truncated or corrupt archive" in rejects[0].reason
        assert rejects[0].locator.startswith("after mbdump/release")
        assert s.scalar("SELECT count(*) FROM track") >= 10  # the lines before the cut
    assert report.rejected == 1


def test_reader_yields_records_without_sqlite(data: Path) -> None:
    src = get("musicbrainz")
    records = list(src.read(file_input(data / "picard/ws_data/release_multidisc.json"),
                            ReadOptions()))
    tracks = [r for r in records if isinstance(r, Track)]
    assert [(t.disc, t.position) for t in tracks] == [(1, 1), (1, 2), (1, 3), (1, 4),
                                                      (2, 1), (2, 2), (2, 3)]
    assert sum(isinstance(r, Release) for r in records) == 1
    assert not any(isinstance(r, TrackISRC) for r in records)


def test_isrcs_are_stored_normalised_whatever_surrounds_them(ws: Workspace, data: Path,
                                                             tmp_path: Path) -> None:
    rec = json.loads((data / "picard/ws_data/recording.json").read_text())
    rec["isrcs"] = ["USPR37300012\n", " gb-ahs-14-00099 ", "USPR3730001"]  # the last: 11 chars
    path = _write(tmp_path / "isrcs.jsonl", [json.dumps(rec).encode() + b"\n"])
    report = ingest(ws, "musicbrainz", [path])
    with ws.store(readonly=True) as s:
        isrcs = sorted(r["isrc"] for r in s.query("SELECT isrc FROM track_isrc"))
        (reject,) = s.rejects()
    assert isrcs == ["GBAHS1400099", "USPR37300012"]
    assert "'USPR3730001'" in reject.reason and "length 11, expected 12" in reject.reason
    assert report.rejected == 1
