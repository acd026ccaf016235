"""Parallel piece hashing: v1 SHA-1 pieces and v2 SHA-256 merkle trees in one read.

Threads, not processes: ``hashlib`` releases the GIL while hashing buffers
larger than 2 KiB, so threads hashing large reads keep every core busy and
share the read buffers without copies or pickling. Each byte is read once
(``readinto`` a preallocated per-thread buffer) and fed to SHA-1 (v1 pieces)
and SHA-256 (16 KiB v2 leaves) from the same memory.

Two layouts:

* *aligned* (v2 and hybrid): every file starts on a piece boundary (hybrid
  torrents get BEP 47 pad files), so work is split per file into chunks of
  whole pieces; a file's last v1 piece is completed with its zero padding.
* *stream* (v1): pieces run across file boundaries, so work is split into
  ranges of pieces of the concatenated files.

Reading a file that is missing or shorter than expected either raises (when
creating a torrent: the data changed under us) or hashes zeros and records
the problem (when verifying).
"""

from __future__ import annotations

import bisect
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from phonotheque.errors import InputError, wrap_os_error
from phonotheque.pack.merkle import BLOCK, ZERO, file_root, next_pow2, pad_hash

CHUNK = 8 * 1024 * 1024  # bytes per task: large reads, few tasks


@dataclass(frozen=True)
class Segment:
    """One file of the torrent as the hasher sees it.

    ``path`` None means zeros (a pad file, stream layout only). ``tail_pad``
    is the zero padding that follows the file in the v1 stream (aligned
    layout only).
    """

    path: Path | None
    size: int
    tail_pad: int = 0


@dataclass
class Hashes:
    pieces: list[bytes] | None  # v1 SHA-1 piece hashes, in order
    layers: list[list[bytes]] | None  # v2 piece-layer hashes per segment
    roots: list[bytes | None] | None  # v2 pieces root per segment (None: empty file)
    problems: dict[int, str] = field(default_factory=dict)  # segment -> missing/truncated


class _Buffers(threading.local):
    buf: bytearray | None = None


_LOCAL = _Buffers()
_ZEROS = bytes(CHUNK)


def _buffer(n: int) -> memoryview:
    buf = _LOCAL.buf
    if buf is None or len(buf) < n:
        buf = _LOCAL.buf = bytearray(max(n, CHUNK))
    return memoryview(buf)[:n]


def _zeros(n: int) -> bytes:
    return _ZEROS[:n] if n <= len(_ZEROS) else bytes(n)


