"""BitTorrent metainfo: create (v1, v2, hybrid), read with validation, verify data.

Reproducible by construction: for the same content and piece length the info
dictionary is byte-identical to the reference tools' --

* v1: ``mktorrent`` (files sorted by their whole relative path, byte order;
  no pad files);
* v2 and hybrid: libtorrent 2.x ``create_torrent`` (files sorted path
  component by component as the BEP 52 file tree orders them; in hybrid
  torrents every non-empty file of a multi-file torrent is followed by a BEP
  47 pad file ``.pad/<size>`` with ``attr: p`` up to the next piece boundary,
  the last file included; a torrent of one file gets none).

The info dictionary holds only ``name``, ``piece length``, ``pieces`` /
``length`` / ``files`` (v1), ``file tree`` / ``meta version`` (v2) and
``private`` when asked: no creation date, creator or file attributes (an
executable bit is not content), so nothing about the machine leaks into the
infohash. Everything else (trackers, web seeds, comment, creator, date) lives
outside the info dictionary.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from phonotheque import __version__
from phonotheque.errors import InputError, TorrentError, wrap_os_error
from phonotheque.torrent import _bencode as bencode
from phonotheque.torrent import _hashing as hashing
from phonotheque.torrent._metainfo import (
    MAX_PIECES,
    MIN_V2_PIECE,
    PAD_DIR,
    TorrentInfo,
    Version,
    _check_component,
    _check_piece_length,
    read_torrent,
)

_AUTO_PIECE_THRESHOLDS = (
    2684355,
    10737418,
    42949673,
    171798692,
    687194767,
    2748779069,
    10995116278,
    43980465111,
    175921860444,
    703687441777,
)


def auto_piece_length(total_size: int) -> int:
    """The piece length libtorrent 2.x picks for ``total_size`` bytes."""
    i = 0
    for threshold in _AUTO_PIECE_THRESHOLDS:
        if threshold >= total_size:
            break
        i += 1
    return MIN_V2_PIECE << i


@dataclass(frozen=True)
class TorrentOptions:
    """How to build a torrent. ``creation_date`` None writes no date (reproducible bytes)."""

    version: Version = "hybrid"
    piece_length: int | None = None  # None: libtorrent's automatic choice
    name: str | None = None  # None: the file or folder name
    trackers: tuple[str, ...] = ()
    webseeds: tuple[str, ...] = ()
    comment: str | None = None
    created_by: str | None = f"phonotheque {__version__}"
    creation_date: int | None = None
    private: bool = False
    workers: int | None = None  # hashing threads; None: every core
    # Hash large inputs on worker processes (faster on a busy machine); the
    # program's __main__ must be import-safe, as the phono command is.
    processes: bool = False


@dataclass(frozen=True)
class _Source:
    parts: tuple[str, ...]  # path components relative to the torrent folder
    path: Path
    size: int
    mtime_ns: int


def _scan(path: Path) -> tuple[list[_Source], bool]:
    """Files under ``path`` (regular files, symlinks to files followed) and whether it is a folder."""
    try:
        st = path.stat()
    except OSError as exc:
        raise wrap_os_error(exc, path) from exc
    if not path.is_dir():
        return [_Source((path.name,), path, st.st_size, st.st_mtime_ns)], False
    found: list[_Source] = []

    def walk(folder: Path, parts: tuple[str, ...]) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise wrap_os_error(exc, folder) from exc
        for entry in entries:
            p = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    walk(p, (*parts, entry.name))
                elif entry.is_file():
                    est = entry.stat()
                    found.append(_Source((*parts, entry.name), p, est.st_size, est.st_mtime_ns))
            except OSError as exc:
                raise wrap_os_error(exc, p) from exc

    walk(path, ())
    for src in found:
        for part in src.parts:
            try:
                part.encode("utf-8")
            except UnicodeEncodeError:
                raise TorrentError(src.path, "file name is not valid UTF-8") from None
    return found, True


def content_size(path: Path) -> int:
    """Bytes ``create_torrent`` will hash for ``path`` (for progress bars)."""
    return sum(s.size for s in _scan(Path(path))[0])


def _v1_order(src: _Source) -> bytes:
    # mktorrent sorts by the whole path with strcmp: '/' is just a byte.
    return "/".join(src.parts).encode("utf-8")


def _v2_order(src: _Source) -> tuple[bytes, ...]:
    # BEP 52 file trees are dictionaries with sorted keys: compare per component.
    return tuple(p.encode("utf-8") for p in src.parts)


def create_torrent(
    path: Path, options: TorrentOptions, progress: Callable[[int], object] | None = None
) -> TorrentInfo:
    """Hash ``path`` (a file or a folder) and build its torrent; ``progress`` gets bytes hashed."""
    path = Path(path)
    sources, is_dir = _scan(path)
    name = options.name or path.resolve().name
    piece_length = _checked_piece_length(path, name, sources, options)
    if not is_dir:
        # A single-file torrent's file is called by the torrent's name.
        sources = [_Source((name,), sources[0].path, sources[0].size, sources[0].mtime_ns)]
    info: dict[str, object] = {"name": name, "piece length": piece_length}
    if options.private:
        info["private"] = 1
    layers: dict[bytes, bytes] = {}
    if options.version == "1":
        info.update(_v1_info(sources, is_dir, piece_length, options, progress))
    else:
        fields, layers = _v2_info(sources, is_dir, piece_length, options, progress)
        info.update(fields)
    _check_unchanged(sources)
    # Re-read what we built: the same validation every foreign torrent gets.
    return read_torrent(bencode.encode(_metainfo(info, layers, options)))


def _checked_piece_length(
    path: Path, name: str, sources: list[_Source], options: TorrentOptions
) -> int:
    """Refuse what cannot become a torrent; the piece length to use."""
    _check_component(name, "name", TorrentError)
    total = sum(s.size for s in sources)
    if not sources:
        raise TorrentError(path, "no files to put in a torrent")
    if total == 0:
        raise TorrentError(path, "all files are empty; a torrent needs at least one byte")
    version = options.version
    if version not in ("1", "2", "hybrid"):
        raise TorrentError(version, "unknown torrent version (expected 1, 2 or hybrid)")
    piece_length = options.piece_length or auto_piece_length(total)
    _check_piece_length(piece_length, version != "1", path)
    if -(-total // piece_length) > MAX_PIECES:
        raise TorrentError(path, f"piece length {piece_length} gives more than {MAX_PIECES} pieces")
    return piece_length


def _v1_info(
    sources: list[_Source],
    is_dir: bool,
    piece_length: int,
    options: TorrentOptions,
    progress: Callable[[int], object] | None,
) -> dict[str, object]:
    """The v1 fields of the info dictionary: ``pieces`` and ``files`` or ``length``."""
    sources.sort(key=_v1_order)
    segs = [hashing.Segment(s.path, s.size) for s in sources]
    hashes = hashing.hash_stream(
        segs, piece_length, workers=options.workers, progress=progress, processes=options.processes
    )
    assert hashes.pieces is not None
    info: dict[str, object] = {"pieces": b"".join(hashes.pieces)}
    if is_dir:
        info["files"] = [{"length": s.size, "path": list(s.parts)} for s in sources]
    else:
        info["length"] = sources[0].size
    return info


def _v2_info(
    sources: list[_Source],
    is_dir: bool,
    piece_length: int,
    options: TorrentOptions,
    progress: Callable[[int], object] | None,
) -> tuple[dict[str, object], dict[bytes, bytes]]:
    """The v2 (and for hybrid, v1) fields of the info dictionary, and the piece layers."""
    sources.sort(key=_v2_order)
    v1 = options.version == "hybrid"
    # libtorrent pads after every non-empty file, the last included, but
    # never when the torrent has a single file (even inside a folder).
    padded = v1 and len(sources) > 1
    pads = [(-s.size) % piece_length if padded and s.size else 0 for s in sources]
    segs = [hashing.Segment(s.path, s.size, pad) for s, pad in zip(sources, pads, strict=True)]
    hashes = hashing.hash_aligned(
        segs,
        piece_length,
        v1=v1,
        v2=True,
        workers=options.workers,
        progress=progress,
        processes=options.processes,
    )
    assert hashes.roots is not None and hashes.layers is not None
    tree, layers = _file_tree(sources, hashes.roots, hashes.layers)
    info: dict[str, object] = {"file tree": tree, "meta version": 2}
    if v1:
        assert hashes.pieces is not None
        info["pieces"] = b"".join(hashes.pieces)
        if is_dir:
            info["files"] = _padded_v1_files(sources, pads)
        else:
            info["length"] = sources[0].size
    return info, layers


def _file_tree(
    sources: list[_Source], roots: list[bytes | None], file_layers: list[list[bytes]]
) -> tuple[dict[str, object], dict[bytes, bytes]]:
    """BEP 52's ``file tree`` and ``piece layers`` (files of more than one piece only)."""
    tree: dict[str, object] = {}
    layers: dict[bytes, bytes] = {}
    for src, root, layer in zip(sources, roots, file_layers, strict=True):
        leaf: dict[str, object] = {"length": src.size}
        if root is not None:
            leaf["pieces root"] = root
            if len(layer) > 1:
                layers[root] = b"".join(layer)
        node = tree
        for part in src.parts[:-1]:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[src.parts[-1]] = {"": leaf}
    return tree, layers


