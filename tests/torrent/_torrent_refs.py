"""Reference torrents from other tools, and seeded test content, for the torrent tests."""

from __future__ import annotations

import random
import subprocess
import warnings
from pathlib import Path

import libtorrent as lt

from tests.require import require_tool

# (relative path, size): awkward sizes around the 16 KiB and 32 KiB piece
# boundaries, empty files, nested and unicode names, and names whose order
# differs between whole-path (mktorrent) and per-component (BEP 52) sorting.
AWKWARD = [
    ("empty", 0),
    ("one", 1),
    ("piece16k", 16384),
    ("piece16k+1", 16385),
    ("piece32k", 32768),
    ("piece32k+1", 32769),
    ("big.bin", 200_003),
    ("a b", 700),
    ("a-c", 16383),
    ("a.txt", 5),
    ("a/b", 3000),
    ("B/c", 17),
    ("Café/Ünïcødé ♫.flac", 40_000),
    ("日本語/トラック 01.opus", 12_345),
    ("deep/er/and/deeper/x", 1),
    ("deep/er/and/empty", 0),
] + [(f"many/{i:03d}.ogg", (i * 7919) % 5000 + 1) for i in range(40)]


def make_tree(root: Path, files: list[tuple[str, int]], seed: int = 1) -> Path:
    rnd = random.Random(seed)
    for rel, size in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rnd.randbytes(size))
    return root


def lt_infohashes(path: Path, piece_length: int, version: str) -> tuple[str | None, str | None]:
    """Infohashes libtorrent's create_torrent gives ``path`` (v1 hex, v2 hex)."""
    flags = {"1": lt.create_torrent.v1_only, "2": lt.create_torrent.v2_only, "hybrid": 0}[version]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fs = lt.file_storage()
        lt.add_files(fs, str(path))
        ct = lt.create_torrent(fs, piece_length, flags)
        lt.set_piece_hashes(ct, str(path.parent))
        ti = lt.torrent_info(lt.bencode(ct.generate()))
    ih = ti.info_hashes()
    return (
        str(ih.v1) if ih.has_v1() else None,
        str(ih.v2) if ih.has_v2() else None,
    )


def lt_auto_piece_length(path: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fs = lt.file_storage()
        lt.add_files(fs, str(path))
        return int(lt.create_torrent(fs, 0, 0).piece_length())


def mktorrent(path: Path, piece_length: int, out: Path, *extra: str) -> Path:
    """Run mktorrent (piece length must be 2^15 .. 2^28)."""
    require_tool("mktorrent")
    log2 = piece_length.bit_length() - 1
    subprocess.run(
        ["mktorrent", "-l", str(log2), "-o", str(out), *extra, str(path)],
        check=True,
        capture_output=True,
    )
    return out
