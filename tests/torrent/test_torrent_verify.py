"""verify_torrent and ``phono torrent``: changed, truncated, missing and extra files are named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from phonotheque.atomic import write_bytes
from phonotheque.cli import main
from phonotheque.torrent import TorrentOptions, create_torrent, verify_torrent
from tests.torrent._torrent_refs import AWKWARD, make_tree

VERSIONS = ["1", "2", "hybrid"]


@pytest.fixture
def album(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "save" / "Album", AWKWARD)


@pytest.mark.parametrize("version", VERSIONS)
def test_intact_data_passes(album: Path, version: str) -> None:
    info = create_torrent(album, TorrentOptions(version=version, piece_length=16384))  # type: ignore[arg-type]
    seen: list[int] = []
    report = verify_torrent(info, album.parent, progress=seen.append)
    assert report.ok, report
    assert report.root == album and report.files_checked == len(AWKWARD)
    assert sum(seen) == info.total_size
    # the torrent's folder itself is accepted too
    assert verify_torrent(info, album).ok


@pytest.mark.parametrize("version", VERSIONS)
def test_flipped_byte_is_named(album: Path, version: str) -> None:
    info = create_torrent(album, TorrentOptions(version=version, piece_length=16384))  # type: ignore[arg-type]
    target = album / "Café" / "Ünïcødé ♫.flac"
    data = bytearray(target.read_bytes())
    data[20_000] ^= 0x01
    target.write_bytes(bytes(data))
    report = verify_torrent(info, album.parent)
    assert not report.ok
    assert "Café/Ünïcødé ♫.flac" in report.corrupt
    if version != "1":  # per-file roots pin it down exactly (v1 pieces may span files)
        assert report.corrupt == ("Café/Ünïcødé ♫.flac",)
    if version != "2":
        assert report.bad_pieces >= 1


@pytest.mark.parametrize("version", VERSIONS)
def test_truncated_missing_and_extra_files(album: Path, version: str) -> None:
    info = create_torrent(album, TorrentOptions(version=version, piece_length=16384))  # type: ignore[arg-type]
    with open(album / "big.bin", "r+b") as f:
        f.truncate(100_000)
    (album / "many" / "007.ogg").unlink()
    (album / "many" / "stray.txt").write_text("not in the torrent")
    with open(album / "one", "ab") as f:
        f.write(b"!")
    report = verify_torrent(info, album.parent)
    assert not report.ok
    assert report.truncated == ("big.bin",)
    assert report.missing == ("many/007.ogg",)
    assert report.extra == ("many/stray.txt",)
    assert report.oversized == ("one",)
    assert "big.bin" not in report.corrupt and "many/007.ogg" not in report.corrupt


def test_renamed_folder_reports_every_file_missing(album: Path) -> None:
    info = create_torrent(album, TorrentOptions(piece_length=16384))
    (album.parent / "other").mkdir()
    album.rename(album.parent / "other" / "Renamed")
    report = verify_torrent(info, album.parent)
    assert len(report.missing) == len(AWKWARD) and not report.ok


def test_single_file_torrent(album: Path, tmp_path: Path) -> None:
    info = create_torrent(album / "big.bin", TorrentOptions(piece_length=16384))
    assert verify_torrent(info, album).ok
    assert verify_torrent(info, tmp_path).missing == ("big.bin",)


# ---------------------------------------------------------------- CLI


def test_cli_create_info_verify(album: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "album.torrent"
    r = runner.invoke(
        main,
        ["torrent", "create", str(album), "-o", str(out), "--piece-length", "16KiB",
         "--tracker", "http://127.0.0.1:6969/announce", "--webseed", "http://127.0.0.1/",
         "--comment", "hi", "--no-date"],
    )
    assert r.exit_code == 0, r.output
    expected = create_torrent(
        album,
        TorrentOptions(piece_length=16384, trackers=("http://127.0.0.1:6969/announce",),
                       webseeds=("http://127.0.0.1/",), comment="hi"),
    )
    assert out.read_bytes() == expected.metainfo
    assert expected.infohash_v2 in r.output

    r = runner.invoke(main, ["torrent", "info", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["infohash_v1"] == expected.infohash_v1 and doc["version"] == "hybrid"
    assert doc["piece_length"] == 16384 and len(doc["files"]) == len(AWKWARD)
    assert doc["magnet"] == expected.magnet()

    r = runner.invoke(main, ["torrent", "info", str(out)])
    assert r.exit_code == 0 and "Album" in r.output and expected.infohash_v1 in r.output

    r = runner.invoke(main, ["torrent", "verify", str(out), str(album.parent)])
    assert r.exit_code == 0, r.output
    (album / "one").write_bytes(b"?")
    r = runner.invoke(main, ["torrent", "verify", str(out), str(album.parent), "--json"])
    assert r.exit_code == 4
    assert json.loads(r.output)["problems"] == [{"kind": "corrupt", "path": "one"}]


@pytest.mark.parametrize(
    "name", ["string.torrent", "parent_path.torrent", "v2_deep_recursion.torrent", "many_pieces.torrent"]
)
def test_cli_refuses_invalid_torrents_in_one_line(data: Path, name: str) -> None:
    r = CliRunner().invoke(main, ["torrent", "info", str(data / "torrents" / name)])
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and name in lines[0]
    assert "Traceback" not in r.output


def test_cli_create_v1_and_v2(album: Path, tmp_path: Path) -> None:
    for version in ("1", "2"):
        out = tmp_path / f"v{version}.torrent"
        r = CliRunner().invoke(
            main, ["torrent", "create", str(album), "-o", str(out), "--version", version,
                   "--piece-length", "32768", "--private", "--name", "X"]
        )
        assert r.exit_code == 0, r.output
        got = create_torrent(album, TorrentOptions(version=version, piece_length=32768,  # type: ignore[arg-type]
                                                   private=True, name="X"))
        written = out.read_bytes()
        assert got.infohash_v1 is None or got.infohash_v1 in r.output
        assert b"creation date" in written  # dated unless --no-date
    shutil.rmtree(album)
    r = CliRunner().invoke(main, ["torrent", "create", str(tmp_path / "nope"), "-o", str(tmp_path / "x")])
    assert r.exit_code != 0 and "Traceback" not in r.output


def test_written_torrent_replaces_the_old_file_atomically(album: Path, tmp_path: Path) -> None:
    info = create_torrent(album, TorrentOptions(piece_length=16384))
    out = tmp_path / "t.torrent"
    out.write_bytes(b"old")
    write_bytes(out, info.metainfo)
    assert out.read_bytes() == info.metainfo
    assert sorted(p.name for p in tmp_path.iterdir()) == ["save", "t.torrent"]


def test_cli_names_a_renamed_folder_once(album: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.torrent"
    write_bytes(out, create_torrent(album, TorrentOptions(piece_length=16384)).metainfo)
    album.rename(album.parent / "Renamed")
    r = CliRunner().invoke(main, ["torrent", "verify", str(out), str(album.parent)])
    assert r.exit_code == 4
    text = " ".join(r.output.split())
    assert f"missing {album} (all {len(AWKWARD)} files of the torrent)" in text
