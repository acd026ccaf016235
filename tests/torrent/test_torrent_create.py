"""Creating torrents: infohashes equal libtorrent's (v2, hybrid) and mktorrent's / torf's (v1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonotheque.atomic import write_bytes
from phonotheque.errors import InputError, TorrentError
from phonotheque.torrent import (
    TorrentOptions,
    auto_piece_length,
    create_torrent,
    read_torrent,
)
from phonotheque.torrent import _bencode as bencode
from tests.require import require_module
from tests.torrent._torrent_refs import (
    AWKWARD,
    lt_auto_piece_length,
    lt_infohashes,
    make_tree,
    mktorrent,
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("content") / "Album ♫", AWKWARD)


# Names whose whole-path order ("a b" < "a-c" < "a.txt" < "a/b") differs from the
# per-component order of the BEP 52 file tree ("a/b" first).
ORDER_TRAPS = ("a b", "a-c", "a.txt")


@pytest.fixture(scope="module")
def plain_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = [(r, s) for r, s in AWKWARD if r not in ORDER_TRAPS]
    return make_tree(tmp_path_factory.mktemp("plain") / "Album ♫", files)


@pytest.mark.parametrize("piece_length", [16384, 32768, 262144])
def test_v2_folder_matches_libtorrent(tree: Path, piece_length: int) -> None:
    ours = create_torrent(tree, TorrentOptions(version="2", piece_length=piece_length))
    assert (ours.infohash_v1, ours.infohash_v2) == lt_infohashes(tree, piece_length, "2")


@pytest.mark.parametrize("piece_length", [16384, 32768, 262144])
def test_hybrid_folder_matches_libtorrent(plain_tree: Path, piece_length: int) -> None:
    ours = create_torrent(plain_tree, TorrentOptions(version="hybrid", piece_length=piece_length))
    assert (ours.infohash_v1, ours.infohash_v2) == lt_infohashes(plain_tree, piece_length, "hybrid")


def test_hybrid_order_traps_follow_the_file_tree(tree: Path) -> None:
    """libtorrent 2.1.1 sorts a hybrid's v1 list by whole path but its file tree per
    component, so for names like "a b" next to "a/b" it emits a torrent that it
    then refuses to load ("the v1 and v2 file metadata does not match"). We keep
    the v1 list in file-tree order, which is what BEP 52 requires."""
    with pytest.raises(RuntimeError, match="v1 and v2 file metadata"):
        lt_infohashes(tree, 16384, "hybrid")
    ours = create_torrent(tree, TorrentOptions(version="hybrid", piece_length=16384))
    order = [f.path for f in ours.data_files]
    assert order.index("a/b") < order.index("a b") < order.index("a-c") < order.index("a.txt")
    lt_info = _lt_load(ours.metainfo)
    assert lt_info.info_hashes().v2.to_bytes().hex() == ours.infohash_v2


def _lt_load(metainfo: bytes):  # type: ignore[no-untyped-def]
    import libtorrent as lt

    return lt.torrent_info(metainfo)


@pytest.mark.parametrize("version", ["2", "hybrid"])
@pytest.mark.parametrize("rel", ["one", "piece16k", "piece16k+1", "big.bin", "Café/Ünïcødé ♫.flac"])
def test_single_file_matches_libtorrent(tree: Path, version: str, rel: str) -> None:
    ours = create_torrent(tree / rel, TorrentOptions(version=version, piece_length=16384))  # type: ignore[arg-type]
    assert not ours.multi_file
    assert (ours.infohash_v1, ours.infohash_v2) == lt_infohashes(tree / rel, 16384, version)


def test_folder_with_one_file_matches_libtorrent(tmp_path: Path) -> None:
    d = make_tree(tmp_path / "solo", [("only.flac", 20000)])
    for version in ("2", "hybrid"):
        ours = create_torrent(d, TorrentOptions(version=version, piece_length=16384))  # type: ignore[arg-type]
        assert (ours.infohash_v1, ours.infohash_v2) == lt_infohashes(d, 16384, version)
        # A v2 file tree with one file at its top reads as a single-file
        # torrent of that file (libtorrent does the same); hybrid keeps the folder.
        assert ours.multi_file == (version == "hybrid")
        assert ours.data_files[0].path == ("only.flac" if version == "2" else "only.flac")


def test_hybrid_layout_is_libtorrents(plain_tree: Path) -> None:
    info = create_torrent(plain_tree, TorrentOptions(version="hybrid", piece_length=16384))
    files = list(info.files)
    pads = [f for f in files if f.is_pad]
    assert pads and all(f.path == f".pad/{f.size}" for f in pads)
    # every non-empty data file starts on a piece boundary; the last one is padded too
    for f in info.data_files:
        if f.size:
            assert f.offset % 16384 == 0
    assert files[-1].is_pad
    # no extra keys in the info dictionary
    top = bencode.decode(info.metainfo)
    assert isinstance(top, dict) and isinstance(top[b"info"], dict)
    assert sorted(top[b"info"]) == [b"file tree", b"files", b"meta version", b"name", b"piece length", b"pieces"]
    # piece layers only for files larger than one piece
    big = {f.pieces_root for f in info.data_files if f.size > 16384}
    assert set(info.piece_layers) == big


@pytest.mark.parametrize("piece_length", [32768, 65536])
def test_v1_matches_mktorrent(tree: Path, tmp_path: Path, piece_length: int) -> None:
    ref = read_torrent(mktorrent(tree, piece_length, tmp_path / "ref.torrent"))
    ours = create_torrent(tree, TorrentOptions(version="1", piece_length=piece_length))
    assert ours.infohash_v1 == ref.infohash_v1
    assert [f.path for f in ours.files] == [f.path for f in ref.files]
    # mktorrent adds private and the name to the info dict only; the rest is outside
    ref_p = read_torrent(mktorrent(tree, piece_length, tmp_path / "p.torrent", "-p", "-n", "renamed"))
    ours_p = create_torrent(
        tree, TorrentOptions(version="1", piece_length=piece_length, private=True, name="renamed")
    )
    assert ours_p.infohash_v1 == ref_p.infohash_v1 and ours_p.private


def test_v1_single_file_matches_mktorrent(tree: Path, tmp_path: Path) -> None:
    for rel in ("one", "big.bin", "piece32k"):
        ref = read_torrent(mktorrent(tree / rel, 32768, tmp_path / f"{rel}.torrent"))
        ours = create_torrent(tree / rel, TorrentOptions(version="1", piece_length=32768))
        assert ours.infohash_v1 == ref.infohash_v1


def test_v1_matches_torf(tmp_path: Path) -> None:
    torf = require_module("torf")
    # torf sorts per path component like BEP 52 while mktorrent sorts whole
    # paths; on names where the two orders agree both must match ours. torf
    # also leaves empty files out, so this content has none.
    d = make_tree(tmp_path / "t", [(r, s) for r, s in AWKWARD if s and r not in ("a b", "a-c", "a.txt")])
    t = torf.Torrent(d, piece_size=32768, created_by=None, creation_date=None)
    t.generate()
    ours = create_torrent(d, TorrentOptions(version="1", piece_length=32768))
    assert ours.infohash_v1 == t.infohash


def test_auto_piece_length_is_libtorrents(tmp_path: Path) -> None:
    for size in (1, 2684355, 2684356, 50 << 20, 3 << 30):
        f = tmp_path / "sparse"
        with open(f, "wb") as fh:
            fh.truncate(size)
        assert auto_piece_length(size) == lt_auto_piece_length(f), size


def test_reproducible_and_options_outside_info(tree: Path, tmp_path: Path) -> None:
    plain = create_torrent(tree, TorrentOptions(piece_length=32768))
    again = create_torrent(tree, TorrentOptions(piece_length=32768, workers=1))
    assert plain.metainfo == again.metainfo  # no date: same bytes
    dressed = create_torrent(
        tree,
        TorrentOptions(
            piece_length=32768,
            trackers=("http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"),
            webseeds=("http://127.0.0.1/files/",),
            comment="test",
            creation_date=1700000000,
        ),
    )
    assert (dressed.infohash_v1, dressed.infohash_v2) == (plain.infohash_v1, plain.infohash_v2)
    assert dressed.trackers == ("http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969")
    assert dressed.webseeds == ("http://127.0.0.1/files/",)
    assert dressed.comment == "test" and dressed.creation_date == 1700000000
    assert "tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce" in dressed.magnet()
    assert dressed.magnet().startswith(
        f"magnet:?xt=urn:btih:{plain.infohash_v1}&xt=urn:btmh:1220{plain.infohash_v2}&dn=Album%20%E2%99%AB"
    )
    out = tmp_path / "out.torrent"
    write_bytes(out, dressed.metainfo)
    assert out.read_bytes() == dressed.metainfo
    assert read_torrent(out) == dressed
    assert [p.name for p in tmp_path.iterdir()] == ["out.torrent"]  # no temporary left


def test_progress_reports_every_byte(tree: Path) -> None:
    seen: list[int] = []
    info = create_torrent(tree, TorrentOptions(piece_length=16384), progress=seen.append)
    assert sum(seen) == info.total_size


def test_refuses_empty_content(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "zero").write_bytes(b"")
    with pytest.raises(TorrentError, match="empty"):
        create_torrent(tmp_path / "e", TorrentOptions())
    (tmp_path / "e" / "one").write_bytes(b"1")
    with pytest.raises(TorrentError, match="power of two"):
        create_torrent(tmp_path / "e", TorrentOptions(piece_length=20000))
    assert create_torrent(tmp_path / "e", TorrentOptions(version="1", piece_length=20000))


@pytest.mark.parametrize("version", ["1", "2", "hybrid"])
def test_single_file_renamed(tree: Path, version: str) -> None:
    info = create_torrent(tree / "big.bin", TorrentOptions(version=version, name="Renamed.bin"))  # type: ignore[arg-type]
    assert info.name == "Renamed.bin" and [f.path for f in info.files] == ["Renamed.bin"]


def test_file_changed_while_hashing_is_refused(tmp_path: Path) -> None:
    d = make_tree(tmp_path / "d", [("a", 20_000), ("b", 20_000)])

    def touch(_: int) -> None:
        with open(d / "a", "ab") as f:
            f.write(b"late")

    with pytest.raises(InputError, match="changed while it was being hashed"):
        create_torrent(d, TorrentOptions(piece_length=16384), progress=touch)
