"""AAC metadata files: seekable zstd JSON lines, one record per packed file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pyzstd

from phonotheque.pack.aac import parse_aacid, read_records, write_records
from phonotheque.pack.packer import PackOptions, pack
from phonotheque.torrent import read_torrent
from phonotheque.workspace import Workspace
from tests.publish.archive import make_archive


def test_meta_file_per_data_folder(ws: Workspace, data: Path) -> None:
    make_archive(ws, data, patch_every=3)
    pack(ws, PackOptions(max_files=4))
    with ws.store(readonly=True) as store:
        pairs = store.query(
            "SELECT d.name AS data, d.data_path, m.name AS meta, m.data_path AS meta_path, "
            "m.torrent_path FROM torrent d JOIN torrent m ON m.describes = d.id "
            "WHERE d.kind = 'data' ORDER BY d.id")
        audio = {r["path"]: dict(r) for r in store.query(
            "SELECT tf.path, tf.pieces_root, a.* FROM torrent_file tf "
            "JOIN audio_file a ON a.id = tf.audio_file_id WHERE tf.role = 'audio'")}
    assert len(pairs) == 5
    for p in pairs:
        assert p["meta"] == p["data"].replace("_data__", "_meta__") + ".jsonl.seekable.zst"
        path = ws.root / p["meta_path"]
        assert pyzstd.SeekableZstdFile.is_seekable_format_file(str(path))
        records = list(read_records(path))
        files = sorted(x.name for x in (ws.root / p["data_path"]).iterdir()
                       if not x.name.endswith(".zstdpatch"))
        assert sorted(r["aacid"] for r in records) == files
        for r in records:
            assert list(r) == ["aacid", "data_folder", "metadata"]
            assert r["data_folder"] == p["data"]
            md = r["metadata"]
            assert next(iter(md)) == "track_id"  # the record's id first, as AAC asks
            assert parse_aacid(r["aacid"]).primary_id == str(md["track_id"])
            f = audio[md["file"]["path"]]
            assert md["file"]["sha256"] == f["sha256"]
            assert md["file"]["btv2_root"] == f["pieces_root"] == f["btv2_root"]
            assert md["isrcs"] and md["release"]["title"]
            assert md["source"].endswith(".oga") and "/" not in md["source"]  # no builder paths
            assert md["licence"] == "CC-BY-SA-3.0"
            if f["patch_path"]:
                assert md["file"]["patch"]["path"] == md["file"]["path"] + ".zstdpatch"
                assert md["file"]["original_sha256"] == f["original_sha256"]
        # the reference zstd tool reads it too
        plain = subprocess.run(["zstd", "-dc", str(path)], capture_output=True,
                               check=True).stdout
        assert [orjson.loads(x) for x in plain.splitlines()] == records
        info = read_torrent(ws.root / p["torrent_path"])
        assert info.name == p["meta"] and not info.multi_file


def test_seekable_file_round_trip_and_frames(tmp_path: Path) -> None:
    records = [{"aacid": f"aacid__x__20260101T000000Z__{i}__u", "metadata": {"n": "y" * 5000}}
               for i in range(2000)]
    out = tmp_path / "m.jsonl.seekable.zst"
    assert write_records(iter(records), out) == 2000
    assert list(read_records(out)) == records
    with pyzstd.SeekableZstdFile(out, "r") as f:
        assert f.seek(5_000_000) == 5_000_000  # random access without reading from the start
        assert len(f.read(10)) == 10
    assert not list(tmp_path.glob(".*tmp*"))
