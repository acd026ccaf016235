"""Property and scale tests: random trees hash like libtorrent; large content (slow)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonotheque.torrent import (
    TorrentOptions,
    auto_piece_length,
    create_torrent,
    read_torrent,
    verify_torrent,
)
from tests.torrent._torrent_refs import lt_infohashes, make_tree, mktorrent

# Letters, digits and "_" sort after "/", so whole-path and per-component
# orders agree and libtorrent's hybrid output is valid (see test_torrent_create).
NAME = st.text("abcdefghijklmnopqrstuvwxyzABC0123456789_", min_size=1, max_size=8)
SIZES = st.one_of(st.integers(0, 70_000), st.sampled_from([0, 1, 16383, 16384, 16385, 32768, 49153]))
TREE = st.dictionaries(
    st.lists(NAME, min_size=1, max_size=3).map(tuple), SIZES, min_size=1, max_size=12
).filter(lambda d: sum(d.values()) > 0 and _no_file_dir_clash(d))


def _no_file_dir_clash(d: dict[tuple[str, ...], int]) -> bool:
    return not any(p[:i] in d for p in d for i in range(1, len(p)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREE, version=st.sampled_from(["2", "hybrid"]), pl=st.sampled_from([16384, 32768]))
def test_random_trees_hash_like_libtorrent(
    tree: dict[tuple[str, ...], int], version: str, pl: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_tree(Path(tmp) / "t", [("/".join(k), v) for k, v in tree.items()], seed=len(tree))
        ours = create_torrent(root, TorrentOptions(version=version, piece_length=pl))  # type: ignore[arg-type]
        assert (ours.infohash_v1, ours.infohash_v2) == lt_infohashes(root, pl, version)
        assert verify_torrent(ours, root.parent).ok


@pytest.mark.slow
@pytest.mark.parametrize("mib", [256, 2048])
def test_large_content_matches_references(tmp_path: Path, mib: int) -> None:
    files = [(f"band{i % 3}/{i:04d}.flac", (i * 7_777_777) % (24 << 20) + 1) for i in range(10_000)]
    picked, total = [], 0
    for rel, size in files:
        if total >= mib << 20:
            break
        picked.append((rel, size))
        total += size
    root = make_tree(tmp_path / "big", picked)
    pl = auto_piece_length(total)
    hybrid = create_torrent(root, TorrentOptions(piece_length=pl))
    assert (hybrid.infohash_v1, hybrid.infohash_v2) == lt_infohashes(root, pl, "hybrid")
    v1 = create_torrent(root, TorrentOptions(version="1", piece_length=pl))
    assert v1.infohash_v1 == read_torrent(mktorrent(root, pl, tmp_path / "mk.torrent")).infohash_v1
    assert verify_torrent(hybrid, tmp_path).ok
