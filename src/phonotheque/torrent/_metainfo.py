"""Torrent metainfo as read: the model and strict validation of foreign .torrent files.

Everything a hostile or broken torrent can do is refused with a reason:
not bencode, missing keys, path traversal or names we would have to rewrite,
symlinks, duplicate paths, piece counts that do not fit the size, v2 file
trees and piece layers that do not hash to their roots, hybrids whose v1 and
v2 halves disagree. The infohashes are computed over the info dictionary's
bytes exactly as they appear in the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from phonotheque.errors import TorrentError, wrap_os_error
from phonotheque.torrent import _bencode as bencode
from phonotheque.torrent import _merkle as merkle
from phonotheque.torrent._magnet import magnet_link

Version = Literal["1", "2", "hybrid"]

MIN_V2_PIECE = 16 * 1024
MAX_PIECE_LENGTH = 1 << 29  # 512 MiB; larger pieces are not useful and hostile files use them
MAX_PIECES = 0x200000  # libtorrent's default load limit
PAD_DIR = ".pad"
# Piece layers of MAX_PIECES pieces take 64 MiB; nothing valid is much larger.
MAX_METAINFO = 100 << 20
NAME_MAX = 255  # bytes per path component on common file systems

# libtorrent 2.x automatic piece size: the first threshold the total size does
# not exceed picks 16 KiB << index (up to 16 MiB). Derived so that the v1 hash
# list is about sqrt(total size) * 2 bytes.


@dataclass(frozen=True)
class TorrentFile:
    """One file of a torrent, in torrent order.

    ``path`` is POSIX and relative to the torrent's folder (for a single-file
    torrent it is the file name). ``offset`` is where the file starts in the
    piece space (v1 concatenation, or the piece-aligned v2 layout).
    """

    path: str
    size: int
    pieces_root: bytes | None = None
    attr: str = ""
    offset: int = 0

    @property
    def is_pad(self) -> bool:
        return "p" in self.attr


@dataclass(frozen=True)
class TorrentInfo:
    """A parsed, validated torrent; ``metainfo`` is the exact .torrent bytes."""

    name: str
    files: tuple[TorrentFile, ...]  # torrent order, pad files included (attr 'p')
    piece_length: int
    total_size: int  # payload bytes, pad files excluded
    infohash_v1: str | None
    infohash_v2: str | None
    metainfo: bytes
    multi_file: bool
    pieces: bytes = b""  # v1 SHA-1 piece hashes, concatenated
    piece_layers: dict[bytes, bytes] = field(default_factory=dict, repr=False)
    trackers: tuple[str, ...] = ()
    webseeds: tuple[str, ...] = ()
    comment: str | None = None
    created_by: str | None = None
    creation_date: int | None = None
    private: bool = False

    @property
    def version(self) -> Version:
        if self.infohash_v1 and self.infohash_v2:
            return "hybrid"
        return "2" if self.infohash_v2 else "1"

    @property
    def data_files(self) -> tuple[TorrentFile, ...]:
        return tuple(f for f in self.files if not f.is_pad)

    @property
    def num_pieces(self) -> int:
        if self.infohash_v1:
            return len(self.pieces) // 20
        end = max((f.offset + f.size for f in self.files), default=0)
        return -(-end // self.piece_length)

    def magnet(self) -> str:
        return magnet_link(self.infohash_v1, self.infohash_v2, self.name, self.trackers)


def _check_piece_length(n: int, v2: bool, subject: object) -> None:
    if n <= 0 or n > MAX_PIECE_LENGTH:
        raise TorrentError(subject, f"piece length {n} is out of range (1 .. {MAX_PIECE_LENGTH})")
    if v2 and (n < MIN_V2_PIECE or n & (n - 1)):
        raise TorrentError(
            subject, f"piece length {n} must be a power of two >= 16 KiB in a v2 torrent"
        )


def _check_component(part: str, what: str, err: type[TorrentError] = TorrentError) -> None:
    # Stricter than libtorrent, which rewrites such names: a name we would have
    # to rewrite is a path the torrent does not really describe (and "..", "/"
    # or "\\" are how hostile torrents escape the download folder).
    if part in ("", ".", ".."):
        raise err(what, f"{part!r} is not a usable file name")
    for bad in ("/", "\\", "\x00"):
        if bad in part:
            raise err(what, f"{part!r} contains {bad!r} (path traversal or foreign separator)")
    if len(part.encode("utf-8")) > NAME_MAX:
        raise err(what, f"file name longer than {NAME_MAX} bytes")


class _Reader:
    """Validation of one metainfo, raising TorrentError with a specific reason."""

    def __init__(self, subject: str) -> None:
        self.subject = subject

    def fail(self, problem: str) -> TorrentError:
        return TorrentError(self.subject, problem)

    def text(self, value: object, what: str) -> str:
        if not isinstance(value, bytes):
            raise self.fail(f"{what} is not a string")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8") from None

    def component(self, value: object, what: str) -> str:
        s = self.text(value, what)
        try:
            _check_component(s, what)
        except TorrentError as exc:
            raise self.fail(f"{what}: {exc.problem}") from None
        return s

    def length(self, value: object, what: str) -> int:
        if not isinstance(value, int) or value < 0:
            raise self.fail(f"{what} is not a non-negative integer")
        return value

    def attr(self, value: object, where: str) -> str:
        if value is None:
            return ""
        a = self.text(value, f"attr of {where}")
        if "l" in a:
            # We never create symlinks and refuse to follow them out of a download.
            raise self.fail(f"{where} is a symlink; symlinks in torrents are not supported")
        return a


def read_torrent(source: Path | str | bytes) -> TorrentInfo:
    """Parse and validate a .torrent (path or bytes); raise TorrentError saying why it is refused."""
    if isinstance(source, bytes | bytearray | memoryview):
        data, subject = bytes(source), "torrent"
    else:
        subject = str(source)
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_METAINFO + 1)
        except OSError as exc:
            raise wrap_os_error(exc, source) from exc
    if len(data) > MAX_METAINFO:
        raise TorrentError(
            subject, f"larger than {MAX_METAINFO >> 20} MiB; not a torrent we accept"
        )
    return _parse(data, subject)


def _parse(data: bytes, subject: str) -> TorrentInfo:
    r = _Reader(subject)
    if not data:
        raise r.fail("empty file")
    top, spans = bencode.decode_with_spans(data, subject, allow_trailing=True)
    if not isinstance(top, dict):
        raise r.fail("not a torrent: the file is not a bencoded dictionary")
    info = top.get(b"info")
    if not isinstance(info, dict):
        raise r.fail("missing or invalid 'info' dictionary")
    info_bytes = data[slice(*spans[b"info"])]

    if b"name" not in info:
        raise r.fail("missing 'name' in the info dictionary")
    name = r.component(info[b"name"], "name")
    piece_length = info.get(b"piece length")
    if not isinstance(piece_length, int):
        raise r.fail("missing or invalid 'piece length'")
    meta_version = info.get(b"meta version")
    has_v2 = b"file tree" in info or meta_version is not None
    has_v1 = b"pieces" in info or not has_v2
    if has_v2 and meta_version != 2:
        raise r.fail(f"unsupported 'meta version' {meta_version!r} (expected 2)")
    try:
        _check_piece_length(piece_length, has_v2, "piece length")
    except TorrentError as exc:
        raise r.fail(exc.problem) from None

    v1_files: list[TorrentFile] | None = None
    v1_multi = False
    if has_v1:
        v1_files, v1_multi = _v1_files(r, info, name)
    v2_files: list[TorrentFile] | None = None
    v2_multi = False
    if has_v2:
        v2_files, v2_multi = _v2_files(r, info, name)

    if v1_files is not None and v2_files is not None:
        files = _merge_hybrid(r, v1_files, v2_files, piece_length)
        multi = v1_multi
    elif v1_files is not None:
        files, multi = v1_files, v1_multi
    else:
        assert v2_files is not None
        files, multi = v2_files, v2_multi

    _check_duplicates(r, files)
    data_files = [f for f in files if not f.is_pad]
    total = sum(f.size for f in data_files)
    if not data_files:
        raise r.fail("no files in the torrent")
    if total == 0:
        raise r.fail("invalid length: the torrent holds no data (every file is empty)")
    span = max(f.offset + f.size for f in files)
    n_pieces = -(-span // piece_length)
    if n_pieces > MAX_PIECES:
        raise r.fail(f"too many pieces ({n_pieces} > {MAX_PIECES}) for its piece length")

    pieces = b""
    if has_v1:
        raw = info.get(b"pieces")
        if not isinstance(raw, bytes):
            raise r.fail("missing or invalid 'pieces'")
        if len(raw) % 20:
            raise r.fail("'pieces' is not a whole number of 20-byte SHA-1 hashes")
        if len(raw) // 20 != n_pieces:
            raise r.fail(f"{len(raw) // 20} piece hashes for {n_pieces} pieces of {span} bytes")
        pieces = raw

    layers: dict[bytes, bytes] = {}
    if has_v2:
        layers = _piece_layers(r, top.get(b"piece layers"), data_files, piece_length)

    private = info.get(b"private") == 1
    return TorrentInfo(
        name=name,
        files=tuple(files),
        piece_length=piece_length,
        total_size=total,
        infohash_v1=hashlib.sha1(info_bytes).hexdigest() if has_v1 else None,
        infohash_v2=hashlib.sha256(info_bytes).hexdigest() if has_v2 else None,
        metainfo=data,
        multi_file=multi,
        pieces=pieces,
        piece_layers=layers,
        trackers=_trackers(top),
        webseeds=_strings(top.get(b"url-list")),
        comment=_opt_text(top.get(b"comment")),
        created_by=_opt_text(top.get(b"created by")),
        creation_date=top[b"creation date"] if isinstance(top.get(b"creation date"), int) else None,  # type: ignore[arg-type]
        private=private,
    )


def _v1_files(
    r: _Reader, info: dict[bytes, bencode.Value], name: str
) -> tuple[list[TorrentFile], bool]:
    if b"files" in info:
        entries = info[b"files"]
        if not isinstance(entries, list):
            raise r.fail("'files' is not a list")
        out: list[TorrentFile] = []
        offset = 0
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                raise r.fail(f"file #{i} is not a dictionary")
            attr = r.attr(e.get(b"attr"), f"file #{i}")
            size = r.length(e.get(b"length"), f"length of file #{i}")
            raw_path = e.get(b"path")
            if "p" in attr and raw_path is None:
                parts = [PAD_DIR, str(size)]  # BEP 47 pad files may omit their path
            else:
                if not isinstance(raw_path, list) or not raw_path:
                    raise r.fail(f"file #{i} has a missing or empty 'path' list")
                parts = [r.component(p, f"path of file #{i}") for p in raw_path]
            out.append(TorrentFile("/".join(parts), size, None, attr, offset))
            offset += size
        return out, True
    if b"length" in info:
        size = r.length(info[b"length"], "length")
        return [TorrentFile(name, size, None, r.attr(info.get(b"attr"), "the file"), 0)], False
    raise r.fail("neither 'length' nor 'files' in the info dictionary")


def _v2_files(
    r: _Reader, info: dict[bytes, bencode.Value], name: str
) -> tuple[list[TorrentFile], bool]:
    tree = info.get(b"file tree")
    if not isinstance(tree, dict) or not tree:
        raise r.fail("missing or empty 'file tree'")
    piece_length = info[b"piece length"]
    assert isinstance(piece_length, int)
    out: list[TorrentFile] = []
    offset = 0

    def walk(node: dict[bytes, bencode.Value], parts: list[str]) -> None:
        nonlocal offset
        keys = list(node)
        if keys != sorted(keys):
            raise r.fail(f"file tree keys under {'/'.join(parts) or '/'} are not sorted")
        for key in keys:
            child = node[key]
            where = "/".join([*parts, key.decode("utf-8", "replace")])
            if not isinstance(child, dict):
                raise r.fail(f"file tree entry {where!r} is not a dictionary")
            part = r.component(key, f"file tree entry {where!r}")
            if b"" in child:
                if len(child) != 1:
                    raise r.fail(f"{where!r} is both a file and a folder")
                leaf = child[b""]
                if not isinstance(leaf, dict):
                    raise r.fail(f"file {where!r} has an invalid entry")
                attr = r.attr(leaf.get(b"attr"), f"file {where!r}")
                if "p" in attr:
                    raise r.fail(f"file {where!r} has the pad attribute in the v2 file tree")
                size = r.length(leaf.get(b"length"), f"length of {where!r}")
                root = leaf.get(b"pieces root")
                if size:
                    if not isinstance(root, bytes) or len(root) != 32:
                        raise r.fail(f"file {where!r} has no valid 'pieces root'")
                    if root == merkle.ZERO:
                        raise r.fail(f"file {where!r} has an all-zero 'pieces root'")
                elif root is not None and not isinstance(root, bytes):
                    raise r.fail(f"file {where!r} has an invalid 'pieces root'")
                out.append(TorrentFile("/".join([*parts, part]), size, root or None, attr, offset))
                offset += -(-size // piece_length) * piece_length
            else:
                if not child:
                    raise r.fail(f"empty folder {where!r} in the file tree")
                walk(child, [*parts, part])

    walk(tree, [])
    # One file at the top of the tree is a single-file torrent, named by its
    # key (as libtorrent reads it, even when ``name`` says otherwise).
    if len(tree) == 1 and len(out) == 1 and "/" not in out[0].path:
        return out, False
    return out, True


def _merge_hybrid(
    r: _Reader, v1: list[TorrentFile], v2: list[TorrentFile], piece_length: int
) -> list[TorrentFile]:
    """Check that the v1 and v2 views describe the same files, aligned; keep v1 order and pads."""
    v1_data = [f for f in v1 if not f.is_pad]
    if [(f.path, f.size) for f in v1_data] != [(f.path, f.size) for f in v2]:
        raise r.fail("the v1 and v2 file lists of this hybrid torrent do not match")
    merged: list[TorrentFile] = []
    it = iter(v2)
    for f in v1:
        if f.is_pad:
            merged.append(f)
            continue
        f2 = next(it)
        if f.size and f.offset % piece_length:
            raise r.fail(f"file {f.path!r} does not start on a piece boundary in a hybrid torrent")
        merged.append(TorrentFile(f.path, f.size, f2.pieces_root, f.attr, f.offset))
    return merged


def _check_duplicates(r: _Reader, files: list[TorrentFile]) -> None:
    # libtorrent renames duplicates; two entries for one path cannot both be verified.
    seen: set[str] = set()
    folders: set[str] = set()
    for f in files:
        if f.is_pad:
            continue
        if f.path in seen or f.path in folders:
            raise r.fail(f"path {f.path!r} appears twice")
        seen.add(f.path)
        parts = f.path.split("/")
        for i in range(1, len(parts)):
            folders.add("/".join(parts[:i]))
    clash = seen & folders
    if clash:
        raise r.fail(f"path {sorted(clash)[0]!r} is both a file and a folder")


def _piece_layers(
    r: _Reader, raw: object, files: list[TorrentFile], piece_length: int
) -> dict[bytes, bytes]:
    """Validate ``piece layers``: present layers must hash to their file's root.

    Missing layers are allowed (clients fetch them from peers), as libtorrent does.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise r.fail("'piece layers' is not a dictionary")
    big = {f.pieces_root: f for f in files if f.size > piece_length and f.pieces_root}
    pad = merkle.pad_hash(piece_length // merkle.BLOCK)
    for key, layer in raw.items():
        f = big.get(key)
        if f is None:
            raise r.fail("a piece layer belongs to no file larger than one piece")
        n = -(-f.size // piece_length)
        if not isinstance(layer, bytes) or len(layer) != 32 * n:
            raise r.fail(f"piece layer of {f.path!r} should hold {n} hashes")
        hashes = [layer[i : i + 32] for i in range(0, len(layer), 32)]
        if merkle.root(hashes, merkle.next_pow2(n), pad) != key:
            raise r.fail(f"piece layer of {f.path!r} does not hash to its pieces root")
    return dict(raw)  # type: ignore[arg-type]


def _opt_text(v: object) -> str | None:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else None


def _strings(v: object) -> tuple[str, ...]:
    if isinstance(v, bytes):
        return (v.decode("utf-8", "replace"),) if v.strip() else ()
    if isinstance(v, list):
        return tuple(x.decode("utf-8", "replace") for x in v if isinstance(x, bytes) and x.strip())
    return ()


def _trackers(top: dict[bytes, bencode.Value]) -> tuple[str, ...]:
    out: list[str] = []
    tiers = top.get(b"announce-list")
    if isinstance(tiers, list):
        for tier in tiers:
            out.extend(_strings(tier))
    out.extend(_strings(top.get(b"announce")))
    return tuple(dict.fromkeys(t.strip() for t in out))
