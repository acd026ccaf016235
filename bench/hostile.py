"""Hostile inputs that used to take minutes (issue 12): each against the old way, same run.

    .venv/bin/python bench/hostile.py [--line-mib 16] [--files 40000] [--timeout 120]

1. A ``.tar.xz`` whose member is one line of --line-mib MiB: lines read through
   ``sources._base.open_tar_stream`` + ``bounded_lines`` (the reader now) against
   ``tarfile``'s own ``r|*`` decompression iterated line by line (the reader before).
2. Bad v1 pieces mapped to files for --files files: ``_files_of_pieces`` (one sweep)
   against the pieces × files scan it replaced (copied here as the baseline).
3. ``verify_torrent`` of a torrent declaring 1 TiB against an empty folder (the old
   engine hashed zeros for minutes at 1.1 GB RSS; not re-run here).

Baselines that pass --timeout seconds are reported as "> timeout" (run in a child
process and stopped). CI never runs this.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import io  # noqa: E402
import multiprocessing as mp  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

from phonotheque.sources._base import bounded_lines, open_tar_stream  # noqa: E402
from phonotheque.torrent import TorrentFile, TorrentInfo, read_torrent, verify_torrent  # noqa: E402
from phonotheque.torrent._bencode import encode  # noqa: E402
from phonotheque.torrent._verify import _files_of_pieces  # noqa: E402


def _archive(path: Path, line_mib: int) -> Path:
    payload = b'{"id": "' + b"x" * (line_mib << 20) + b'"}\n{"id": "y"}\n'
    with tarfile.open(path, "w:xz", preset=1) as tar:
        info = tarfile.TarInfo("mbdump/recording")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


def _lines_now(path: Path) -> int:
    n = 0
    with open_tar_stream(path) as tar:
        for member in tar:
            f = tar.extractfile(member)
            if f is not None:
                n += sum(1 for _ in bounded_lines(f))
    return n


def _lines_before(path: Path) -> int:
    n = 0
    with tarfile.open(path, mode="r|*") as tar:
        for member in tar:
            f = tar.extractfile(member)
            if f is not None:
                n += sum(1 for _ in f)
    return n


def _files_before(info: TorrentInfo, bad: range) -> set[str]:
    pl = info.piece_length
    out: set[str] = set()
    data = [f for f in info.files if not f.is_pad and f.size]
    for p in bad:
        a, b = p * pl, (p + 1) * pl
        out.update(f.path for f in data if f.offset < b and f.offset + f.size > a)
    return out


def _timed(fn: Callable[[], object], timeout: float) -> float | None:
    """Seconds ``fn`` takes in a child process; None if it passes ``timeout``."""
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=fn)
    t0 = time.perf_counter()
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return None
    return time.perf_counter() - t0


def _show(label: str, now: float | None, before: float | None, timeout: float) -> None:
    def fmt(s: float | None) -> str:
        if s is not None and s < 0:
            return "n/a"
        return f"> {timeout:.0f} s" if s is None else f"{s:.2f} s"

    ratio = "" if now is None or not now or (before is not None and before < 0) else (
        f"  (≥ {timeout / now:.0f}× faster)" if before is None else f"  ({before / now:.0f}×)")
    print(f"{label:<52} now {fmt(now):>9}   before {fmt(before):>9}{ratio}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--line-mib", type=int, default=16)
    ap.add_argument("--files", type=int, default=40_000)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        archive = _archive(t / "line.tar.xz", args.line_mib)
        _show(f"tar.xz with one {args.line_mib} MiB line",
              _timed(lambda: _lines_now(archive), args.timeout),
              _timed(lambda: _lines_before(archive), args.timeout), args.timeout)

        n = args.files
        files = tuple(TorrentFile(f"f{i:06d}", 300_000, offset=i * 300_000) for i in range(n))
        info = TorrentInfo("x", files, 1 << 18, n * 300_000, "0" * 40, None, b"", True)
        bad = range(0, n * 300_000 // (1 << 18) + 1)
        _show(f"{len(bad):,} bad pieces -> {n:,} files",
              _timed(lambda: _files_of_pieces(info, bad), args.timeout),
              _timed(lambda: _files_before(info, bad), args.timeout), args.timeout)

        piece, size = 1 << 29, 1 << 40
        meta = {b"name": b"big", b"piece length": piece, b"length": size,
                b"pieces": bytes(20) * (size // piece)}
        tpath = t / "big.torrent"
        tpath.write_bytes(encode({b"info": meta}))
        torrent = read_torrent(tpath)
        (t / "empty").mkdir()
        _show(f"verify a {tpath.stat().st_size // 1000} KB torrent of 1 TiB, empty folder",
              # before: minutes of hashing zeros at 1.1 GB RSS (issue 12 §4); not re-run
              _timed(lambda: verify_torrent(torrent, t / "empty"), args.timeout), -1.0,
              args.timeout)


if __name__ == "__main__":
    main()