class _Reader:
    """Fills buffers from files; strict mode raises on short data, lenient mode zero-fills."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.problems: dict[int, str] = {}
        self.lock = threading.Lock()

    def read(self, index: int, seg: Segment, offset: int, out: memoryview) -> None:
        assert seg.path is not None
        got = 0
        try:
            with open(seg.path, "rb", buffering=0) as f:
                if offset:
                    f.seek(offset)
                while got < len(out):
                    n = f.readinto(out[got:])
                    if not n:
                        break
                    got += n
        except FileNotFoundError as exc:
            if self.strict:
                raise wrap_os_error(exc, seg.path) from exc
            self._note(index, "missing")
        except OSError as exc:
            if self.strict:
                raise wrap_os_error(exc, seg.path) from exc
            self._note(index, "unreadable")
        if got < len(out):
            if self.strict:
                raise InputError(seg.path, "file shrank while it was being hashed")
            out[got:] = _zeros(len(out) - got)
            self._note(index, "truncated")

    def _note(self, index: int, problem: str) -> None:
        with self.lock:
            self.problems.setdefault(index, problem)


# ---------------------------------------------------------------- aligned layout


@dataclass(frozen=True)
class _Part:
    index: int  # segment index
    first_piece: int  # piece index within the file
    start: int  # byte offset within the file
    length: int


def _hash_parts(
    parts: list[_Part], segs: list[Segment], piece_length: int, v1: bool, v2: bool, reader: _Reader
) -> list[tuple[_Part, list[bytes], list[bytes]]]:
    sha1, sha256 = hashlib.sha1, hashlib.sha256
    per_piece = piece_length // BLOCK
    out = []
    for part in parts:
        seg = segs[part.index]
        mv = _buffer(part.length)
        reader.read(part.index, seg, part.start, mv)
        ends_file = part.start + part.length == seg.size
        p1: list[bytes] = []
        leaves: list[bytes] = []
        # Piece by piece, so SHA-1 and SHA-256 read the same bytes while they
        # are still in the CPU cache.
        for off in range(0, part.length, piece_length):
            piece = mv[off : off + piece_length]
            n = len(piece)
            if v1:
                h = sha1(piece)
                if n < piece_length and ends_file and seg.tail_pad:
                    h.update(_zeros(seg.tail_pad))
                p1.append(h.digest())
            if v2:
                leaves.extend([sha256(piece[i : i + BLOCK]).digest() for i in range(0, n, BLOCK)])
        p2: list[bytes] = []
        if v2:
            # A file smaller than a piece is its own tree (next power of two
            # leaves); otherwise each piece is a full subtree of per_piece
            # leaves, the last one completed with zero leaves. Reduce every
            # piece of the part together, one tree level at a time.
            group = next_pow2(len(leaves)) if seg.size < piece_length else per_piece
            leaves.extend([ZERO] * (-len(leaves) % group))
            layer = leaves
            while group > 1:
                layer = [sha256(a + b).digest() for a, b in zip(layer[0::2], layer[1::2], strict=True)]
                group //= 2
            p2 = layer
        out.append((part, p1, p2))
    return out


def _aligned_tasks(segs: list[Segment], piece_length: int) -> Iterator[list[_Part]]:
    chunk = max(piece_length, CHUNK // piece_length * piece_length)
    batch: list[_Part] = []
    batch_bytes = 0
    for i, seg in enumerate(segs):
        for start in range(0, seg.size, chunk):
            length = min(chunk, seg.size - start)
            batch.append(_Part(i, start // piece_length, start, length))
            batch_bytes += length
            if batch_bytes >= chunk:
                yield batch
                batch, batch_bytes = [], 0
    if batch:
        yield batch


# ---------------------------------------------------------------- stream layout


def _hash_stream(
    first: int,
    last: int,
    segs: list[Segment],
    offsets: list[int],
    total: int,
    piece_length: int,
    reader: _Reader,
) -> tuple[int, list[bytes]]:
    start = first * piece_length
    end = min(last * piece_length, total)
    mv = _buffer(end - start)
    pos = start
    i = bisect.bisect_right(offsets, pos) - 1
    while pos < end:
        while offsets[i] + segs[i].size <= pos:
            i += 1
        seg = segs[i]
        n = min(end, offsets[i] + seg.size) - pos
        dest = mv[pos - start : pos - start + n]
        if seg.path is None:
            dest[:] = _zeros(n)
        else:
            reader.read(i, seg, pos - offsets[i], dest)
        pos += n
    sha1 = hashlib.sha1
    pieces = [sha1(mv[o : o + piece_length]).digest() for o in range(0, end - start, piece_length)]
    return first, pieces


# ---------------------------------------------------------------- driver


def _run(
    tasks: Iterator[Callable[[], object]],
    sizes: Iterator[int],
    workers: int,
    progress: Callable[[int], object] | None,
) -> list[object]:
    """Run tasks on a thread pool, a bounded number in flight, reporting bytes done."""
    results: list[object] = []
    inflight: dict[Future[object], int] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="phono-hash") as pool:
        try:
            for task, size in zip(tasks, sizes, strict=True):
                while len(inflight) >= 2 * workers:
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for fut in done:
                        results.append(fut.result())
                        n = inflight.pop(fut)
                        if progress is not None:
                            progress(n)
                inflight[pool.submit(task)] = size
            for fut in list(inflight):
                results.append(fut.result())
                n = inflight.pop(fut)
                if progress is not None:
                    progress(n)
        except BaseException:
            for fut in inflight:
                fut.cancel()
            raise
    return results


def hash_aligned(
    segs: list[Segment],
    piece_length: int,
    v1: bool,
    v2: bool = True,
    *,
    strict: bool = True,
    workers: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> Hashes:
    """Hash files that each start on a piece boundary (v2 / hybrid layouts)."""
    reader = _Reader(strict)
    batches = list(_aligned_tasks(segs, piece_length))
    tasks = (
        (lambda b=b: _hash_parts(b, segs, piece_length, v1, v2, reader)) for b in batches
    )
    sizes = (sum(p.length for p in b) for b in batches)
    results = _run(tasks, sizes, workers or os.cpu_count() or 1, progress)
    v1_by_file: list[dict[int, list[bytes]]] = [{} for _ in segs]
    v2_by_file: list[dict[int, list[bytes]]] = [{} for _ in segs]
    for batch_result in results:
        for part, p1, p2 in batch_result:  # type: ignore[attr-defined]
            v1_by_file[part.index][part.first_piece] = p1
            v2_by_file[part.index][part.first_piece] = p2
    pieces: list[bytes] | None = [] if v1 else None
    layers: list[list[bytes]] | None = [] if v2 else None
    roots: list[bytes | None] | None = [] if v2 else None
    for i, seg in enumerate(segs):
        if pieces is not None:
            for k in sorted(v1_by_file[i]):
                pieces.extend(v1_by_file[i][k])
        if layers is not None and roots is not None:
            layer = [h for k in sorted(v2_by_file[i]) for h in v2_by_file[i][k]]
            layers.append(layer)
            roots.append(file_root(layer, piece_length, seg.size) if seg.size else None)
    return Hashes(pieces, layers, roots, dict(reader.problems))


def hash_stream(
    segs: list[Segment],
    piece_length: int,
    *,
    strict: bool = True,
    workers: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> Hashes:
    """SHA-1 pieces over the concatenation of ``segs`` (v1 layout, pieces span files)."""
    reader = _Reader(strict)
    offsets: list[int] = []
    total = 0
    for seg in segs:
        offsets.append(total)
        total += seg.size
    n_pieces = -(-total // piece_length)
    per_task = max(1, CHUNK // piece_length)
    ranges = [(p, min(p + per_task, n_pieces)) for p in range(0, n_pieces, per_task)]
    tasks = (
        (lambda a=a, b=b: _hash_stream(a, b, segs, offsets, total, piece_length, reader))
        for a, b in ranges
    )
    sizes = (min(b * piece_length, total) - a * piece_length for a, b in ranges)
    results = _run(tasks, sizes, workers or os.cpu_count() or 1, progress)
    by_first: dict[int, list[bytes]] = dict(results)  # type: ignore[arg-type]
    pieces = [h for k in sorted(by_first) for h in by_first[k]]
    return Hashes(pieces, None, None, dict(reader.problems))


__all__ = ["Hashes", "Segment", "hash_aligned", "hash_stream", "pad_hash", "BLOCK"]
