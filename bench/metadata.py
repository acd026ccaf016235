"""End-to-end metadata run at scale: synth -> ingest -> select -> publish (no audio).

Each stage runs as its own `phono` process; we record its wall time and peak
RSS (from ``wait4``), so memory can be compared as N grows (it must stay flat:
every stage streams). The baseline measured in the same run is the time to
read the synthetic dump once with ``orjson.loads`` per line, so each stage's
time is also printed as a multiple of "just parsing the input".

    .venv/bin/python bench/metadata.py --sizes 1000000 10000000 [--record]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
PHONO = str(ROOT / ".venv" / "bin" / "phono")


def run(cmd: list[str]) -> tuple[float, int]:
    """Run ``cmd``; return (wall seconds, peak RSS in MiB) of that process tree's leader."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 10):
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} failed ({code}): {err[-2000:]}")
    return took, usage.ru_maxrss // 1024


def parse_baseline(path: Path) -> float:
    t0 = time.perf_counter()
    n = 0
    with open(path, "rb") as f:
        for line in f:
            orjson.loads(line)
            n += 1
    return time.perf_counter() - t0


def _log(n: int, stage: str, value: object) -> None:
    print(f"{n:,} tracks: {stage}: {value}", file=sys.stderr, flush=True)


def one(n: int, work: Path) -> dict[str, object]:
    data = work / f"synth-{n}"
    ws = work / f"ws-{n}"
    shutil.rmtree(ws, ignore_errors=True)
    rows: dict[str, object] = {"tracks": n}
    if not (data / "synth.json").exists():
        rows["synth"] = run([PHONO, "synth", "--tracks", str(n), "--out", str(data)])
    dump = data / "release.jsonl"
    listens = next(data.glob("listens.*"))
    rows["parse_baseline_s"] = parse_baseline(dump)
    subprocess.run([PHONO, "init", str(ws)], check=True, stdout=subprocess.DEVNULL)
    steps = {
        "ingest musicbrainz": [PHONO, "ingest", "musicbrainz", str(dump), "-w", str(ws)],
        "ingest listens": [PHONO, "ingest", "listens", str(listens), "-w", str(ws)],
        "select": [PHONO, "select", "--coverage", "0.996", "-w", str(ws)],
        "publish": [PHONO, "publish", "-w", str(ws)],
    }
    for stage, cmd in steps.items():
        rows[stage] = run(cmd)
        _log(n, stage, rows[stage])
    rows["catalogue_mib"] = (ws / "catalogue.sqlite").stat().st_size // 2**20
    rows["published_mib"] = sum(p.stat().st_size for p in (ws / "publish").rglob("*")
                                if p.is_file()) // 2**20
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/phono-bench-metadata"))
    ap.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = [one(n, args.workdir) for n in args.sizes]
    stages = ["ingest musicbrainz", "ingest listens", "select", "publish"]
    lines = [
        "| tracks | stage | wall s | peak RSS MiB | tracks/s | x parse-only |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        n = int(r["tracks"])  # type: ignore[call-overload]
        base = float(r["parse_baseline_s"])  # type: ignore[arg-type]
        for s in stages:
            wall, rss = r[s]  # type: ignore[misc]
            lines.append(f"| {n:,} | {s} | {wall:.1f} | {rss} | {n / wall:,.0f} | {wall / base:.2f} |")
        total = sum(r[s][0] for s in stages)  # type: ignore[index]
        lines.append(f"| {n:,} | **total** | **{total:.1f}** | | {n / total:,.0f} | {total / base:.2f} |")
        lines.append(f"| {n:,} | (orjson parse of the dump, baseline) | {base:.1f} | | | 1.00 |")
        lines.append(f"| {n:,} | catalogue / published size | {r['catalogue_mib']} MiB / "
                     f"{r['published_mib']} MiB | | | |")
    table = "\n".join(lines)
    print(table)
    if args.record:
        with open(ROOT / "bench" / "RESULTS.md", "a") as f:
            f.write(f"\n## End-to-end metadata run (bench/metadata.py, {time.strftime('%Y-%m-%d')})\n\n"
                    "synth -> ingest -> select -> publish, no audio; each stage a separate `phono` "
                    "process; peak RSS from wait4. 2 cores, shared with other work.\n\n"
                    f"{table}\n")


if __name__ == "__main__":
    sys.exit(main())
