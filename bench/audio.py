"""Benchmark of the audio stage against plain ffmpeg, on the same real-length files.

    .venv/bin/python bench/audio.py                    # 16 files x 3 min, 2 rounds
    .venv/bin/python bench/audio.py --files 8 --seconds 60 --rounds 1

Inputs: real audio (the Debian freedesktop sounds in tests/data) looped with
ffmpeg into N files of S seconds, half FLAC (44.1 kHz, as ripped CDs) and half
Ogg Vorbis, cached under --cache. Generation is not timed.

Measured in the same run, on the same files, with the same number of parallel
jobs (= cores):

* **plain**: ``ffmpeg -i IN -c:a libopus -b:a 75k OUT.opus`` processes, ``--jobs``
  at a time (a thread pool launching them) — nothing else;
* **ours**: ``run_audio`` on a fresh workspace, tier ``reencode``, local process
  pool, everything included: pool start-up, probe (PyAV, decoding the first
  packets), source sha256, ebur128 ReplayGain in the same decode, Picard tags
  and a cover written with mutagen, re-parse, archive sha256, atomic fsynced
  writes, catalogue transactions.

The ratio is ours/plain in files per second (goal >= 0.9). Rounds alternate
plain and ours to spread the noise of a shared machine; the best round of each
is reported. A second figure shows tier ``original`` (copy + tags + ReplayGain
decode + zstd patch) on the FLAC half, without a baseline.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds select.py, which would shadow the standard library's `select`
# (imported by subprocess): replace this folder's sys.path entry with the sources.
ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT / "src")

import argparse  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from phonotheque.audio import AudioOptions, EncodeOptions, run_audio  # noqa: E402
from phonotheque.executors import LocalExecutor  # noqa: E402
from phonotheque.workspace import Workspace  # noqa: E402

SOUNDS = ROOT / "tests" / "data" / "debian-sounds" / "freedesktop-stereo"
ART = ROOT / "tests" / "data" / "beets" / "image-2x3.jpg"


def make_inputs(cache: Path, n: int, seconds: int) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    sounds = sorted(p for p in SOUNDS.glob("*.oga") if p.stat().st_size > 10_000)
    out = []
    for i in range(n):
        ext = "flac" if i % 2 == 0 else "ogg"
        dst = cache / f"input-{i:03d}-{seconds}s.{ext}"
        if not dst.exists():
            src = sounds[i % len(sounds)]
            codec = ["-c:a", "flac", "-ar", "44100"] if ext == "flac" else ["-c:a", "libvorbis",
                                                                            "-q:a", "6"]
            tmp = dst.with_name("." + dst.name)
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1",
                            "-i", str(src), "-t", str(seconds), *codec, str(tmp)], check=True)
            tmp.rename(dst)
        out.append(dst)
    return out


def cpu() -> float:
    """CPU seconds of this process and every reaped descendant (pool workers, ffmpeg)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


CPU: dict[str, float] = {}


def plain(files: list[Path], jobs: int, outdir: Path) -> float:
    outdir.mkdir(parents=True, exist_ok=True)

    def one(p: Path) -> None:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(p), "-c:a",
                        "libopus", "-b:a", "75k", str(outdir / (p.stem + ".opus"))], check=True)

    c0, t0 = cpu(), time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, files))
    CPU["plain"] = min(CPU.get("plain", 1e9), cpu() - c0)
    return time.perf_counter() - t0


def workspace(root: Path, files: list[Path], tier: str) -> Workspace:
    ws = Workspace.create(root)
    conn = sqlite3.connect(ws.catalogue, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO release(id, key, title, date, label, mbid, art_path) VALUES "
                 "(1, 'r', 'Freedesktop Sounds', '2008', 'freedesktop.org', "
                 "'5f0e7b2e-2a5e-4c36-9a6e-6c2f3c5c1b1a', ?)", (str(ART),))
    for i, p in enumerate(files, 1):
        conn.execute("INSERT INTO track(id, key, title, artist_credit, release_id, disc, "
                     "position, mbid, source, licence) VALUES (?,?,?,?,1,1,?,?,?,?)",
                     (i, f"t{i}", p.stem, "freedesktop.org", i,
                      f"00000000-0000-4000-8000-{i:012d}", "bench", "CC-BY-SA-3.0"))
        conn.execute("INSERT INTO track_isrc(track_id, isrc) VALUES (?, ?)",
                     (i, f"XXA0124{i:05d}"))
        conn.execute("INSERT INTO source_audio(path, track_id, size, mtime_ns) VALUES (?,?,?,0)",
                     (str(p), i, p.stat().st_size))
        conn.execute("INSERT INTO selection(track_id, rank, band, cum_share, tier) "
                     "VALUES (?,?,0,0,?)", (i, i, tier))
        conn.execute("INSERT INTO ledger(track_id, status, updated_at) VALUES (?, 'todo', 'x')",
                     (i,))
    conn.execute("COMMIT")
    conn.close()
    return ws


