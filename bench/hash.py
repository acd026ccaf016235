"""Torrent hashing throughput: ours vs libtorrent, mktorrent and the hashlib limit.

    .venv/bin/python bench/hash.py [--size-mib 1024] [--repeat 3] [--append]

Generates a seeded set of music-sized files in /tmp (kept between runs), reads
it once so it sits in the page cache, then times, in one run and interleaved:

* the limit: hashlib SHA-1, SHA-256, and both over the same bytes, one
  thread per core over large reads of the same files (no per-piece work);
* libtorrent ``create_torrent`` + ``set_piece_hashes``: hybrid and v1;
* ``mktorrent -t <cores>`` (v1);
* ours: v1, v2, hybrid.

Every tool uses the same piece length (libtorrent's automatic choice for the
size). Best of ``--repeat`` runs. ``--append`` adds the table to
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import os.path
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libtorrent as lt
import psutil

from phonotheque.torrent import TorrentOptions, auto_piece_length, create_torrent, read_torrent

MIB = 1 << 20
READ = 8 * MIB


def _cpu() -> float:
    """CPU seconds used by this process (all threads), its finished children
    (mktorrent) and its live ones (our hashing worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            live += t.user + t.system
        except psutil.Error:
            pass
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + live


def make_content(root: Path, size: int) -> list[Path]:
    """Seeded files of 1-40 MiB (plus a few small ones) totalling ``size`` bytes."""
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == str(size):
        return sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".complete")
    if root.exists():
        shutil.rmtree(root)
    rnd = random.Random(42)
    left, i = size, 0
    while left > 0:
        n = min(left, rnd.choice([rnd.randint(1, 40) * MIB + rnd.randint(0, MIB), rnd.randint(1, 300_000)]))
        p = root / f"band{i % 7}" / f"{i:05d}.flac"
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            f.write(rnd.randbytes(n))
        left -= n
        i += 1
    marker.write_text(str(size))
    return make_content(root, size)


def warm(files: list[Path]) -> None:
    buf = bytearray(READ)
    for p in files:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def limit(files: list[Path], algos: tuple[str, ...], workers: int) -> None:
    """hashlib over every byte, files split between threads, big reads, no per-piece work."""

    def one(part: list[Path]) -> None:
        buf = bytearray(READ)
        mv = memoryview(buf)
        for p in part:
            hs = [hashlib.new(a) for a in algos]
            with open(p, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    for h in hs:
                        h.update(mv[:n])
            for h in hs:
                h.digest()

    parts: list[list[Path]] = [[] for _ in range(workers)]
    sizes = [0] * workers
    for p in sorted(files, key=lambda p: -p.stat().st_size):
        k = sizes.index(min(sizes))
        parts[k].append(p)
        sizes[k] += p.stat().st_size
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, parts))


def limit_in_memory(blob: bytes, algos: tuple[str, ...], workers: int) -> None:
    mv = memoryview(blob)
    step = -(-len(blob) // workers)

    def one(k: int) -> None:
        for a in algos:
            hashlib.new(a, mv[k * step : (k + 1) * step]).digest()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(workers)))


def lt_create(root: Path, piece_length: int, flags: int) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fs = lt.file_storage()
        lt.add_files(fs, str(root))
        ct = lt.create_torrent(fs, piece_length, flags)
        lt.set_piece_hashes(ct, str(root.parent))
        return str(lt.torrent_info(lt.bencode(ct.generate())).info_hashes().v1)


