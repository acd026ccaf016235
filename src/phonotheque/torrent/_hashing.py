"""Parallel piece hashing: v1 SHA-1 pieces and v2 SHA-256 merkle trees in one read.

Each byte is read once (``readinto`` a preallocated per-worker buffer) and fed
to SHA-1 (v1 pieces) and SHA-256 (16 KiB v2 leaves) from the same memory,
piece by piece so both hash it while it is in the CPU cache.

Work is cut into jobs of ~8 MiB of whole pieces, described by plain tuples
(path, offsets) so they run either on threads or on worker processes:

* threads by default (no start-up cost; ``hashlib`` releases the GIL on
  large buffers, so threads do use every core);
* on request (``processes=True``), for large inputs, a persistent pool of
  worker processes (``forkserver``, so it is safe next to a libtorrent
  session's threads): on a loaded machine threads of one process convoy on
  the GIL between the many short hashing calls and fall below their share
  of the CPU; processes do not. Opt-in because the workers import the
  program's ``__main__`` module, which must then be import-safe
  (``if __name__ == "__main__":``), as the ``phono`` command is.

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

import atexit
import bisect
import hashlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from phonotheque import errors
from phonotheque.errors import InputError, PhonoError, wrap_os_error
from phonotheque.torrent._merkle import BLOCK, ZERO, file_root, next_pow2, pad_hash

CHUNK = 8 * 1024 * 1024  # bytes per job: large reads, few jobs
PROCESS_THRESHOLD = 256 * 1024 * 1024  # below this, worker start-up costs more than it gains


@dataclass(frozen=True)
class Segment:
    """One file of the torrent as the hasher sees it.

    ``path`` None means zeros (a pad file, stream layout only). ``tail_pad``
    is the zero padding that follows the file in the v1 stream (aligned
    layout only). ``absent``: the file is known to be missing or short; it is
    not read, and every piece touching it is returned as ``b""`` (not hashed),
    so a torrent declaring 1 TiB against an empty folder costs nothing.
    """

    path: Path | None
    size: int
    tail_pad: int = 0
    absent: bool = False


@dataclass
class Hashes:
    pieces: list[bytes] | None  # v1 SHA-1 piece hashes, in order
    layers: list[list[bytes]] | None  # v2 piece-layer hashes per segment
    roots: list[bytes | None] | None  # v2 pieces root per segment (None: empty file)
    problems: dict[int, str] = field(default_factory=dict)  # segment -> missing/truncated


# ---------------------------------------------------------------- worker side


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


def _read(
    index: int, path: str, offset: int, out: memoryview, strict: bool, problems: dict[int, str]
) -> None:
    """Fill ``out`` from ``path`` at ``offset``; strict raises on short data, else zero-fills."""
    got = 0
    try:
        with open(path, "rb", buffering=0) as f:
            if offset:
                f.seek(offset)
            while got < len(out):
                n = f.readinto(out[got:])
                if not n:
                    break
                got += n
    except FileNotFoundError as exc:
        if strict:
            raise wrap_os_error(exc, path) from exc
        problems.setdefault(index, "missing")
    except OSError as exc:
        if strict:
            raise wrap_os_error(exc, path) from exc
        problems.setdefault(index, "unreadable")
    if got < len(out):
        if strict:
            raise InputError(path, "file shrank while it was being hashed")
        out[got:] = _zeros(len(out) - got)
        problems.setdefault(index, "truncated")


# item: (segment index, path, file size, tail pad, start, length)
_Item = tuple[int, str, int, int, int, int]
_PartResult = tuple[int, int, list[bytes], list[bytes]]  # index, first piece, v1, v2
_ErrorInfo = tuple[str, str, str]  # class name, subject, problem
_JobResult = tuple[list[_PartResult], dict[int, str], _ErrorInfo | None]


def _aligned_job(
    items: list[_Item], piece_length: int, v1: bool, v2: bool, strict: bool
) -> _JobResult:
    sha1, sha256 = hashlib.sha1, hashlib.sha256
    per_piece = piece_length // BLOCK
    problems: dict[int, str] = {}
    out: list[_PartResult] = []
    try:
        for index, path, size, tail_pad, start, length in items:
            mv = _buffer(length)
            _read(index, path, start, mv, strict, problems)
            ends_file = start + length == size
            p1: list[bytes] = []
            leaves: list[bytes] = []
            # Piece by piece, so SHA-1 and SHA-256 read the same bytes while
            # they are still in the CPU cache.
            for off in range(0, length, piece_length):
                piece = mv[off : off + piece_length]
                n = len(piece)
                if v1:
                    h = sha1(piece)
                    if n < piece_length and ends_file and tail_pad:
                        h.update(_zeros(tail_pad))
                    p1.append(h.digest())
                if v2:
                    leaves.extend(
                        [sha256(piece[i : i + BLOCK]).digest() for i in range(0, n, BLOCK)]
                    )
            layer: list[bytes] = []
            if v2:
                # A file smaller than a piece is its own tree (next power of
                # two leaves); otherwise each piece is a full subtree of
                # per_piece leaves, the last one completed with zero leaves.
                # Reduce every piece of the part together, a level at a time.
                group = next_pow2(len(leaves)) if size < piece_length else per_piece
                leaves.extend([ZERO] * (-len(leaves) % group))
                layer = leaves
                while group > 1:
                    layer = [
                        sha256(a + b).digest()
                        for a, b in zip(layer[0::2], layer[1::2], strict=True)
                    ]
                    group //= 2
            out.append((index, start // piece_length, p1, layer))
    except PhonoError as exc:
        # Our exceptions take two arguments and do not pickle as they are.
        return [], problems, (type(exc).__name__, str(exc.subject), exc.problem)
    return out, problems, None


# span: (segment index, path or None for zeros or _ABSENT, size, offset in the stream)
_Span = tuple[int, str | None, int, int]
_ABSENT = ""  # a file known missing or short: not read, its pieces not hashed
_StreamResult = tuple[int, list[bytes], dict[int, str], _ErrorInfo | None]


def _stream_job(
    first: int, last: int, spans: list[_Span], total: int, piece_length: int, strict: bool
) -> _StreamResult:
    start = first * piece_length
    end = min(last * piece_length, total)
    mv = _buffer(end - start)
    problems: dict[int, str] = {}
    unhashed: set[int] = set()  # pieces (relative to first) that touch an absent file
    try:
        for index, path, size, offset in spans:
            a, b = max(start, offset), min(end, offset + size)
            if a >= b:
                continue
            if path == _ABSENT:
                unhashed.update(range((a - start) // piece_length,
                                      (b - 1 - start) // piece_length + 1))
                continue
            dest = mv[a - start : b - start]
            if path is None:
                dest[:] = _zeros(b - a)
            else:
                _read(index, path, a - offset, dest, strict, problems)
    except PhonoError as exc:
        return first, [], problems, (type(exc).__name__, str(exc.subject), exc.problem)
    sha1 = hashlib.sha1
    pieces = [b"" if k in unhashed else sha1(mv[o : o + piece_length]).digest()
              for k, o in enumerate(range(0, end - start, piece_length))]
    return first, pieces, problems, None


def _raise(err: _ErrorInfo) -> None:
    cls = getattr(errors, err[0], None)
    if not (isinstance(cls, type) and issubclass(cls, PhonoError)):
        cls = InputError
    raise cls(err[1], err[2])


# ---------------------------------------------------------------- executors

_PROCESS_POOLS: dict[int, ProcessPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def _process_pool(workers: int) -> ProcessPoolExecutor | None:
    """A persistent pool of ``workers`` processes, or None where processes cannot run."""
    with _POOL_LOCK:
        pool = _PROCESS_POOLS.get(workers)
        if pool is None:
            try:
                if multiprocessing.parent_process() is not None:
                    # Already a worker of some pool (the pack executor, Dask):
                    # the cores are shared out there; threads, not more processes.
                    return None
                ctx = multiprocessing.get_context("forkserver")
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
            except (OSError, ValueError, RuntimeError):
                return None
            _PROCESS_POOLS[workers] = pool
        return pool


def _drop_pool(workers: int) -> None:
    with _POOL_LOCK:
        pool = _PROCESS_POOLS.pop(workers, None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


@atexit.register
def _shutdown_pools() -> None:
    for w in list(_PROCESS_POOLS):
        _drop_pool(w)


def _run(
    fn: Callable[..., object],
    jobs: list[tuple[object, ...]],
    sizes: list[int],
    workers: int,
    progress: Callable[[int], object] | None,
    processes: bool,
) -> list[object]:
    """Run ``fn(*job)`` for every job, a bounded number in flight, reporting bytes done."""
    total = sum(sizes)
    pool: Executor | None = None
    if processes and workers > 1 and total >= PROCESS_THRESHOLD:
        pool = _process_pool(workers)
    if pool is None:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="phono-hash") as threads:
            return _drive(threads, fn, jobs, sizes, workers, progress)
    try:
        return _drive(pool, fn, jobs, sizes, workers, progress)
    except BrokenProcessPool:
        _drop_pool(workers)  # a worker died (OOM killer?): start afresh next time
        raise


def _drive(
    pool: Executor,
    fn: Callable[..., object],
    jobs: Iterable[tuple[object, ...]],
    sizes: list[int],
    workers: int,
    progress: Callable[[int], object] | None,
) -> list[object]:
    results: list[object] = []
    inflight: dict[Future[object], int] = {}

    def collect(done: Iterable[Future[object]]) -> None:
        for fut in done:
            results.append(fut.result())
            n = inflight.pop(fut)
            if progress is not None:
                progress(n)

    try:
        for job, size in zip(jobs, sizes, strict=True):
            while len(inflight) >= 2 * workers:
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                collect(done)
            inflight[pool.submit(fn, *job)] = size
        while inflight:
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            collect(done)
    except BaseException:
        for fut in inflight:
            fut.cancel()
        raise
    return results


# ---------------------------------------------------------------- public


def hash_aligned(
    segs: list[Segment],
    piece_length: int,
    v1: bool,
    v2: bool = True,
    *,
    strict: bool = True,
    workers: int | None = None,
    progress: Callable[[int], object] | None = None,
    processes: bool = False,
) -> Hashes:
    """Hash files that each start on a piece boundary (v2 / hybrid layouts)."""
    chunk = max(piece_length, CHUNK // piece_length * piece_length)
    jobs: list[tuple[object, ...]] = []
    sizes: list[int] = []
    batch: list[_Item] = []
    batch_bytes = 0
    for i, seg in enumerate(segs):
        if seg.absent:
            continue
        for start in range(0, seg.size, chunk):
            length = min(chunk, seg.size - start)
            batch.append((i, str(seg.path), seg.size, seg.tail_pad, start, length))
            batch_bytes += length
            if batch_bytes >= chunk:
                jobs.append((batch, piece_length, v1, v2, strict))
                sizes.append(batch_bytes)
                batch, batch_bytes = [], 0
    if batch:
        jobs.append((batch, piece_length, v1, v2, strict))
        sizes.append(batch_bytes)
    results = _run(_aligned_job, jobs, sizes, workers or os.cpu_count() or 1, progress, processes)

    v1_by_file: list[dict[int, list[bytes]]] = [{} for _ in segs]
    v2_by_file: list[dict[int, list[bytes]]] = [{} for _ in segs]
    problems: dict[int, str] = {}
    for res in results:
        parts, probs, err = cast(_JobResult, res)
        if err is not None:
            _raise(err)
        problems.update(probs)
        for index, first, p1, p2 in parts:
            v1_by_file[index][first] = p1
            v2_by_file[index][first] = p2
    pieces: list[bytes] | None = [] if v1 else None
    layers: list[list[bytes]] | None = [] if v2 else None
    roots: list[bytes | None] | None = [] if v2 else None
    for i, seg in enumerate(segs):
        if seg.absent:
            if pieces is not None:
                pieces.extend([b""] * -(-seg.size // piece_length))
            if layers is not None and roots is not None:
                layers.append([])
                roots.append(None)
            continue
        if pieces is not None:
            for k in sorted(v1_by_file[i]):
                pieces.extend(v1_by_file[i][k])
        if layers is not None and roots is not None:
            layer = [h for k in sorted(v2_by_file[i]) for h in v2_by_file[i][k]]
            layers.append(layer)
            roots.append(file_root(layer, piece_length, seg.size) if seg.size else None)
    return Hashes(pieces, layers, roots, problems)


def hash_stream(
    segs: list[Segment],
    piece_length: int,
    *,
    strict: bool = True,
    workers: int | None = None,
    progress: Callable[[int], object] | None = None,
    processes: bool = False,
) -> Hashes:
    """SHA-1 pieces over the concatenation of ``segs`` (v1 layout, pieces span files)."""
    offsets: list[int] = []
    total = 0
    for seg in segs:
        offsets.append(total)
        total += seg.size
    n_pieces = -(-total // piece_length)
    per_job = max(1, CHUNK // piece_length)
    skipped: dict[int, list[bytes]] = {}
    jobs: list[tuple[object, ...]] = []
    sizes: list[int] = []
    for first in range(0, n_pieces, per_job):
        last = min(first + per_job, n_pieces)
        a, b = first * piece_length, min(last * piece_length, total)
        lo = bisect.bisect_right(offsets, a) - 1
        hi = bisect.bisect_left(offsets, b)
        spans: list[_Span] = [
            (i, _ABSENT if segs[i].absent else None if segs[i].path is None
             else str(segs[i].path), segs[i].size, offsets[i])
            for i in range(max(lo, 0), hi)
            if segs[i].size
        ]
        if any(p == _ABSENT and o <= a and o + n >= b for _i, p, n, o in spans):
            skipped[first] = [b""] * (last - first)  # nothing to read: not even a job
            continue
        jobs.append((first, last, spans, total, piece_length, strict))
        # progress counts the bytes read, so not those of absent files
        sizes.append(b - a - sum(max(0, min(b, o + n) - max(a, o))
                                 for _i, p, n, o in spans if p == _ABSENT))
    results = _run(_stream_job, jobs, sizes, workers or os.cpu_count() or 1, progress, processes)
    by_first: dict[int, list[bytes]] = skipped
    problems: dict[int, str] = {}
    for res in results:
        first, pieces, probs, err = cast(_StreamResult, res)
        if err is not None:
            _raise(err)
        problems.update(probs)
        by_first[first] = pieces
    return Hashes([h for k in sorted(by_first) for h in by_first[k]], None, None, problems)


__all__ = ["BLOCK", "Hashes", "Segment", "hash_aligned", "hash_stream", "pad_hash"]
