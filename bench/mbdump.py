"""`phono ingest mbdump` at scale: synthetic MusicBrainz PostgreSQL dump tables, both engines.

MusicBrainz's canonical full export is ``mbdump.tar.bz2``: PostgreSQL ``COPY ... TO
STDOUT`` text tables. ``phono synth`` writes the JSON dump layout, so this script writes
the tables ``phono ingest mbdump`` reads (artist, artist_credit, artist_credit_name,
recording, release, medium, track, isrc) with every column of MusicBrainz's schema
(``admin/sql/CreateTables.sql``; the reader keeps a few), deterministic for a seed, with
about 1 name in 500 holding a COPY escape (``\\t``, ``\\\\``), ~1 recording in 10 without
an ISRC and one table line in 100,000 broken (too few columns, a word for a number) so
the rejects path runs too.

Then it times ``phono ingest mbdump`` on a fresh workspace of each engine asked for
(each its own process: wall, CPU from ``wait4``, peak RSS) and the baseline measured in
the same run: reading every table's lines once and splitting them on tabs in Python
(the least any reader of these files does).

    .venv/bin/python bench/mbdump.py --recordings 1000000 --engine sqlite --engine duckdb \\
        --before /path/to/an/older/checkout/src --workdir /work/scratch/mbd

``--before SRC`` also times the columnar ingest with another tree's code (``PYTHONPATH``),
and ``--archive`` the columnar ingest of the same dump as a ``.tar.bz2`` (MusicBrainz's
format), decompressed by lbzip2 and by Python's ``bz2`` (lbzip2 off PATH), in the same run;
every run is printed with its ratio to the first one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metadata import PHONO, Stage, run  # noqa: E402  (bench/ is not a package)

TABLES = ("artist", "artist_credit", "artist_credit_name", "recording", "release", "medium",
          "track", "isrc")
_WORDS = ("love", "night", "blue", "river", "song", "dream", "fire", "heart", "city", "rain",
          "gold", "ghost", "summer", "light", "road", "moon", "echo", "wild", "stone", "sky")
_N = "\\N"


def _gid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _name(rng: random.Random) -> str:
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4))).title()
    odd = rng.random()
    if odd < 0.001:
        return words + "\\tpart"  # a tab in the name, as COPY writes it
    if odd < 0.002:
        return "AC\\\\DC " + words  # a backslash
    return words


def _isrc(rng: random.Random) -> str:
    return (rng.choice(("GB", "US", "DE", "FR", "JP", "SE")) + "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(3))
        + f"{rng.randint(0, 9999999):07d}")


#: Share of tracks that put a recording already used on another release (the default:
#: the dumps the figures of 2026-12-03 were measured on). MusicBrainz has ~50 M tracks for
#: ~35 M recordings, so ~0.3 there: ``--reuse 0.3`` writes that shape.
REUSE = 0.05


def write_dump(out: Path, recordings: int, seed: int = 1, reuse: float = REUSE
               ) -> dict[str, int]:
    """Write the tables of a dump of ``recordings`` recordings into ``out/mbdump``, a
    share ``reuse`` of its tracks on a recording another track already has."""
    rng = random.Random(seed)
    folder = out / "mbdump"
    folder.mkdir(parents=True, exist_ok=True)
    files = {t: open(folder / t, "w", encoding="utf-8", newline="\n") for t in TABLES}
    counts = dict.fromkeys(TABLES, 0)
    stamp = "2026-11-30 12:00:00.000000+00"

    def w(table: str, fields: list[object]) -> None:
        counts[table] += 1
        line = "\t".join(_N if f is None else str(f) for f in fields)
        if rng.random() < 1e-5:  # a broken line: too few columns, or a word for a number
            line = line.split("\t", 1)[0] if rng.random() < 0.5 else "x" + line
        files[table].write(line + "\n")

    try:
        artists = max(1, recordings // 10)
        for i in range(1, artists + 1):
            name = _name(rng)
            w("artist", [i, _gid(rng), name, name, 1990, None, None, None, None, None, 1,
                         None, "", 0, stamp, "f", None, None, None])
        credits = max(1, recordings // 8)
        for c in range(1, credits + 1):
            names = [rng.randint(1, artists) for _ in range(1 if rng.random() < 0.8 else 2)]
            w("artist_credit", [c, " & ".join(f"Artist {a}" for a in names), len(names), 1,
                                stamp, 0, _gid(rng)])
            for pos, a in enumerate(names):
                w("artist_credit_name", [c, pos, a, f"Artist {a}",
                                         " & " if pos < len(names) - 1 else ""])
        rec = 0
        release = medium = track = isrc_id = 0
        while rec < recordings:
            release += 1
            credit = rng.randint(1, credits)
            w("release", [release, _gid(rng), _name(rng), credit, release, 1, None, 120, 28,
                          f"{rng.randint(0, 10**12):013d}" if rng.random() < 0.6 else None,
                          "", 0, -1, stamp])
            for disc in range(1, (2 if rng.random() < 0.05 else 1) + 1):
                medium += 1
                n = rng.randint(1, 16)
                w("medium", [medium, release, disc, 1, "", 0, stamp, n])
                for pos in range(1, n + 1):
                    track += 1
                    if rec < recordings and rng.random() < 1 - reuse:
                        rec += 1
                        recording = rec
                        length = rng.randint(60_000, 400_000) if rng.random() < 0.9 else None
                        w("recording", [rec, _gid(rng), _name(rng), credit, length, "", 0,
                                        stamp, "f"])
                        for _ in range(0 if rng.random() < 0.1 else 1):
                            isrc_id += 1
                            w("isrc", [isrc_id, rec, _isrc(rng), None, 0, stamp])
                    else:  # the same recording on another release
                        recording = rng.randint(1, max(1, rec))
                    w("track", [track, _gid(rng), recording, medium, pos, str(pos), _name(rng),
                                credit, rng.randint(60_000, 400_000), 0, stamp, "f"])
    finally:
        for f in files.values():
            f.close()
    return counts


def split_baseline(folder: Path) -> Stage:
    """Read every table's lines once and split them on tabs, in this process."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    for table in TABLES:
        with open(folder / table, "rb", buffering=1 << 20) as f:
            for line in f:
                line.split(b"\t")
    return Stage("baseline", time.perf_counter() - t0, time.process_time() - c0, 0.0,
                 os.getloadavg()[0], os.getloadavg()[0], note="lines split on tabs")