def ours(files: list[Path], jobs: int, root: Path, tier: str = "reencode",
         replaygain: bool = True) -> tuple[float, object]:
    ws = workspace(root, files, tier)
    options = AudioOptions(encode=EncodeOptions(replaygain=replaygain))
    c0, t0 = cpu(), time.perf_counter()
    with LocalExecutor(jobs) as ex:
        report = run_audio(ws, options, ex)
    elapsed = time.perf_counter() - t0
    key = f"{tier}-{'rg' if replaygain else 'norg'}"
    CPU[key] = min(CPU.get(key, 1e9), cpu() - c0)  # workers are reaped at pool shutdown
    if report.succeeded != len(files):
        raise SystemExit(f"bench: only {report.succeeded}/{len(files)} files succeeded: "
                         f"{dict(report.errors)}")
    return elapsed, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "phono-bench-audio")
    args = ap.parse_args()

    files = make_inputs(args.cache, args.files, args.seconds)
    audio_s = args.files * args.seconds
    mb = sum(p.stat().st_size for p in files) / 1e6
    print(f"{args.files} files x {args.seconds} s ({audio_s / 60:.0f} min of audio, {mb:.0f} MB: "
          f"half FLAC, half Vorbis), {args.jobs} parallel jobs, {os.cpu_count()} cores")
    best_plain = best_ours = best_norg = float("inf")
    with tempfile.TemporaryDirectory(prefix="phono-bench-") as tmp:
        for r in range(args.rounds):
            t_plain = plain(files, args.jobs, Path(tmp) / f"plain{r}")
            t_ours, _ = ours(files, args.jobs, Path(tmp) / f"ours{r}")
            t_norg, _ = ours(files, args.jobs, Path(tmp) / f"norg{r}", replaygain=False)
            for d in ("plain", "ours", "norg"):
                shutil.rmtree(Path(tmp) / f"{d}{r}")
            print(f"round {r + 1}: plain ffmpeg {t_plain:6.2f} s   phono audio {t_ours:6.2f} s "
                  f"(ratio {t_plain / t_ours:.3f})   without ReplayGain {t_norg:6.2f} s "
                  f"(ratio {t_plain / t_norg:.3f})")
            best_plain, best_ours = min(best_plain, t_plain), min(best_ours, t_ours)
            best_norg = min(best_norg, t_norg)
        flac = [p for p in files if p.suffix == ".flac"]
        t_orig, rep_orig = ours(flac, args.jobs, Path(tmp) / "orig", tier="original")
    print(f"plain ffmpeg libopus 75k : {args.files / best_plain:6.2f} files/s  "
          f"{audio_s / best_plain:6.0f}x realtime")
    print(f"phono audio (reencode)   : {args.files / best_ours:6.2f} files/s  "
          f"{audio_s / best_ours:6.0f}x realtime  (tags, ReplayGain, cover, hashes, fsync, "
          f"catalogue)   ratio {best_plain / best_ours:.3f}  (goal >= 0.9)")
    print(f"  --no-replaygain        : {args.files / best_norg:6.2f} files/s  "
          f"{audio_s / best_norg:6.0f}x realtime   ratio {best_plain / best_norg:.3f}")
    # CPU seconds are what parallel jobs on saturated cores compete for, and unlike wall
    # time they barely move when other users load the machine.
    p, o, n = CPU["plain"], CPU["reencode-rg"], CPU["reencode-norg"]
    print(f"CPU seconds (best round)  : plain {p:.1f}  ours {o:.1f} (ratio {p / o:.3f})  "
          f"ours without ReplayGain {n:.1f} (ratio {p / n:.3f})")
    orig_mb = sum(p.stat().st_size for p in flac) / 1e6
    print(f"phono audio (original)   : {len(flac) / t_orig:6.2f} files/s  "
          f"{orig_mb / t_orig:6.1f} MB/s  {len(flac) * args.seconds / t_orig:6.0f}x realtime "
          f"(FLAC kept, tags + ReplayGain decode + zstd patch; patches "
          f"{rep_orig.patch_bytes:,} bytes in total)")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
