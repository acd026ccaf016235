"""phono pack on a real small archive: folders, torrents, roots, determinism, bad input."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from phonotheque.model import Exclusion
from phonotheque.pack.aac import parse_aacid
from phonotheque.pack.packer import PackOptions, pack
from phonotheque.progress import ProgressEvent
from phonotheque.torrent import read_torrent, verify_torrent
from phonotheque.workspace import Workspace
from tests.publish.archive import make_archive
from tests.publish.helpers import tree_hashes
from tests.require import missing


def _data_torrents(ws: Workspace, obsolete: int = 0) -> list[dict[str, object]]:
    with ws.store(readonly=True) as store:
        return [dict(r) for r in store.query(
            "SELECT * FROM torrent WHERE kind = 'data' AND obsolete = ? ORDER BY id", (obsolete,))]


def test_pack_aac_layout(ws: Workspace, data: Path) -> None:
    make_archive(ws, data, patch_every=3)
    report = pack(ws, PackOptions(max_files=4))
    assert report.eligible == 10 and not report.rejects
    torrents = _data_torrents(ws)
    assert [t["band"] for t in torrents] == sorted(t["band"] for t in torrents)
    assert len(report.new_folders) == len(torrents) == 5
    with ws.store(readonly=True) as store:
        for t in torrents:
            folder = ws.root / str(t["data_path"])
            assert folder.name == t["name"]
            assert str(t["name"]).startswith("phonotheque_data__aacid__music_files_band")
            assert str(t["name"]).endswith(f"__{t['aac_from']}--{t['aac_to']}")
            info = read_torrent(ws.root / str(t["torrent_path"]))
            assert info.name == t["name"] and info.version == "hybrid"
            assert (info.infohash_v1, info.infohash_v2) == (t["infohash_v1"], t["infohash_v2"])
            assert verify_torrent(info, folder.parent).ok
            assert len(info.data_files) <= 4
            rows = store.query("SELECT * FROM torrent_file WHERE torrent_id = ?", (t["id"],))
            roots = {f.path: f.pieces_root.hex() for f in info.data_files if f.pieces_root}
            assert {r["path"] for r in rows} == {f.path for f in info.data_files}
            for r in rows:
                assert r["pieces_root"] == roots[r["path"]]
                if r["role"] == "audio":
                    aacid = parse_aacid(r["path"])
                    assert aacid.collection == t["collection"]
                    assert aacid.timestamp == t["aac_from"]
                    a = store.query("SELECT * FROM audio_file WHERE id = ?",
                                    (r["audio_file_id"],))[0]
                    assert aacid.primary_id == str(a["track_id"])
                    assert a["btv2_root"] == r["pieces_root"]
                    assert r["sha256"] == a["sha256"]
                    # hard link, not a copy
                    assert os.path.samefile(ws.root / a["path"], folder / r["path"])
                else:
                    assert r["path"] == r["aacid"] + ".zstdpatch"
    # timestamps strictly increase from folder to folder
    stamps = [t["aac_from"] for t in torrents]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert stamps[0] == "20260301T120000Z"  # the newest audio_file.created_at, not the clock


def test_pack_readable_layout_is_safe(ws: Workspace, data: Path) -> None:
    make_archive(ws, data)
    pack(ws, PackOptions(layout="readable", max_files=100))
    paths = []
    for t in _data_torrents(ws):
        assert "_data__music_files_band" in str(t["name"]) and "aacid" not in str(t["name"])
        info = read_torrent(ws.root / str(t["torrent_path"]))
        paths += [f.path for f in info.data_files]
    assert "Ärtist Ünïcode/First Album/01 Alarm Clock.oga" in paths
    assert "Slash_Artist/Release/03 .._.._etc_passwd.oga" in paths
    assert "CON_/Unknown Release/05 Complete.oga" in paths
    assert "abba/Gold/06 Device Added.oga" in paths and "abba/Gold/07 Device Added.oga" in paths
    for p in paths:
        assert all(0 < len(part.encode()) <= 255 and part not in (".", "..")
                   for part in p.split("/"))


def test_repacking_changes_nothing(ws: Workspace, data: Path) -> None:
    make_archive(ws, data, patch_every=4)
    pack(ws, PackOptions(max_files=3))
    before = tree_hashes(ws.torrents)
    again = pack(ws, PackOptions(max_files=3))
    assert not again.changed and again.files_packed == 0
    assert tree_hashes(ws.torrents) == before


def test_same_catalogue_packs_to_same_bytes(tmp_path: Path, data: Path) -> None:
    outs = []
    for name in ("a", "b"):
        ws = Workspace.create(tmp_path / name)
        make_archive(ws, data, patch_every=3)
        pack(ws, PackOptions(max_files=3))
        outs.append(tree_hashes(ws.torrents))
    assert outs[0] == outs[1] and len(outs[0]) > 10


def test_interrupted_pack_resumes_to_the_same_bytes(tmp_path: Path, data: Path) -> None:
    ref = Workspace.create(tmp_path / "ref")
    make_archive(ref, data, patch_every=3)
    pack(ref, PackOptions(max_files=3))

    ws = Workspace.create(tmp_path / "ws")
    make_archive(ws, data, patch_every=3)
    seen = 0

    def crash(event: ProgressEvent) -> None:
        nonlocal seen
        seen = int(event.done)  # cumulative bytes
        if seen > 60_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pack(ws, PackOptions(max_files=3), progress=crash)
    # nothing half-written under a final name: every folder present is complete or absent
    with ws.store(readonly=True) as store:
        built = {r[0] for r in store.query("SELECT name FROM torrent WHERE built = 1")}
        planned = store.scalar("SELECT count(*) FROM torrent WHERE built = 0")
    assert planned > 0
    for p in ws.torrents.iterdir():
        if p.is_dir() and not p.name.startswith("."):
            assert p.name in built
    resumed = pack(ws, PackOptions(max_files=3))
    assert resumed.resumed
    assert tree_hashes(ws.torrents) == tree_hashes(ref.torrents)


def test_bad_audio_is_rejected_and_the_rest_packed(ws: Workspace, data: Path) -> None:
    arch = make_archive(ws, data)
    with ws.store(readonly=True) as store:
        paths = [store.scalar("SELECT path FROM audio_file WHERE id = ?", (i,))
                 for i in arch.audio_ids]
    (ws.root / paths[0]).unlink()  # missing
    with open(ws.root / paths[1], "ab") as f:  # grown after hashing
        f.write(b"x")
    raw = bytearray((ws.root / paths[2]).read_bytes())  # same size, other content
    raw[-1] ^= 0xFF
    (ws.root / paths[2]).write_bytes(bytes(raw))
    report = pack(ws, PackOptions(max_files=100))
    assert report.files_packed == 7
    reasons = {r.source: r.reason for r in report.rejects}
    assert set(reasons) == set(paths[:3])
    assert "unreadable" in reasons[paths[0]]
    assert "size" in reasons[paths[1]]
    assert "sha256" in reasons[paths[2]]
    with ws.store(readonly=True) as store:
        n = store.scalar("SELECT count(*) FROM reject WHERE stage = 'pack'")
        assert n == 3
        assert store.scalar("SELECT count(*) FROM torrent_file WHERE role = 'audio'") == 7
    # a re-run does not duplicate rejects
    pack(ws, PackOptions(max_files=100))
    with ws.store(readonly=True) as store:
        assert store.scalar("SELECT count(*) FROM reject WHERE stage = 'pack'") == 3


def test_exclusion_rebuilds_the_folder_and_obsoletes_the_old(ws: Workspace, data: Path) -> None:
    make_archive(ws, data)
    pack(ws, PackOptions(max_files=4))
    first = _data_torrents(ws)
    with ws.store() as store:
        victim = store.query("SELECT t.id, ti.isrc FROM track t JOIN track_isrc ti "
                             "ON ti.track_id = t.id ORDER BY t.id LIMIT 1 OFFSET 1")[0]
        store.add_exclusion(Exclusion("isrc", victim["isrc"], "takedown request"))
    report = pack(ws, PackOptions(max_files=4))
    assert len(report.rebuilt) == 1
    old_name, new_name = report.rebuilt[0]
    assert old_name == first[0]["name"] and new_name and new_name > old_name
    obsolete = _data_torrents(ws, obsolete=1)
    assert [t["name"] for t in obsolete] == [old_name]
    assert not (ws.root / str(obsolete[0]["data_path"])).exists()  # payload deleted
    assert (ws.root / str(obsolete[0]["torrent_path"])).exists()  # .torrent kept
    with ws.store(readonly=True) as store:
        new = store.query("SELECT * FROM torrent WHERE name = ?", (new_name,))[0]
        assert obsolete[0]["superseded_by"] == new["id"]
        members = store.query("SELECT a.track_id FROM torrent_file tf JOIN audio_file a "
                              "ON a.id = tf.audio_file_id WHERE tf.torrent_id = ?", (new["id"],))
        assert victim["id"] not in {m[0] for m in members} and len(members) == 3
        # the AAC metadata torrent of the old folder is obsolete too
        assert store.scalar("SELECT obsolete FROM torrent WHERE describes = ?",
                            (obsolete[0]["id"],)) == 1
    assert not any(victim["isrc"] in p.name for p in ws.torrents.rglob("*"))


def test_changed_settings_are_refused(ws: Workspace, data: Path) -> None:
    from phonotheque.errors import InputError

    make_archive(ws, data, n=3)
    pack(ws, PackOptions())
    with pytest.raises(InputError, match="layout"):
        pack(ws, PackOptions(layout="readable"))


def test_copy_fallback_when_hard_links_are_impossible(ws: Workspace, data: Path,
                                                      tmp_path: Path) -> None:
    # A workspace whose audio/ is on another filesystem (/dev/shm) cannot hard-link.
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(ws.root).st_dev:
        missing("no second filesystem (/dev/shm) to link across")
    make_archive(ws, data, n=2)
    elsewhere = Path(tempfile.mkdtemp(dir=shm))
    try:
        audio = ws.root / "audio"
        shutil.move(str(audio), str(elsewhere / "audio"))
        audio.symlink_to(elsewhere / "audio")
        report = pack(ws, PackOptions())
        assert report.copied == 2 and report.files_packed == 2
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


def test_paths_outside_the_workspace_are_refused(ws: Workspace, data: Path,
                                                 tmp_path: Path) -> None:
    arch = make_archive(ws, data, n=3)
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"private")
    with ws.store() as store, store.transaction():
        store.conn.execute("UPDATE audio_file SET path = ? WHERE id = ?",
                           ("../secret.txt", arch.audio_ids[0]))
        store.conn.execute("UPDATE audio_file SET path = ? WHERE id = ?",
                           (str(outside), arch.audio_ids[1]))
    report = pack(ws, PackOptions(check_sha256=False))
    assert report.tracks_packed == 1
    assert [r.reason for r in report.rejects] == ["path is not inside the workspace"] * 2
    assert not any(p.read_bytes() == b"private" for p in ws.torrents.rglob("*") if p.is_file())


def _long_title(ws: Workspace) -> None:
    """Give the first archived track a 600-byte title (300 × 'é')."""
    with ws.store() as store, store.transaction() as conn:
        tid = conn.execute("SELECT min(track_id) FROM audio_file "
                           "WHERE patch_path IS NOT NULL").fetchone()[0]
        conn.execute("UPDATE track SET title = ? WHERE id = ?", ("é" * 300, tid))


def test_readable_names_leave_room_for_the_patch_suffix(ws: Workspace, data: Path) -> None:
    """A name cut to 255 bytes and then given '.zstdpatch' failed: 'File name too long'."""
    make_archive(ws, data, patch_every=1)
    _long_title(ws)
    report = pack(ws, PackOptions(layout="readable", max_files=100))
    assert not report.rejects
    names = []
    for t in _data_torrents(ws):
        info = read_torrent(ws.root / str(t["torrent_path"]))
        assert verify_torrent(info, ws.torrents).ok
        names += [f.path.rsplit("/", 1)[1] for f in info.data_files]
        for f in info.data_files:
            assert len(f"{t['name']}/{f.path}".encode("utf-16-le")) // 2 <= 240
    assert any(n.startswith("01 éé") and n.endswith(".zstdpatch") for n in names), names


def test_a_plan_that_cannot_be_built_is_recovered_by_a_rerun(
    ws: Workspace, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan recorded with names too long (by an older phono) wedged every re-run."""
    from phonotheque.pack import layout

    make_archive(ws, data, patch_every=1)
    _long_title(ws)
    monkeypatch.setattr(layout, "SIDECAR_RESERVE", 0, raising=False)  # the old rule: names up to 255 bytes
    monkeypatch.setattr(layout, "MAX_PATH_CHARS", 10_000, raising=False)
    monkeypatch.setattr(layout, "MAX_FOLDER_CHARS", 10_000, raising=False)
    with pytest.raises(Exception, match="too long"):
        pack(ws, PackOptions(layout="readable", max_files=100))
    monkeypatch.undo()
    resumed = pack(ws, PackOptions(layout="readable", max_files=100))
    assert resumed.resumed and not resumed.rejects
    assert _data_torrents(ws) and all(t["built"] for t in _data_torrents(ws))


def test_after_a_failed_first_plan_another_layout_may_be_chosen(
    ws: Workspace, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phonotheque.pack import layout

    make_archive(ws, data, patch_every=1)
    _long_title(ws)
    monkeypatch.setattr(layout, "SIDECAR_RESERVE", 0, raising=False)
    monkeypatch.setattr(layout, "MAX_PATH_CHARS", 10_000, raising=False)
    monkeypatch.setattr(layout, "MAX_FOLDER_CHARS", 10_000, raising=False)
    with pytest.raises(Exception, match="too long"):
        pack(ws, PackOptions(layout="readable", max_files=100))
    report = pack(ws, PackOptions(max_files=100))  # the default AAC layout: nothing was built
    assert not report.resumed and not report.rejects
    assert {t["layout"] for t in _data_torrents(ws)} == {"aac"}
