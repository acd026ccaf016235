"""PiecesRoot: a file's v2 root from its bytes fed in any chunking equals the engine's."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonotheque.torrent import PiecesRoot, TorrentOptions, create_torrent
from tests.torrent._torrent_refs import make_tree


@pytest.mark.parametrize("size", [1, 16383, 16384, 16385, 65536 * 3 + 7, 400_000])
@pytest.mark.parametrize("chunk", [1000, 16384, 50_001, 1 << 20])
def test_pieces_root_matches_the_torrent(tmp_path: Path, size: int, chunk: int) -> None:
    folder = make_tree(tmp_path / "f", [("x.bin", size)], seed=size)
    data = (folder / "x.bin").read_bytes()
    info = create_torrent(folder / "x.bin", TorrentOptions(version="2", piece_length=65536))
    expected = info.data_files[0].pieces_root
    root = PiecesRoot()
    for i in range(0, len(data), chunk):
        root.update(data[i : i + chunk])
    assert root.size == size
    assert root.digest() == expected


def test_empty_file_has_no_root() -> None:
    root = PiecesRoot()
    root.update(b"")
    assert root.digest() is None
