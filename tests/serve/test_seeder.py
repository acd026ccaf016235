"""The seeder on 127.0.0.1 serves real clients (libtorrent, aria2c); downloads verify."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from phonotheque.atomic import write_bytes
from phonotheque.errors import InputError
from phonotheque.publish.dbschema import DDL, PUBLISH_SCHEMA_VERSION
from phonotheque.serve.seeder import Seeder, SeedItem, SeedOptions, find_published, parse_listen
from phonotheque.torrent import (
    TorrentOptions,
    create_torrent,
    read_torrent,
    verify_torrent,
)
from tests.require import require_module, require_tool
from tests.serve.clients import aria2c_download, libtorrent_download
from tests.serve.published import build_published
from tests.tracker import tracker


def publish_record(publish: Path, torrents: list[Path]) -> Path:
    """A published metadata.sqlite describing these torrents' real files, as publish
    writes it (torrent rows, one file row per payload file with SHA-256 and merkle root),
    so that `phono verify` can check downloads against it."""
    publish.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(publish / "metadata.sqlite")
    conn.executescript(DDL)
    conn.execute("INSERT INTO info VALUES ('schema_version', ?)", (str(PUBLISH_SCHEMA_VERSION),))
    for tid, path in enumerate(torrents, 1):
        info = read_torrent(path)
        conn.execute(
            "INSERT INTO torrent(id, kind, name, infohash_v1, infohash_v2, magnet, size, files,"
            " added_at) VALUES (?, 'data', ?, ?, ?, ?, ?, ?, '2026-11-25T12:00:00Z')",
            (tid, info.name, info.infohash_v1, info.infohash_v2, info.magnet(), info.total_size,
             len(info.data_files)),
        )  # fmt: skip
        root = path.parent / info.name
        for n, f in enumerate(info.data_files):
            digest = hashlib.sha256((root / f.path).read_bytes()).hexdigest()
            conn.execute(
                "INSERT INTO file(track_id, torrent_id, path, size, sha256, btv2_root, tier)"
                " VALUES (?, ?, ?, ?, ?, ?, 'original')",
                (tid * 1000 + n, tid, f.path, f.size, digest,
                 f.pieces_root.hex() if f.pieces_root else None),
            )  # fmt: skip
    conn.commit()
    conn.close()
    return publish


def phono_verify(data_dir: Path, publish: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from phonotheque.cli import main; main()", "verify",
         str(data_dir), "--against", str(publish)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


LOCAL = SeedOptions(listen="127.0.0.1:0", dht=False, lsd=False, pex=False, utp=False)


@pytest.fixture
def archive(tmp_path: Path, data: Path) -> Path:
    """A workspace-like torrents/ folder: a data torrent of real audio files, a metadata
    torrent (single file: the published SQLite) and an art torrent, each hybrid v1+v2."""
    torrents = tmp_path / "torrents"
    band = torrents / "phonotheque-w1-band1"
    for src in sorted((data / "beets").glob("full.*"))[:8] + sorted(
        (data / "debian-sounds").rglob("*.oga")
    )[:10]:
        dst = band / src.parent.name / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    meta = torrents / "phonotheque-w1-metadata"
    build_published(meta / "metadata.sqlite")
    art = torrents / "phonotheque-w1-art"
    art.mkdir()
    for img in sorted((data / "beets").glob("*.jpg"))[:3] + sorted((data / "beets").glob("*.png"))[:2]:
        shutil.copyfile(img, art / img.name)
    for folder in (band, meta, art):
        info = create_torrent(folder, TorrentOptions(piece_length=32 * 1024, workers=1))
        write_bytes(torrents / f"{folder.name}.torrent", info.metainfo)
    # aria2c 1.36 computes a wrong v1 infohash for every hybrid torrent (it does for
    # BEP 52's own test torrent too), so it can only fetch v1 torrents: give it one
    # of the same payload folder.
    v1 = create_torrent(band, TorrentOptions(version="1", piece_length=32 * 1024, workers=1))
    (tmp_path / "v1").mkdir()
    write_bytes(tmp_path / "v1" / "phonotheque-w1-band1.torrent", v1.metainfo)
    return torrents


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:6881") == ("0.0.0.0", 6881)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen("0.0.0.0:6881", "eth0") == ("eth0", 6881)
    for bad in ("6881", "host:", "a:b", "1.2.3.4:70000", "[::1]6881"):
        with pytest.raises(InputError):
            parse_listen(bad)


def test_find_published_uses_index_then_folder(archive: Path, tmp_path: Path) -> None:
    items = find_published(archive)
    assert sorted(i.torrent.name for i in items) == [
        "phonotheque-w1-art.torrent", "phonotheque-w1-band1.torrent",
        "phonotheque-w1-metadata.torrent",
    ]  # fmt: skip
    assert {i.save_path for i in items} == {archive.resolve()}
    # publish/torrents.json as `phono publish` writes it: a list of objects whose
    # "torrent" is relative to publish/, which holds copies of the .torrent files
    publish = tmp_path / "publish"
    (publish / "torrents").mkdir(parents=True)
    shutil.copyfile(archive / "phonotheque-w1-band1.torrent",
                    publish / "torrents" / "phonotheque-w1-band1.torrent")  # fmt: skip
    (publish / "torrents.json").write_text(
        '[{"display_name": "phonotheque-w1-band1", "magnet_link": "magnet:?xt=urn:btih:00",'
        ' "torrent": "torrents/phonotheque-w1-band1.torrent", "obsolete": false}]'
    )
    (item,) = find_published(archive, publish)
    assert item.torrent == (publish / "torrents" / "phonotheque-w1-band1.torrent").resolve()
    assert item.save_path == archive.resolve()  # the payload is in the workspace
    (publish / "torrents.json").write_text('[{"torrent": "torrents/gone.torrent"}]')
    with pytest.raises(InputError, match="gone.torrent"):
        find_published(archive, publish)


def test_missing_payload_is_reported_and_the_rest_seeded(archive: Path) -> None:
    shutil.rmtree(archive / "phonotheque-w1-art")
    items = find_published(archive)
    with Seeder(items, LOCAL) as seeder:
        assert [m.item.torrent.name for m in seeder.missing] == ["phonotheque-w1-art.torrent"]
        assert seeder.missing[0].expected == archive.resolve() / "phonotheque-w1-art"
        assert len(seeder.status()) == len(items) - 1
    for name in ("phonotheque-w1-band1", "phonotheque-w1-metadata"):
        shutil.rmtree(archive / name)
    with pytest.raises(InputError, match="no payload found for any of the 3 torrents"):
        Seeder(items, LOCAL).start()


def test_follow_drops_adds_and_keeps(archive: Path) -> None:
    """What a running `phono seed` does on a new publish: the seeder ends up seeding
    exactly the new list; unchanged torrents go on untouched, payloads are not deleted."""
    art, band, meta = sorted(find_published(archive), key=lambda i: i.torrent.name)
    with Seeder([band, meta], LOCAL) as seeder:
        kept = seeder._handles[0][0]
        changes = seeder.follow([band, art])
        assert [(c.kind, c.name) for c in changes] == [
            ("removed", "phonotheque-w1-metadata"), ("added", "phonotheque-w1-art")]
        assert seeder._handles[0][0] is kept  # not removed and added again, not re-checked
        assert [s.name for s in seeder.status()] == ["phonotheque-w1-band1", "phonotheque-w1-art"]
        assert (archive / "phonotheque-w1-metadata" / "metadata.sqlite").is_file()
        assert seeder.follow([band, art]) == []
        shutil.rmtree(archive / "phonotheque-w1-metadata")
        (change,) = seeder.follow([band, art, meta])  # reported, not fatal
        assert change.kind == "missing" and change.name == "phonotheque-w1-metadata"
        assert change.detail == str(archive.resolve() / "phonotheque-w1-metadata")
        assert [m.item for m in seeder.missing] == [meta]
        assert seeder.follow([band, art, meta]) == []  # said once
        assert [c.kind for c in seeder.follow([])] == ["removed", "removed"]
        assert seeder.status() == []


def test_real_clients_download_and_verify(archive: Path, tmp_path: Path) -> None:
    require_tool("aria2c")
    v1 = tmp_path / "v1" / "phonotheque-w1-band1.torrent"
    items = [*find_published(archive), SeedItem(v1, archive)]
    with Seeder(items, LOCAL) as seeder:
        port = seeder.listen_port
        assert port > 0
        seeder.wait_ready()
        assert {s.state for s in seeder.status()} == {"seeding"}
        band = archive / "phonotheque-w1-band1.torrent"
        meta = archive / "phonotheque-w1-metadata.torrent"

        lt_dir = tmp_path / "lt"
        for t in (band, meta):
            libtorrent_download(t, lt_dir, ("127.0.0.1", port), timeout=25)
            report = verify_torrent(read_torrent(t), lt_dir)
            assert report.ok, report

        aria_dir = tmp_path / "aria2c"
        with tracker([("127.0.0.1", port)]) as trk:
            url = trk.url
            aria2c_download(v1, aria_dir, url, timeout=25)
        report = verify_torrent(read_torrent(v1), aria_dir)
        assert report.ok, report
        # and the same bytes as the hybrid torrent describes
        assert verify_torrent(read_torrent(band), aria_dir).ok

        # and `phono verify` accepts both downloads against the published record
        publish = publish_record(tmp_path / "publish", [band, meta])
        for downloaded in (lt_dir, aria_dir):
            result = phono_verify(downloaded, publish)
            assert result.returncode == 0, (downloaded, result.stdout, result.stderr)
        # and refuses a corrupted one
        victim = next(p for p in sorted((aria_dir / "phonotheque-w1-band1").rglob("*")) if p.is_file())
        victim.write_bytes(b"\0" + victim.read_bytes()[1:])
        assert phono_verify(aria_dir, publish).returncode != 0

        uploaded = {(s.name, s.infohash): s.uploaded for s in seeder.status()}
        size = read_torrent(band).total_size
        assert uploaded[("phonotheque-w1-band1", read_torrent(band).infohash_v1)] >= size
        assert uploaded[("phonotheque-w1-band1", read_torrent(v1).infohash_v1)] >= size
        assert uploaded[("phonotheque-w1-metadata", read_torrent(meta).infohash_v1)] > 0
    assert seeder.status() == []  # stopped: no handles left


def test_interface_option_binds_the_listening_socket(archive: Path) -> None:
    psutil = require_module("psutil")
    options = SeedOptions(listen="0.0.0.0:0", interface="127.0.0.1", dht=False, lsd=False,
                          pex=False, utp=False)  # fmt: skip
    with Seeder(find_published(archive), options) as seeder:
        port = seeder.listen_port
        mine = [
            c for c in psutil.Process().net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]  # fmt: skip
        assert mine and {c.laddr.ip for c in mine} == {"127.0.0.1"}


def test_taken_port_fails_clearly(archive: Path) -> None:
    """`phono seed --listen 127.0.0.1:P` with P taken exits 2 naming the port, instead of
    silently listening on P+1 where nobody looks for it."""
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        taken = SeedOptions(listen=f"127.0.0.1:{port}", dht=False, lsd=False, pex=False,
                            utp=False)  # fmt: skip
        with pytest.raises(InputError, match=f"port {port} .*in use"):
            Seeder(find_published(archive), taken).start()
        try:
            proc = subprocess.run(
                [sys.executable, "-c", "from phonotheque.cli import main; main()", "seed",
                 "--data", str(archive), "--listen", f"127.0.0.1:{port}", "--no-dht", "--no-lsd"],
                capture_output=True, text=True, timeout=30, cwd=archive.parent,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"seed did not refuse port {port}: {exc.stdout!r}") from None
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert f"127.0.0.1:{port}" in proc.stderr and "in use" in proc.stderr
    assert "Traceback" not in proc.stderr
