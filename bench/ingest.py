"""Ingest throughput against orjson parsing, and peak memory at two sizes.

    .venv/bin/python bench/ingest.py                 # 1 M dump lines (~8 M tracks)
    .venv/bin/python bench/ingest.py --lines 200000
    .venv/bin/python bench/ingest.py --small         # smoke check: 2,000 lines
    .venv/bin/python bench/ingest.py --record        # also append the figures to RESULTS.md

What it does, all in one run so the ratios compare like with like:

1. ``phono synth`` writes N release lines (MusicBrainz JSON dump format) and,
   for the memory check, N/10 lines;
2. baseline: ``orjson.loads`` of every line of the N-line file, nothing else;
3. reader only: the musicbrainz source turning the same lines into records;
4. ``phono ingest musicbrainz`` of the N-line file into a fresh workspace, in a
   subprocess whose peak RSS is read from ``wait4``; then the N/10 file the same
   way (memory must not grow with input size).

Rates are tracks per second (a line is a release of ~8 tracks); the ratio is
ingest rate / orjson rate. The machine has 2 cores shared with other work, so
figures vary between runs; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from phonotheque.sources import ReadOptions, get
from phonotheque.synth import SynthOptions, SynthReport, synth

ROOT = Path(__file__).resolve().parent.parent
PHONO = str(Path(sys.executable).parent / "phono")


def parse_only(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of orjson.loads over every line."""
    loads = orjson.loads
    wall, cpu = time.perf_counter(), time.process_time()
    with open(path, "rb", buffering=1 << 20) as f:
        for line in f:
            loads(line)
    return time.perf_counter() - wall, time.process_time() - cpu


def reader_only(path: Path) -> tuple[float, float]:
    src = get("musicbrainz")
    item = src.inputs([path])[0]
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in src.read(item, ReadOptions()):
        pass
    return time.perf_counter() - wall, time.process_time() - cpu


def ingest_subprocess(path: Path, ws: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (bytes) of `phono ingest` in its own process."""
    subprocess.run([PHONO, "init", str(ws)], check=True, capture_output=True)
    env = dict(os.environ, PHONO_PROGRESS="0")
    start = time.perf_counter()
    proc = subprocess.Popen([PHONO, "ingest", "musicbrainz", "-w", str(ws), str(path)],
                            env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed with exit code {proc.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024  # KiB on Linux


def synth_cached(folder: Path, lines: int) -> SynthReport:
    """Synthesise ``lines`` releases into ``folder``, or reuse an earlier identical run."""
    manifest = folder / "synth.json"
    if manifest.is_file():
        report = SynthReport(**orjson.loads(manifest.read_bytes()))
        if report.releases == lines and Path(report.release_file).is_file():
            return report
    return synth(folder, SynthOptions(tracks=0, releases=lines, seed=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="dump lines (releases)")
    ap.add_argument("--small", action="store_true", help="2,000 lines: a quick smoke check")
    ap.add_argument("--record", action="store_true", help="append the figures to RESULTS.md")
    ap.add_argument("--workdir", type=Path, help="keep files here (default: a temp folder)")
    args = ap.parse_args()
    lines = 2_000 if args.small else args.lines
    small_lines = max(lines // 10, 1)

    with tempfile.TemporaryDirectory(prefix="phono-bench-ingest-") as tmp:
        # Synthetic inputs are kept in --workdir (and reused) when given.
        data = args.workdir or Path(tmp)
        work = Path(tmp)
        t0 = time.perf_counter()
        big = synth_cached(data / f"synth-{lines}", lines)
        small = synth_cached(data / f"synth-{small_lines}", small_lines)
        synth_s = time.perf_counter() - t0
        path = Path(big.release_file)
        size = path.stat().st_size
        print(f"synth: {big.releases:,} lines, {big.tracks:,} tracks, {size / 1e6:,.0f} MB "
              f"in {synth_s:.0f} s", flush=True)

        parse_s, parse_cpu = parse_only(path)
        print(f"orjson.loads only: {parse_s:.1f} s", flush=True)
        read_s, read_cpu = reader_only(path)
        print(f"reader only (records, no SQLite): {read_s:.1f} s", flush=True)
        ingest_s, ingest_cpu, rss_big = ingest_subprocess(path, work / "ws-big")
        print(f"phono ingest: {ingest_s:.1f} s, peak RSS {rss_big / 2**20:.0f} MiB", flush=True)
        _, _, rss_small = ingest_subprocess(Path(small.release_file), work / "ws-small")
        db_size = (work / "ws-big" / "catalogue.sqlite").stat().st_size
        load = os.getloadavg()

    rate = big.tracks / ingest_s
    parse_rate = big.tracks / parse_s
    lines_out = [
        f"- lines (releases): {big.releases:,}; tracks: {big.tracks:,}; ISRC links: "
        f"{big.isrc_links:,}; input {size / 1e6:,.0f} MB; catalogue {db_size / 1e6:,.0f} MB",
        f"- orjson.loads alone: {parse_s:.2f} s = {parse_rate:,.0f} tracks/s "
        f"({big.releases / parse_s:,.0f} lines/s); CPU {parse_cpu:.2f} s",
        f"- reader alone (parse + records, no SQLite): {read_s:.2f} s = "
        f"{big.tracks / read_s:,.0f} tracks/s (ratio {parse_s / read_s:.2f}); "
        f"CPU {read_cpu:.2f} s",
        f"- phono ingest musicbrainz (whole process): {ingest_s:.2f} s = {rate:,.0f} tracks/s "
        f"({big.releases / ingest_s:,.0f} lines/s); CPU {ingest_cpu:.2f} s (two threads)",
        f"- **ratio ingest / orjson-only: {rate / parse_rate:.3f}** by wall clock, "
        f"{parse_cpu / ingest_cpu:.3f} by CPU time (goal >= 0.5)",
        f"- peak RSS of the ingest process: {rss_small / 2**20:.0f} MiB at "
        f"{small.releases:,} lines, {rss_big / 2**20:.0f} MiB at {big.releases:,} lines "
        f"(x{rss_big / rss_small:.2f} for x{big.releases / small.releases:.0f} input)",
        f"- load average at the end of the run: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        f"(2 cores, shared with other engineers' tests and benchmarks)",
    ]
    print("\n".join(lines_out))
    if args.record:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        block = (f"\n## ingest — `bench/ingest.py --lines {lines}` ({stamp})\n\n"
                 + "\n".join(lines_out) + "\n")
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(block)
        print("appended to bench/RESULTS.md")


if __name__ == "__main__":
    main()
