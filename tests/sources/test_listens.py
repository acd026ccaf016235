"""Listen counts: the real ListenBrainz files, plus CSV and Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from phonotheque.errors import InputError
from phonotheque.ingest import IngestOptions, ingest
from phonotheque.sources import ReadOptions
from phonotheque.workspace import Workspace

LB = "listenbrainz"


def _listens(ws: Workspace, dataset: str) -> dict[tuple[str, str], tuple[int, int | None]]:
    with ws.store(readonly=True) as s:
        return {(r["key_kind"], r["key"]): (r["count"], r["users"])
                for r in s.query("SELECT * FROM listens WHERE dataset = ?", (dataset,))}


def test_top_recordings_array_rows(ws: Workspace, data: Path) -> None:
    path = data / LB / "top_recording_db_data_for_api_test.json"
    rows = json.loads(path.read_text())
    report = ingest(ws, "listens", [path])
    got = _listens(ws, "top_recording_db_data_for_api_test")
    assert report.rejected == 0 and len(got) == len(rows) == 20
    # [artist_mbid, recording_mbid, total_listen_count, total_user_count]
    assert got[("mbid", "9e2ad5bc-c6f9-40d2-a36f-3122ee2072a3")] == (3728693, 272098)
    assert sum(c for c, _ in got.values()) == sum(r[2] for r in rows)
    with ws.store(readonly=True) as s:
        assert s.scalar("SELECT licence FROM listens LIMIT 1") == "CC0-1.0"


def test_user_top_recordings_sum_over_users(ws: Workspace, data: Path) -> None:
    path = data / LB / "user_top_recordings_db_data_for_api_test.json"
    doc = json.loads(path.read_text())
    expected: dict[str, int] = {}
    for user in doc:
        for row in user["data"]:
            expected[row["recording_mbid"]] = expected.get(row["recording_mbid"], 0) + row[
                "listen_count"]
    ingest(ws, "listens", [path])
    got = _listens(ws, "user_top_recordings_db_data_for_api_test")
    assert {k: c for (_, k), (c, _) in got.items()} == expected


def test_listens_jsonl_counted_per_recording(ws: Workspace, data: Path) -> None:
    ingest(ws, "listens", [data / LB / "listenbrainz_listens.jsonl"])
    assert _listens(ws, "listenbrainz_listens") == {
        ("mbid", "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"): (1, None),
        ("mbid", "20ddea3a-1ad2-4036-9ca7-5f3383ad31c1"): (1, None),
    }


def test_spotify_plays_and_refusals(ws: Workspace, data: Path) -> None:
    report = ingest(ws, "listens", [data / LB])
    assert _listens(ws, "spotify_play_two_artists") == {("isrc", "USRO20707501"): (1, None)}
    with ws.store(readonly=True) as s:
        why = {(Path(r.source).name, r.locator): r.reason for r in s.rejects()}
    assert why[("spotify_play_no_isrc.json", "document")].startswith("Spotify play without ISRC")
    assert why[("user_top_recordings_db.json", "document data item 1")] == "missing recording_mbid"
    assert why[("sitewide_top_artists_db_data_for_api_test.json", "document data item 1")] == (
        "artist-level count (artist_mbid), not a recording")
    assert why[("mb_metadata_cache_example.json", "document")].startswith(
        "no recording_mbid or isrc")
    assert report.rejected == len(why)


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_listen_objects_of_the_wrong_type_are_refused_not_a_traceback(
        tmp_path: Path, engine: str) -> None:
    """A listen whose mbid_mapping / additional_info / Spotify external_ids is not an
    object is refused with its line and why; the other lines still count (both engines:
    the columnar reader hands such lines to this reader's code)."""
    path = tmp_path / "odd.jsonl"
    good = "9e2ad5bc-c6f9-40d2-a36f-3122ee2072a3"
    path.write_text("\n".join(json.dumps(o) for o in (
        {"track_metadata": {"track_name": "a", "mbid_mapping": ["oops"]}},
        {"track_metadata": {"additional_info": "bad", "mbid_mapping": None}},
        {"track": {"name": "z", "external_ids": ["isrc"]}, "played_at": "2020-01-01"},
        {"track_metadata": {"mbid_mapping": {"recording_mbid": good}, "additional_info": {}}},
    )) + "\n")
    ws = Workspace.create(tmp_path / "ws", engine=engine)
    report = ingest(ws, "listens", [path])
    with ws.store(readonly=True) as s:
        why = {r.locator: r.reason for r in s.rejects()}
    assert why == {
        "line 1": "track_metadata.mbid_mapping is a list, not an object",
        "line 2": "track_metadata.additional_info is a str, not an object",
        "line 3": "track.external_ids is a list, not an object",
    }
    assert report.rejected == 3
    if engine == "sqlite":
        assert _listens(ws, "odd") == {("mbid", good): (1, None)}


def test_csv_and_parquet_with_options(ws: Workspace, tmp_path: Path) -> None:
    csv = tmp_path / "plays.csv"
    csv.write_text("ISRC,plays,other\nGB-AHS-14-00099,12,x\nUSRO20707501,3,y\nbad,1,z\n"
                   "FRZ039800212,-4,w\nFRZ039800213,,w\n")
    report = ingest(ws, "listens", [csv])
    assert _listens(ws, "plays") == {("isrc", "GBAHS1400099"): (12, None),
                                     ("isrc", "USRO20707501"): (3, None)}
    with ws.store(readonly=True) as s:
        why = {r.locator: r.reason for r in s.rejects()}
    assert why["row 3"].startswith("'bad'") or "invalid ISRC" in why["row 3"]
    assert why["row 4"] == "negative listen count -4"
    assert why["row 5"] == "missing listen count"
    assert report.rejected == 3
    table = pa.table({"track_id": pa.array([1, 2, 3]), "n": pa.array([5, 0, 7]),
                      "total_user_count": pa.array([2, 0, 1])})
    pq.write_table(table, tmp_path / "counts.parquet")
    opts = IngestOptions(read=ReadOptions(count_column="n", dataset="mine"))
    ingest(ws, "listens", [tmp_path / "counts.parquet"], opts)
    assert _listens(ws, "mine") == {("track_id", "1"): (5, 2), ("track_id", "2"): (0, 0),
                                    ("track_id", "3"): (7, 1)}


def test_reingest_replaces_counts(ws: Workspace, tmp_path: Path) -> None:
    csv = tmp_path / "weekly.csv"
    csv.write_text("recording_mbid,listen_count\ncb2cc207-8125-445c-9ef9-6ea44eee959a,10\n")
    ingest(ws, "listens", [csv])
    csv.write_text("recording_mbid,listen_count\ncb2cc207-8125-445c-9ef9-6ea44eee959a,15\n")
    report = ingest(ws, "listens", [csv])
    assert report.updated == 1 and report.added == 0
    assert _listens(ws, "weekly") == {("mbid", "cb2cc207-8125-445c-9ef9-6ea44eee959a"): (15, None)}


def test_missing_columns_reject_the_file(ws: Workspace, tmp_path: Path) -> None:
    csv = tmp_path / "nokey.csv"
    csv.write_text("title,count\nx,1\n")
    report = ingest(ws, "listens", [csv])
    with ws.store(readonly=True) as s:
        assert "no key column" in s.rejects()[0].reason
    assert report.rejected == 1
    with pytest.raises(InputError):
        ingest(ws, "listens", [tmp_path / "absent.csv"])