def mktorrent(root: Path, piece_length: int, workers: int, out: Path) -> str:
    out.unlink(missing_ok=True)
    subprocess.run(
        ["mktorrent", "-d", "-t", str(workers), "-l", str(piece_length.bit_length() - 1),
         "-o", str(out), str(root)],
        check=True, capture_output=True,
    )
    return read_torrent(out).infohash_v1 or ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "phono-bench-hash")
    ap.add_argument("--append", action="store_true", help="append the figures to bench/RESULTS.md")
    args = ap.parse_args()

    cores = os.cpu_count() or 1
    size = args.size_mib * MIB
    root = args.dir / f"set-{args.size_mib}MiB"
    files = make_content(root, size)
    total = sum(p.stat().st_size for p in files)
    pl = auto_piece_length(total)
    warm(files)
    blob = b"".join(p.read_bytes() for p in files) if total <= 4 << 30 else b""
    out = args.dir / "mk.torrent"
    print(f"{len(files)} files, {total / MIB:,.0f} MiB in the page cache; piece length {pl // 1024} KiB; "
          f"{cores} cores; load {os.getloadavg()[0]:.2f}", flush=True)

    # Worker processes, as `phono torrent create` uses them.
    ours_opts = {
        v: TorrentOptions(version=v, piece_length=pl, processes=True)  # type: ignore[arg-type]
        for v in ("1", "2", "hybrid")
    }
    check: dict[str, str] = {}
    cases: dict[str, Callable[[], object]] = {
        "limit sha1 (in memory)": lambda: limit_in_memory(blob, ("sha1",), cores),
        "limit sha1+sha256 (in memory)": lambda: limit_in_memory(blob, ("sha1", "sha256"), cores),
        "limit sha1": lambda: limit(files, ("sha1",), cores),
        "limit sha256": lambda: limit(files, ("sha256",), cores),
        "limit sha1+sha256": lambda: limit(files, ("sha1", "sha256"), cores),
        "libtorrent v1": lambda: check.__setitem__("lt v1", lt_create(root, pl, lt.create_torrent.v1_only)),
        "libtorrent hybrid": lambda: check.__setitem__("lt hybrid", lt_create(root, pl, 0)),
        f"mktorrent -t {cores}": lambda: check.__setitem__("mk", mktorrent(root, pl, cores, out)),
        "ours v1": lambda: check.__setitem__("ours v1", create_torrent(root, ours_opts["1"]).infohash_v1 or ""),
        "ours v2": lambda: create_torrent(root, ours_opts["2"]),
        "ours hybrid": lambda: check.__setitem__("ours hybrid", create_torrent(root, ours_opts["hybrid"]).infohash_v1 or ""),
    }
    if not blob:
        del cases["limit sha1 (in memory)"], cases["limit sha1+sha256 (in memory)"]
    # Start our persistent hashing processes outside the timings (a one-off
    # cost of a fraction of a second per program run).
    t0 = time.perf_counter()
    create_torrent(root, ours_opts["1"])
    print(f"  warm-up (starts our worker processes): {time.perf_counter() - t0:.2f} s", flush=True)
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for r in range(args.repeat):
        for name, fn in cases.items():
            c0 = _cpu()
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            dc = _cpu() - c0
            if dt < best.get(name, float("inf")):
                best[name], cpu[name] = dt, dc
        print(f"  round {r + 1}/{args.repeat} done, load {os.getloadavg()[0]:.2f}", flush=True)

    assert check["ours v1"] == check["mk"], "v1 infohash differs from mktorrent"
    assert check["ours hybrid"] == check["lt hybrid"], "hybrid infohash differs from libtorrent"

    rate = {k: total / MIB / v for k, v in best.items()}
    # CPU seconds say how much work each tool does per byte whatever the load
    # from other processes; cores = CPU time / wall time is the parallelism.
    per_cpu = {k: total / MIB / cpu[k] for k in best}
    lines = [
        f"| {k} | {rate[k]:,.0f} | {per_cpu[k]:,.0f} | {cpu[k] / best[k]:.2f} |" for k in cases
    ]
    ratios = [
        ("ours hybrid / limit sha1+sha256", rate["ours hybrid"] / rate["limit sha1+sha256"], 0.9),
        ("ours hybrid / libtorrent hybrid", rate["ours hybrid"] / rate["libtorrent hybrid"], 2.0),
        (f"ours v1 / mktorrent -t {cores}", rate["ours v1"] / rate[f"mktorrent -t {cores}"], 1.0),
        ("ours v1 / limit sha1", rate["ours v1"] / rate["limit sha1"], None),
        ("ours v2 / limit sha256", rate["ours v2"] / rate["limit sha256"], None),
        ("ours v1 / libtorrent v1", rate["ours v1"] / rate["libtorrent v1"], None),
    ]
    ratios.append(("CPU efficiency: ours hybrid / limit sha1+sha256",
                   per_cpu["ours hybrid"] / per_cpu["limit sha1+sha256"], None))
    ratios.append(("CPU efficiency: ours v1 / mktorrent",
                   per_cpu["ours v1"] / per_cpu[f"mktorrent -t {cores}"], None))
    if "limit sha1+sha256 (in memory)" in rate:
        ratios.append(("ours hybrid / limit sha1+sha256 in memory",
                       rate["ours hybrid"] / rate["limit sha1+sha256 (in memory)"], None))
    print("\n| case | MiB/s (wall) | MiB per CPU-second | cores used |\n|---|---:|---:|---:|")
    print("\n".join(lines))
    print("\n| ratio | value | goal |\n|---|---:|---:|")
    ratio_lines = [
        f"| {n} | {v:.2f} | {'>= ' + format(g, '.1f') + (' ok' if v >= g else ' MISSED') if g else ''} |"
        for n, v, g in ratios
    ]
    print("\n".join(ratio_lines))
    if args.append:
        results = Path(__file__).with_name("RESULTS.md")
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        text = (
            f"\n## bench/hash.py ({stamp})\n\n"
            f"{len(files)} files, {total / MIB:,.0f} MiB in the page cache, piece length "
            f"{pl // 1024} KiB, {cores} cores, best of {args.repeat}; load average at the end "
            f"{os.getloadavg()[0]:.2f} (machine shared with other engineers' test runs).\n\n"
            "| case | MiB/s (wall) | MiB per CPU-second | cores used |\n|---|---:|---:|---:|\n"
            + "\n".join(lines) + "\n\n"
            "| ratio | value | goal |\n|---|---:|---:|\n" + "\n".join(ratio_lines) + "\n"
        )
        with open(results, "a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