def _padded_v1_files(sources: list[_Source], pads: list[int]) -> list[dict[str, object]]:
    """A hybrid torrent's v1 file list: each file followed by its BEP 47 pad file, if any."""
    files: list[dict[str, object]] = []
    for src, pad in zip(sources, pads, strict=True):
        files.append({"length": src.size, "path": list(src.parts)})
        if pad:
            files.append({"attr": "p", "length": pad, "path": [PAD_DIR, str(pad)]})
    return files


def _metainfo(
    info: dict[str, object], layers: dict[bytes, bytes], options: TorrentOptions
) -> dict[str, object]:
    """The whole metainfo: ``info`` and what lives outside it (trackers, web seeds, comment...)."""
    top: dict[str, object] = {"info": info}
    if layers:
        top["piece layers"] = layers
    if options.trackers:
        top["announce"] = options.trackers[0]
        if len(options.trackers) > 1:
            top["announce-list"] = [[t] for t in options.trackers]
    if options.webseeds:
        top["url-list"] = list(options.webseeds)
    if options.comment:
        top["comment"] = options.comment
    if options.created_by:
        top["created by"] = options.created_by
    if options.creation_date is not None:
        top["creation date"] = options.creation_date
    return top


def _check_unchanged(sources: list[_Source]) -> None:
    """Files that changed while being hashed would give a torrent of no real data."""
    for src in sources:
        try:
            st = src.path.stat()
        except OSError as exc:
            raise wrap_os_error(exc, src.path) from exc
        if (st.st_size, st.st_mtime_ns) != (src.size, src.mtime_ns):
            raise InputError(src.path, "file changed while it was being hashed; try again")
