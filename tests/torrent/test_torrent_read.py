"""Reading the libtorrent test-suite torrents: valid ones read, invalid and hostile ones refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phonotheque.errors import TorrentError
from phonotheque.torrent import _bencode as bencode
from phonotheque.torrent import read_torrent

TORRENTS = Path(__file__).parents[1] / "data" / "torrents"
MANIFEST = json.loads((TORRENTS / "MANIFEST.json").read_text())

# Torrents libtorrent 2.1.1 loads but we refuse on purpose, and why. libtorrent
# rewrites unusable names (sanitising "..", "/", "\\", empty or over-long
# components), renames duplicates and follows symlink entries; we would then
# write or check files at paths the torrent does not actually name, and
# path traversal / symlinks are exactly what a hostile torrent uses to reach
# outside the download folder. A preservation archive has no use for either.
DELIBERATELY_REFUSED = {
    "absolute_filename.torrent": "contains '/'",
    "backslash_path.torrent": "contains '\\\\'",
    "duplicate_files.torrent": "appears twice",
    "empty_path.torrent": "is not a usable file name",
    "empty_path_multi.torrent": "is not a usable file name",
    "hidden_parent_path.torrent": "contains '/'",
    "invalid_directory_name.torrent": "contains '/'",
    "invalid_filename.torrent": "contains '\\\\'",
    "invalid_filename2.torrent": "contains '\\\\'",
    "invalid_name2.torrent": "'..' is not a usable file name",
    "long_name.torrent": "longer than 255 bytes",
    "parent_path.torrent": "'..' is not a usable file name",
    "slash_path.torrent": "contains '/'",
    "slash_path2.torrent": "contains '/'",
    "slash_path3.torrent": "contains '/'",
    "overlapping_symlinks.torrent": "symlink",
    "symlink1.torrent": "symlink",
    "symlink2.torrent": "symlink",
    "symlink_filtered_path.torrent": "contains '/'",
    "symlink_zero_size.torrent": "symlink",
    "v2_invalid_filename.torrent": "not valid UTF-8",
    "v2_invalid_filename2.torrent": "contains '/'",
    "v2_symlinks.torrent": "symlink",
}

VALID = sorted(
    n for n, m in MANIFEST.items() if m["lt_2_1_1"]["ok"] and n not in DELIBERATELY_REFUSED
)
INVALID = sorted(n for n, m in MANIFEST.items() if not m["lt_2_1_1"]["ok"])


def test_manifest_covers_every_file() -> None:
    assert sorted(p.name for p in TORRENTS.glob("*.torrent")) == sorted(MANIFEST)
    assert len(VALID) > 40 and len(INVALID) > 40


@pytest.mark.parametrize("name", VALID)
def test_reads_valid_torrent_like_libtorrent(name: str) -> None:
    expected = MANIFEST[name]["lt_2_1_1"]
    info = read_torrent(TORRENTS / name)
    assert info.name == expected["name"]
    assert info.piece_length == expected["piece_length"]
    assert info.infohash_v1 == expected["v1"]
    assert info.infohash_v2 == expected["v2"]
    # libtorrent lays multi-file v2 torrents out piece-aligned with implicit
    # pad files after every unaligned file; count those the same way to compare.
    files, span = list(info.files), max(f.offset + f.size for f in info.files)
    implicit_pads = 0
    if info.version == "2" and info.multi_file:
        pl = info.piece_length
        implicit_pads = sum(1 for f in info.data_files if f.size % pl)
        span = -(-span // pl) * pl
    assert len(files) + implicit_pads == expected["num_files"]
    assert span == expected["total_size"]
    # A magnet of what we read names the same swarm.
    if info.infohash_v1:
        assert f"urn:btih:{info.infohash_v1}" in info.magnet()
    if info.infohash_v2:
        assert f"urn:btmh:1220{info.infohash_v2}" in info.magnet()


@pytest.mark.parametrize("name", INVALID)
def test_refuses_invalid_torrent(name: str) -> None:
    with pytest.raises(TorrentError) as err:
        read_torrent(TORRENTS / name)
    # one line, naming the file and a reason
    assert str(err.value).startswith(str(TORRENTS / name) + ": ")
    assert "\n" not in str(err.value) and err.value.problem


@pytest.mark.parametrize("name", sorted(DELIBERATELY_REFUSED))
def test_refuses_hostile_or_rewritten_names(name: str) -> None:
    with pytest.raises(TorrentError) as err:
        read_torrent(TORRENTS / name)
    assert DELIBERATELY_REFUSED[name] in err.value.problem


@pytest.mark.parametrize(
    "blob, reason",
    [
        (b"", "empty"),
        (b"hello world", "invalid bencoding"),
        (b"d4:infod4:name", "invalid bencoding"),
        (b"i42e", "not a bencoded dictionary"),
        (b"d4:infoi1ee", "'info'"),
        (b"i0" + b"0" * 30 + b"e", "invalid bencoding"),
        (b"l" * 200 + b"e" * 200, "nesting"),
    ],
)
def test_refuses_non_torrents(blob: bytes, reason: str) -> None:
    with pytest.raises(TorrentError, match=reason):
        read_torrent(blob)


def _single(**info: object) -> bytes:
    base: dict[str, object] = {"name": "x", "piece length": 16384, "length": 10, "pieces": b"\0" * 20}
    base.update(info)
    return bencode.encode({"info": base})


def test_refuses_huge_piece_count_for_its_size() -> None:
    # 2^40 bytes in 16 KiB pieces is 64 M pieces: refused before any allocation.
    with pytest.raises(TorrentError, match="too many pieces"):
        read_torrent(_single(length=1 << 40))
    with pytest.raises(TorrentError, match="piece hashes for"):
        read_torrent(_single(length=40000))


def test_bencode_round_trip_is_canonical() -> None:
    value = {"b": [1, -2, b"\xff"], "a": {"": 0}, "é": "ü"}
    raw = bencode.encode(value)
    assert raw == b"d1:ad0:i0ee1:bli1ei-2e1:\xffe2:\xc3\xa92:\xc3\xbce"
    assert bencode.decode(raw) == {b"a": {b"": 0}, b"b": [1, -2, b"\xff"], "é".encode(): "ü".encode()}
    with pytest.raises(TorrentError, match="trailing"):
        bencode.decode(raw + b"x")
    with pytest.raises(TorrentError, match="duplicate"):
        bencode.decode(b"d1:ai1e1:ai2ee")


def test_refuses_oversized_file(tmp_path: Path) -> None:
    big = tmp_path / "big.torrent"
    with open(big, "wb") as f:
        f.write(b"d4:info")
        f.truncate(101 << 20)
    with pytest.raises(TorrentError, match="larger than 100 MiB"):
        read_torrent(big)
