"""Album art: found from the catalogue, an art folder, beside audio, or in tags; one tar."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from pathlib import Path

import orjson

from phonotheque.model import Exclusion
from phonotheque.pack.art import sniff_image
from phonotheque.pack.packer import PackOptions, pack
from phonotheque.torrent import read_torrent, verify_torrent
from phonotheque.workspace import Workspace
from tests.publish.archive import make_archive


def _releases(ws: Workspace) -> list[dict[str, object]]:
    with ws.store(readonly=True) as store:
        return [dict(r) for r in store.query(
            "SELECT DISTINCT r.id, r.mbid, r.title, min(t.id) AS track_id FROM release r "
            "JOIN track t ON t.release_id = r.id GROUP BY r.id ORDER BY r.id")]


def _setup(ws: Workspace, data: Path, tmp: Path) -> tuple[list[dict[str, object]], Path]:
    make_archive(ws, data)
    rel = _releases(ws)
    beets = data / "beets"
    src = tmp / "src"
    (src / "r3").mkdir(parents=True)
    (src / "r4").mkdir()
    shutil.copyfile(beets / "image-2x3.jpg", src / "cover-from-tags.jpg")
    shutil.copyfile(beets / "image-2x3.png", src / "r3" / "Folder.png")
    shutil.copyfile(beets / "image.flac", src / "r4" / "track.flac")
    shutil.copyfile(beets / "full.flac", src / "r3" / "track.flac")
    art_dir = tmp / "art"
    art_dir.mkdir()
    shutil.copyfile(beets / "image-2x3.png", art_dir / f"{rel[1]['mbid']}.png")
    shutil.copyfile(beets / "image-2x3.tiff", art_dir / f"{rel[4]['mbid']}.jpg")  # not a JPEG
    with ws.store() as store, store.transaction():
        store.conn.execute("UPDATE release SET art_path = ? WHERE id = ?",
                           (str(src / "cover-from-tags.jpg"), rel[0]["id"]))
        store.conn.execute("UPDATE release SET art_path = ? WHERE id = ?",
                           (str(src / "missing.jpg"), rel[5]["id"]))
        for folder, r in (("r3", rel[2]), ("r4", rel[3])):
            f = src / folder / "track.flac"
            store.conn.execute(
                "INSERT INTO source_audio(path, track_id, size, mtime_ns) VALUES (?,?,?,?)",
                (str(f), r["track_id"], f.stat().st_size, f.stat().st_mtime_ns))
    return rel, art_dir


def test_art_sources_tar_and_torrent(ws: Workspace, data: Path, tmp_path: Path) -> None:
    rel, art_dir = _setup(ws, data, tmp_path)
    report = pack(ws, PackOptions(art_dir=art_dir))
    # four releases, two images: the PNG twice, and image.flac embeds image-2x3.jpg
    assert report.art_torrent and report.art_images == 2
    with ws.store(readonly=True) as store:
        chosen = {r["release_id"]: dict(r) for r in store.query("SELECT * FROM release_art")}
        t = dict(store.query("SELECT * FROM torrent WHERE kind = 'art'")[0])
        rejects = {r.source: r.reason for r in store.rejects(stage="pack")}
    assert chosen[rel[0]["id"]]["origin"] == "art_path"
    assert chosen[rel[1]["id"]]["origin"] == "art_dir"
    assert chosen[rel[2]["id"]]["origin"] == "beside_audio"
    assert chosen[rel[3]["id"]]["origin"] == "embedded"
    assert rel[4]["id"] not in chosen and rel[5]["id"] not in chosen
    assert "not a JPEG" in rejects[str(art_dir / f"{rel[4]['mbid']}.jpg")]
    assert "does not exist" in rejects[str(tmp_path / "src" / "missing.jpg")]

    tar_path = ws.root / str(t["data_path"])
    assert t["name"] == tar_path.name and tar_path.name.startswith("phonotheque_art__")
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
        assert members[0].name == "index.jsonl"
        index = [orjson.loads(x) for x in tar.extractfile(members[0]).read().splitlines()]  # type: ignore[union-attr]
        for m in members:
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
            if m.isfile() and m.name != "index.jsonl":
                blob = tar.extractfile(m).read()  # type: ignore[union-attr]
                sha = hashlib.sha256(blob).hexdigest()
                assert m.name.startswith(f"{sha[:2]}/{sha}.")
                assert sniff_image(blob[:16])
        names = [m.name for m in members]
        assert names == ["index.jsonl"] + sorted(names[1:])
    assert {i["release_id"] for i in index} == set(chosen)
    info = read_torrent(ws.root / str(t["torrent_path"]))
    assert not info.multi_file and verify_torrent(info, tar_path.parent).ok

    # Same art again: nothing rebuilt.
    again = pack(ws, PackOptions(art_dir=art_dir))
    assert again.art_torrent is None
    # Art of an excluded release goes: a new tar, the old one obsolete.
    with ws.store() as store:
        store.add_exclusion(Exclusion("mbid", str(rel[0]["mbid"]), "takedown"))
    third = pack(ws, PackOptions(art_dir=art_dir))
    assert third.art_torrent and third.art_torrent != t["name"]
    with ws.store(readonly=True) as store:
        old = store.query("SELECT obsolete, superseded_by FROM torrent WHERE id = ?", (t["id"],))[0]
        assert old["obsolete"] == 1 and old["superseded_by"] is not None
        assert rel[0]["id"] not in {r[0] for r in store.query("SELECT release_id FROM release_art")}
    assert not tar_path.exists()


def test_no_art_no_torrent(ws: Workspace, data: Path) -> None:
    make_archive(ws, data, n=3)
    report = pack(ws, PackOptions())
    assert report.art_torrent is None
    with ws.store(readonly=True) as store:
        assert store.scalar("SELECT count(*) FROM torrent WHERE kind = 'art'") == 0


def test_art_search_is_incremental(ws: Workspace, data: Path, tmp_path: Path) -> None:
    rel, art_dir = _setup(ws, data, tmp_path)
    pack(ws, PackOptions(art_dir=art_dir))
    # A cover that appears later is found only when asked to look again.
    shutil.copyfile(data / "beets" / "image-2x3.jpg", art_dir / f"{rel[6]['mbid']}.jpg")
    assert pack(ws, PackOptions(art_dir=art_dir)).art_torrent is None
    again = pack(ws, PackOptions(art_dir=art_dir, rescan_art=True))
    assert again.art_torrent is not None
    with ws.store(readonly=True) as store:
        assert store.scalar("SELECT origin FROM release_art WHERE release_id = ?",
                            (rel[6]["id"],)) == "art_dir"
        assert store.scalar("SELECT count(*) FROM art_scan") == len(rel)


def test_released_art_is_published_and_verifies(ws: Workspace, data: Path, tmp_path: Path) -> None:
    import sqlite3

    from phonotheque.publish.verify import VerifyOptions, verify
    from phonotheque.publish.waves import ReleaseOptions, release

    rel, art_dir = _setup(ws, data, tmp_path)
    release(ws, ReleaseOptions(pack_options=PackOptions(art_dir=art_dir)))
    idx = orjson.loads((ws.publish / "torrents.json").read_bytes())
    art = [e for e in idx if e["kind"] == "art"]
    assert len(art) == 1 and art[0]["wave"] == 1
    db = sqlite3.connect(ws.publish / "metadata.sqlite")
    rows = db.execute("SELECT release_id, member FROM art ORDER BY release_id").fetchall()
    assert [r[0] for r in rows] == sorted(r["id"] for r in rel[:4])  # type: ignore[type-var]
    report = verify(ws.torrents, VerifyOptions(ws.publish))
    assert report.ok, report.problems
    assert any(f.torrent == art[0]["display_name"] for f in report.folders)