def tar_bz2(data: Path) -> Path:
    """``data`` (a dump folder) as ``<data>.tar.bz2``, made once (``tar`` piped into
    ``lbzip2 -9``, on every core)."""
    archive = data.with_name(data.name + ".tar.bz2")
    if not archive.is_file():
        t0 = time.perf_counter()
        partial = archive.with_name(archive.name + ".partial")
        with open(partial, "wb") as out:
            tar = subprocess.Popen(["tar", "-C", str(data), "-cf", "-", "mbdump"],
                                   stdout=subprocess.PIPE)
            subprocess.run(["lbzip2", "-9"], stdin=tar.stdout, stdout=out, check=True)
            if tar.wait() != 0:
                raise SystemExit(f"tar of {data} failed")
        partial.rename(archive)
        print(f"wrote {archive} in {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"archive: {archive.stat().st_size / 1e6:,.0f} MB", flush=True)
    return archive


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recordings", type=int, default=1_000_000)
    ap.add_argument("--engine", action="append", choices=("sqlite", "duckdb"))
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/phono-bench-mbdump"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reuse", type=float, default=REUSE,
                    help="share of tracks on a recording already used (MusicBrainz: ~0.3)")
    ap.add_argument("--before", type=Path, help="another tree's src/ to time as well")
    ap.add_argument("--archive", action="store_true",
                    help="also time the dump as a .tar.bz2 (columnar), read by lbzip2 and "
                         "by Python's bz2 (lbzip2 off PATH)")
    args = ap.parse_args()
    engines = args.engine or ["duckdb"]
    shape = "" if args.reuse == REUSE else f"-reuse{args.reuse:g}"
    data = args.workdir / f"dump-{args.recordings}{shape}"
    if not (data / "mbdump" / "isrc").is_file():
        t0 = time.perf_counter()
        counts = write_dump(data, args.recordings, args.seed, args.reuse)
        (data / "counts.json").write_text(json.dumps(counts))
        print(f"wrote {data} in {time.perf_counter() - t0:.1f} s: {counts}", flush=True)
    size = sum(f.stat().st_size for f in (data / "mbdump").iterdir())
    print(f"dump: {size / 1e6:,.0f} MB, {args.recordings:,} recordings", flush=True)
    base = split_baseline(data / "mbdump")
    print(f"baseline (lines split on tabs): {base.wall_s:.1f} s, {base.cpu_s:.1f} CPU s",
          flush=True)
    # (label, engine, input, environment)
    runs: list[tuple[str, str, Path, Mapping[str, str]]] = [
        (engine, engine, data, os.environ) for engine in engines]
    if args.before is not None:
        runs.append(("duckdb, --before", "duckdb", data,
                     dict(os.environ, PYTHONPATH=str(args.before))))
    if args.archive:
        archive = tar_bz2(data)
        no_lbzip2 = args.workdir / "path-without-lbzip2"  # an empty folder as PATH
        no_lbzip2.mkdir(exist_ok=True)
        runs += [("duckdb, .tar.bz2 by lbzip2", "duckdb", archive, os.environ),
                 ("duckdb, .tar.bz2 by Python's bz2", "duckdb", archive,
                  dict(os.environ, PATH=str(no_lbzip2)))]
    first = None
    for label, engine, source, env in runs:
        ws = args.workdir / f"ws-{engine}"
        shutil.rmtree(ws, ignore_errors=True)
        init = [PHONO, "init", str(ws)] + (["--engine", engine] if engine != "sqlite" else [])
        run("init", init, args.workdir / f"init-{engine}.log")
        stage = run(f"ingest-mbdump ({label})",
                    [PHONO, "ingest", "mbdump", str(source), "-w", str(ws)],
                    args.workdir / f"ingest-{engine}.log", spill=ws / "tmp", env=env)
        first = first or stage
        print(f"{label}: {stage.wall_s:.1f} s wall ({stage.wall_s / base.wall_s:.1f}x the "
              f"baseline, {stage.wall_s / first.wall_s:.2f}x the first run), "
              f"{stage.cpu_s:.1f} CPU s, peak RSS {stage.rss_mib:,.0f} MiB, "
              f"peak tmp {stage.spill_peak / 1e6:,.0f} MB; load {stage.load_before:.1f} -> "
              f"{stage.load_after:.1f}", flush=True)
        shutil.rmtree(ws, ignore_errors=True)


if __name__ == "__main__":
    main()
