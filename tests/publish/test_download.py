"""A real BitTorrent client downloads our published torrents on 127.0.0.1; phono verify accepts.

libtorrent seeds every data, AAC-metadata and database torrent listed in
torrents.json from the workspace; a second libtorrent session (uTP off, no
DHT/LSD, straight to the seeder) downloads them from their .torrent files in
publish/torrents/; then `phono verify` checks the download against publish/,
reconstruction patches included.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.pack.packer import PackOptions
from phonotheque.publish.waves import ReleaseOptions, release
from phonotheque.workspace import Workspace
from tests.bt_session import (
    add_download,
    add_seed,
    listen_port,
    start_session,
    stop_session,
    wait_finished,
)
from tests.publish.archive import make_archive

TIMEOUT = 45.0



def _download(ws: Workspace, torrents: list[Path], out: Path) -> Path:
    """Seed ``torrents`` from the workspace and download them all into ``out`` with a
    second real libtorrent session on 127.0.0.1."""
    seeder = start_session("127.0.0.1:0")
    leecher = start_session("127.0.0.1:0")
    try:
        seeds = [add_seed(seeder, t, ws.torrents) for t in torrents]
        wait_finished(seeds, 10)
        peer = ("127.0.0.1", listen_port(seeder))
        handles = [add_download(leecher, t, out, peers=[peer]) for t in torrents]
        wait_finished(handles, TIMEOUT)
    finally:
        stop_session(leecher)
        stop_session(seeder)
    return out

def test_libtorrent_download_verifies(ws: Workspace, data: Path, tmp_path: Path) -> None:
    make_archive(ws, data, patch_every=4)
    release(ws, ReleaseOptions(pack_options=PackOptions(max_files=5, piece_length=16384)))
    entries = [e for e in orjson.loads((ws.publish / "torrents.json").read_bytes())
               if not e["obsolete"]]
    torrents = [ws.publish / e["torrent"] for e in entries]
    assert len(torrents) >= 5
    out = _download(ws, torrents, tmp_path / "download")
    res = CliRunner().invoke(main, ["verify", str(out), "--against", str(ws.publish),
                                    "--rebuild-originals", "--json"])
    assert res.exit_code == 0, res.output
    report = orjson.loads(res.output)
    assert report["ok"] and report["problems"] == []
    assert len(report["folders"]) == len(torrents)
    assert report["originals_checked"] == report["originals_ok"] == 2


def test_download_verifies_against_the_downloaded_database(ws: Workspace, data: Path,
                                                           tmp_path: Path) -> None:
    """A user has no publish/: they verify against the database torrent they downloaded."""
    make_archive(ws, data, patch_every=4)
    release(ws, ReleaseOptions(pack_options=PackOptions(max_files=5, piece_length=16384)))
    entries = [e for e in orjson.loads((ws.publish / "torrents.json").read_bytes())
               if not e["obsolete"]]
    (database,) = [e["display_name"] for e in entries if e["role"] == "database"]
    torrents = [ws.publish / e["torrent"] for e in entries]
    out = _download(ws, torrents, tmp_path / "download")
    res = CliRunner().invoke(main, ["verify", str(out), "--against", str(out / database),
                                    "--json"])
    assert res.exit_code == 0, res.output
    report = orjson.loads(res.output)
    assert report["ok"] and report["problems"] == []
    assert {f["found_as"] for f in report["folders"]} == {p.name.removesuffix(".torrent")
                                                          for p in torrents}
    # and the human summary says so too
    res = CliRunner().invoke(main, ["verify", str(out), "--against", str(out / database)])
    assert res.exit_code == 0, res.output
    assert "unexpected" not in res.output


def test_aria2c_downloads_the_v1_companions(ws: Workspace, data: Path, tmp_path: Path) -> None:
    """aria2c 1.36 cannot join a hybrid swarm (aria2/aria2#1903): torrents.json offers a v1
    companion of every hybrid torrent, `phono seed`'s seeder serves it from the same
    payload, real aria2c downloads every one on 127.0.0.1 and `phono verify` accepts."""
    from phonotheque.serve.seeder import Seeder, SeedOptions, find_published
    from phonotheque.torrent import read_torrent
    from tests.require import require_tool
    from tests.serve.clients import aria2c_download
    from tests.tracker import tracker

    require_tool("aria2c")
    make_archive(ws, data, patch_every=4)
    release(ws, ReleaseOptions(pack_options=PackOptions(max_files=5, piece_length=16384)))
    entries = [e for e in orjson.loads((ws.publish / "torrents.json").read_bytes())
               if not e["obsolete"]]
    assert entries and all(e["torrent_v1"] and e["magnet_link_v1"] for e in entries)
    for e in entries:
        v1 = read_torrent(ws.publish / e["torrent_v1"])
        hybrid = read_torrent(ws.publish / e["torrent"])
        assert v1.version == "1" and v1.name == hybrid.name and v1.pieces == hybrid.pieces
        assert f"urn:btih:{v1.infohash_v1}" in e["magnet_link_v1"]
        assert "btmh" not in e["magnet_link_v1"]
    items = find_published(ws.torrents, ws.publish)
    assert len(items) == 2 * len(entries)  # every hybrid and its companion are seeded
    out = tmp_path / "aria2c"
    local = SeedOptions(listen="127.0.0.1:0", dht=False, lsd=False, pex=False, utp=False)
    with Seeder(items, local) as seeder, tracker([("127.0.0.1", seeder.listen_port)]) as tr:
        aria2c_download([ws.publish / e["torrent_v1"] for e in entries], out, tr.url, TIMEOUT)
    res = CliRunner().invoke(main, ["verify", str(out), "--against", str(ws.publish), "--json"])
    assert res.exit_code == 0, res.output
    assert len(orjson.loads(res.output)["folders"]) == len(entries)


def test_torrents_page_offers_the_v1_companions(ws: Workspace, data: Path) -> None:
    """The torrents page and /api/torrents give each hybrid's v1 magnet and say which
    clients read hybrid torrents."""
    from starlette.testclient import TestClient

    from phonotheque.serve.app import ServeOptions, create_app

    make_archive(ws, data)
    release(ws, ReleaseOptions(pack_options=PackOptions(max_files=5)))
    entries = [e for e in orjson.loads((ws.publish / "torrents.json").read_bytes())
               if not e["obsolete"]]
    with TestClient(create_app(ServeOptions(publish=ws.publish))) as client:
        page = client.get("/torrents").text
        api = client.get("/api/torrents", params={"limit": 100}).json()
    assert "aria2 before 1.37 cannot" in page and "libtorrent 2" in page
    listed = [e for e in entries if e["role"] != "database"]  # (the database describes itself)
    assert listed
    for e in listed:
        assert e["magnet_link_v1"].replace("&", "&amp;") in page
    by_name = {t["name"]: t for t in api["torrents"]}
    assert [by_name[e["display_name"]]["magnet_v1"] for e in listed] == [
        e["magnet_link_v1"] for e in listed]
