"""The v1 companion of a hybrid torrent: its v1 half, same pieces, verified like the hybrid."""

from __future__ import annotations

import hashlib
from pathlib import Path

import libtorrent as lt
import pytest

from phonotheque.torrent import (
    TorrentFile,
    TorrentOptions,
    bdecode,
    bencode,
    create_torrent,
    read_torrent,
    v1_companion,
    verify_torrent,
)
from tests.torrent._torrent_refs import AWKWARD, make_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("content") / "Album", AWKWARD)


def test_companion_is_the_v1_half(tree: Path) -> None:
    hybrid = create_torrent(tree, TorrentOptions(piece_length=16384, workers=1,
                                                 trackers=("http://127.0.0.1:1/announce",)))
    v1 = v1_companion(hybrid)
    assert v1 is not None and v1.version == "1"
    def layout(files: tuple[TorrentFile, ...]) -> list[tuple[str, int, str, int]]:
        return [(f.path, f.size, f.attr, f.offset) for f in files]

    assert (v1.name, layout(v1.files), v1.pieces, v1.trackers) == (
        hybrid.name, layout(hybrid.files), hybrid.pieces, hybrid.trackers)  # pad files kept
    assert any(f.is_pad for f in v1.files)
    info = bdecode(v1.metainfo)[b"info"]  # type: ignore[index]
    assert v1.infohash_v1 == hashlib.sha1(bencode(info)).hexdigest() != hybrid.infohash_v1
    # libtorrent reads it as a plain v1 torrent with the same infohash
    ti = lt.torrent_info(lt.bdecode(v1.metainfo))
    assert str(ti.info_hashes().v1) == v1.infohash_v1 and not ti.info_hashes().has_v2()
    assert verify_torrent(read_torrent(v1.metainfo), tree.parent).ok
    for version in ("1", "2"):
        assert v1_companion(create_torrent(tree, TorrentOptions(version=version, workers=1))) \
            is None
