"""Checking downloaded data against a torrent: v1 pieces and v2 per-file merkle roots."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from phonotheque.errors import wrap_os_error
from phonotheque.torrent import _hashing as hashing
from phonotheque.torrent._metainfo import TorrentFile, TorrentInfo


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify_torrent`` found; paths are relative to ``root``."""

    root: Path
    files_checked: int
    bytes_checked: int
    missing: tuple[str, ...] = ()
    truncated: tuple[str, ...] = ()  # shorter than the torrent says
    oversized: tuple[str, ...] = ()  # longer than the torrent says
    corrupt: tuple[str, ...] = ()  # right size, wrong content
    extra: tuple[str, ...] = ()  # on disk but not in the torrent
    bad_pieces: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.truncated or self.oversized or self.corrupt or self.extra)


def content_root(info: TorrentInfo, data_dir: Path) -> Path:
    """The folder the torrent's paths are relative to.

    ``data_dir`` is where a client saves the torrent (it holds the file of a
    single-file torrent, or the torrent's folder); given the torrent's folder
    itself, that folder is used.
    """
    data_dir = Path(data_dir)
    if not info.multi_file:
        # A v2 torrent of a folder holding one file reads as a single-file
        # torrent; its creator's copy still sits in the folder named ``name``.
        only = info.data_files[0].path
        if not (data_dir / only).exists() and (data_dir / info.name / only).is_file():
            return data_dir / info.name
        return data_dir
    candidate = data_dir / info.name
    if candidate.is_dir() or not data_dir.is_dir():
        return candidate
    first = info.data_files[0].path
    return data_dir if (data_dir / first).exists() or data_dir.name == info.name else candidate


def verify_torrent(
    info: TorrentInfo, data_dir: Path, progress: Callable[[int], object] | None = None
) -> VerifyReport:
    """Check the data under ``data_dir`` (the folder holding the torrent's file or folder).

    v1 pieces are checked, and per-file merkle roots for v2 and hybrid
    torrents, reading every byte once. Missing, truncated, oversized, corrupt
    and unexpected files are reported by path.
    """
    root = content_root(info, data_dir)

    def where(f: TorrentFile) -> Path:
        return root.joinpath(*f.path.split("/"))

    missing: list[str] = []
    truncated: list[str] = []
    oversized: list[str] = []
    for f in info.data_files:
        try:
            size = where(f).stat().st_size
        except FileNotFoundError:
            missing.append(f.path)
            continue
        except OSError as exc:
            raise wrap_os_error(exc, where(f)) from exc
        if size < f.size:
            truncated.append(f.path)
        elif size > f.size:
            oversized.append(f.path)
    unreadable = set(missing) | set(truncated)

    corrupt: set[str] = set()
    bad_pieces = 0
    files = list(info.files)
    if info.infohash_v2:
        data = [f for f in files if not f.is_pad]
        pl = info.piece_length
        span_end = max(f.offset + f.size for f in files)
        # One pass hashes both when every file starts on a piece boundary and
        # only its own zero padding fills the rest of its last piece.
        do_v1 = info.infohash_v1 is not None
        one_pass = do_v1 and sum(-(-f.size // pl) for f in data) == info.num_pieces
        segs = [
            hashing.Segment(where(f), f.size, min((-f.size) % pl, span_end - f.offset - f.size),
                            absent=f.path in unreadable)
            for f in data
        ]
        hashes = hashing.hash_aligned(
            segs, pl, v1=one_pass, v2=True, strict=False, progress=progress
        )
        assert hashes.roots is not None
        for f, got in zip(data, hashes.roots, strict=True):
            if f.size and got != f.pieces_root and f.path not in unreadable:
                corrupt.add(f.path)
        if one_pass:
            assert hashes.pieces is not None
            bad = _bad_pieces(info, hashes.pieces)
            bad_pieces = len(bad)
            corrupt |= _files_of_pieces(info, bad) - unreadable
        elif do_v1:
            bad_pieces = _verify_stream(info, files, where, unreadable, corrupt)
    elif len(unreadable) == len(info.data_files):
        pass  # nothing on disk to hash
    else:
        bad_pieces = _verify_stream(info, files, where, unreadable, corrupt, progress)

    extra: list[str] = []
    if info.multi_file and root.is_dir():
        # Only a torrent's own folder can hold unexpected files. Pad files are
        # expected: clients without BEP 47 (aria2) write them out as zeros.
        expected = {f.path for f in info.files}
        for dirpath, _dirs, names in os.walk(root):
            for n in names:
                rel = Path(dirpath, n).relative_to(root).as_posix()
                if rel not in expected:
                    extra.append(rel)
    return VerifyReport(
        root=root,
        files_checked=len(info.data_files),
        bytes_checked=info.total_size,
        missing=tuple(missing),
        truncated=tuple(truncated),
        oversized=tuple(oversized),
        corrupt=tuple(sorted(corrupt - set(oversized), key=[f.path for f in files].index)),
        extra=tuple(sorted(extra)),
        bad_pieces=bad_pieces,
    )


def _verify_stream(
    info: TorrentInfo,
    files: list[TorrentFile],
    where: Callable[[TorrentFile], Path],
    unreadable: set[str],
    corrupt: set[str],
    progress: Callable[[int], object] | None = None,
) -> int:
    segs = [hashing.Segment(None if f.is_pad else where(f), f.size, absent=f.path in unreadable)
            for f in files]
    hashes = hashing.hash_stream(segs, info.piece_length, strict=False, progress=progress)
    assert hashes.pieces is not None
    bad = _bad_pieces(info, hashes.pieces)
    corrupt |= _files_of_pieces(info, bad) - unreadable
    return len(bad)


def _bad_pieces(info: TorrentInfo, got: list[bytes]) -> list[int]:
    """Pieces whose hash differs; ``b""`` marks a piece not hashed (it touches an absent file)."""
    want = info.pieces
    return [i for i, h in enumerate(got) if h and want[20 * i : 20 * i + 20] != h]


def _files_of_pieces(info: TorrentInfo, bad: Iterable[int]) -> set[str]:
    """The files the pieces ``bad`` touch: one sweep over pieces and files, both in order."""
    pl = info.piece_length
    out: set[str] = set()
    data = [f for f in info.files if not f.is_pad and f.size]  # in stream order
    i = 0
    for p in sorted(bad):
        a, b = p * pl, (p + 1) * pl
        while i < len(data) and data[i].offset + data[i].size <= a:
            i += 1
        j = i
        while j < len(data) and data[j].offset < b:
            out.add(data[j].path)
            j += 1
    return out
