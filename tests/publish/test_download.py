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


def test_libtorrent_download_verifies(ws: Workspace, data: Path, tmp_path: Path) -> None:
    make_archive(ws, data, patch_every=4)
    release(ws, ReleaseOptions(pack_options=PackOptions(max_files=5, piece_length=16384)))
    entries = [e for e in orjson.loads((ws.publish / "torrents.json").read_bytes())
               if not e["obsolete"]]
    torrents = [ws.publish / e["torrent"] for e in entries]
    assert len(torrents) >= 5
    seeder = start_session("127.0.0.1:0")
    leecher = start_session("127.0.0.1:0")
    out = tmp_path / "download"
    try:
        seeds = [add_seed(seeder, t, ws.torrents) for t in torrents]
        wait_finished(seeds, 10)
        peer = ("127.0.0.1", listen_port(seeder))
        handles = [add_download(leecher, t, out, peers=[peer]) for t in torrents]
        wait_finished(handles, TIMEOUT)
    finally:
        stop_session(leecher)
        stop_session(seeder)
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
    seeder = start_session("127.0.0.1:0")
    leecher = start_session("127.0.0.1:0")
    out = tmp_path / "download"
    try:
        seeds = [add_seed(seeder, t, ws.torrents) for t in torrents]
        wait_finished(seeds, 10)
        peer = ("127.0.0.1", listen_port(seeder))
        handles = [add_download(leecher, t, out, peers=[peer]) for t in torrents]
        wait_finished(handles, TIMEOUT)
    finally:
        stop_session(leecher)
        stop_session(seeder)
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
