"""Benchmark of `phono select` on large synthetic catalogues.

    .venv/bin/python bench/selection.py                 # 1 M and 10 M tracks
    .venv/bin/python bench/selection.py --sizes 200000  # smaller
    .venv/bin/python bench/selection.py --sizes 1000000 --engines sqlite,duckdb

``duckdb`` selects a columnar copy of the catalogue (``phono init --engine duckdb``
converts it, ids kept; cached beside it): all ten steps on DuckDB.

The catalogue rows are generated directly inside SQLite (recursive CTE, one
INSERT ... SELECT per table) — a fast bulk path; going through `phono synth`
JSON + ingest would spend minutes in Python before the part measured here.
What it models: 10 tracks per release, 50 per artist; 90 % of tracks carry an
ISRC, 1 % of those share it with the next track; listens Zipf (count ≈ 10⁹ / rank,
rank a pseudo-random permutation of track ids) for 80 % of tracks, the other
20 % have none; 5 % of tracks have source audio (FLAC-sized). Catalogues are
cached under --cache (default /tmp) and reused.

Each size is measured in a fresh subprocess, so the peak RSS (ru_maxrss) is the
selection's own. Baseline in the same run: one plain SQLite sort of the same
rows (`SELECT track_id, sum(count) FROM listens GROUP BY track_id ORDER BY 2
DESC, 1` consumed to the end) — the least any ranking by listens must do.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and this file
# ("select.py") would shadow the standard library's `select` module that
# subprocess imports: replace that entry with the source tree.
ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path[0] = str(ROOT / "src")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402


def build(path: Path, n: int) -> None:
    """Write an n-track catalogue at ``path`` (a workspace's catalogue.sqlite)."""
    from phonotheque.workspace import Workspace

    ws = Workspace.create(path)
    conn = sqlite3.connect(ws.catalogue, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    seq = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < :n)"
    artists = max(n // 50, 1)
    releases = max(n // 10, 1)
    p = {"n": n, "a": artists, "r": releases}
    conn.execute("BEGIN")
    conn.execute(f"""{seq.replace(':n', ':a')} INSERT INTO artist(id, key, mbid, name)
                     SELECT i, 'synth-artist:' || i, NULL, 'Artist ' || i FROM c""", p)
    conn.execute(f"""{seq.replace(':n', ':r')} INSERT INTO release(id, key, title)
                     SELECT i, 'synth-release:' || i, 'Release ' || i FROM c""", p)
    conn.execute(f"""{seq} INSERT INTO track(id, key, title, release_id, disc, position,
                                             duration_ms)
                     SELECT i, printf('synth:%08x:%d', (i * 2654435761) % 4294967296, i),
                            'Track ' || i, (i - 1) / 10 + 1, 1, (i - 1) % 10 + 1,
                            120000 + (i * 7919) % 240000 FROM c""", p)
    conn.execute(f"""{seq} INSERT INTO track_artist(track_id, position, artist_id)
                     SELECT i, 0, ((i - 1) / 50) % :a + 1 FROM c""", p)
    # ISRC: 90 % of tracks; a track i with i % 100 == 2 reuses the ISRC of i - 1
    conn.execute(f"""{seq} INSERT INTO track_isrc(track_id, isrc)
                     SELECT i, printf('QZ%03d%07d', (CASE WHEN i % 100 = 2 THEN i - 1
                                                     ELSE i END) / 10000000,
                                      (CASE WHEN i % 100 = 2 THEN i - 1 ELSE i END) % 10000000)
                     FROM c WHERE i % 10 != 0""", p)
    conn.execute(f"""{seq} INSERT INTO listens(dataset, key_kind, key, count, track_id)
                     SELECT 'synth', 'track_id', i,
                            CAST(1e9 / ((i * 2654435761) % :n + 1) AS INTEGER), i
                     FROM c WHERE (i * 2654435761) % :n < :n * 0.8""", p)
    conn.execute(f"""{seq} INSERT INTO source_audio(path, track_id, size, mtime_ns, codec,
                                                    duration_ms)
                     SELECT '/music/' || i || '.flac', i,
                            (120000 + (i * 7919) % 240000) * 110, 0, 'flac',
                            120000 + (i * 7919) % 240000
                     FROM c WHERE i % 20 = 7""", p)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def measure(root: Path, what: str) -> dict[str, Any]:
    """Run in a fresh process: the selection (``select:<engine>``), or the baseline sort."""
    t0 = time.perf_counter()
    if what.startswith("select"):
        from phonotheque.progress import ProgressEvent
        from phonotheque.select import select
        from phonotheque.workspace import Workspace

        steps: dict[str, float] = {}
        last = [t0]

        def step(ev: ProgressEvent) -> None:  # wall time of each named step
            now = time.perf_counter()
            steps[ev.message or str(ev.done)] = round(now - last[0], 2)
            last[0] = now

        report = select(Workspace.open(root), progress=step)
        extra = {"selected": report.selected, "covered_share": report.covered_share,
                 "est_bytes": report.est_bytes, "steps": steps}
    else:
        conn = sqlite3.connect(root / "catalogue.sqlite")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=FILE")
        conn.execute("PRAGMA threads=2")
        n = 0
        for _ in conn.execute("""SELECT track_id, sum(count) AS c FROM listens
                                 WHERE track_id IS NOT NULL GROUP BY track_id
                                 ORDER BY c DESC, track_id"""):
            n += 1
        extra = {"rows": n}
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time too: on a shared machine the wall time mostly measures the neighbours
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss": ru.ru_maxrss * 1024,
            "load": os.getloadavg()[0], **extra}


def _child(root: Path, what: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", what, "--root", str(root)],
        check=True, capture_output=True, text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def build_columnar(path: Path, n: int) -> None:
    """The same n-track catalogue as :func:`build`, written straight into a columnar
    workspace's bulk tables by DuckDB (a timing-only build: no ingest, no SQLite copy;
    source audio, an operational table, goes to catalogue.sqlite as usual)."""
    from phonotheque.catalogue import bulk
    from phonotheque.workspace import Workspace

    ws = Workspace.create(path, engine="duckdb")
    con = bulk.open_bulk(ws.root)
    p = {"n": n, "a": max(n // 50, 1), "r": max(n // 10, 1)}
    seq = "FROM range(1, $n + 1) c(i)"
    j = "(CASE WHEN i % 100 = 2 THEN i - 1 ELSE i END)"
    try:
        con.execute("BEGIN TRANSACTION")
        for sql in (
            f"""INSERT INTO artist(id, key, name) SELECT i, 'synth-artist:' || i,
                'Artist ' || i {seq.replace('$n', '$a')}""",
            f"""INSERT INTO release(id, key, title) SELECT i, 'synth-release:' || i,
                'Release ' || i {seq.replace('$n', '$r')}""",
            f"""INSERT INTO track(id, key, title, release_id, disc, position, duration_ms)
                SELECT i, printf('synth:%08x:%d', (i * 2654435761) % 4294967296, i),
                       'Track ' || i, (i - 1) // 10 + 1, 1, (i - 1) % 10 + 1,
                       120000 + (i * 7919) % 240000 {seq}""",
            f"""INSERT INTO track_artist SELECT i, 0, ((i - 1) // 50) % $a + 1 {seq}""",
            f"""INSERT INTO track_isrc(track_id, isrc) SELECT i, printf('QZ%03d%07d',
                {j} // 10000000, {j} % 10000000) {seq} WHERE i % 10 != 0""",
            f"""INSERT INTO listens(id, dataset, key_kind, key, count, track_id)
                SELECT i, 'synth', 'track_id', CAST(i AS VARCHAR),
                       1000000000 // ((i * 2654435761) % $n + 1), i
                {seq} WHERE (i * 2654435761) % $n < $n * 0.8"""):
            con.execute(sql, {k: v for k, v in p.items() if f"${k}" in sql})
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    conn = sqlite3.connect(ws.catalogue, isolation_level=None)
    conn.execute("""WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?)
                    INSERT INTO source_audio(path, track_id, size, mtime_ns, codec, duration_ms)
                    SELECT '/music/' || i || '.flac', i, (120000 + (i * 7919) % 240000) * 110,
                           0, 'flac', 120000 + (i * 7919) % 240000
                    FROM c WHERE i % 20 = 7""", (n,))
    conn.close()


def _columnar_copy(root: Path, fresh: bool) -> Path:
    """A columnar workspace converted from the cached SQLite one (cached beside it)."""
    from phonotheque.workspace import Workspace

    col = root.with_name(root.name + "-duckdb")
    if fresh or not (col / "catalogue.duckdb").exists():
        if col.exists():
            subprocess.run(["rm", "-rf", str(col)], check=True)
        col.mkdir(parents=True)
        subprocess.run(["cp", str(root / "catalogue.sqlite"), str(col)], check=True)
        t = time.perf_counter()
        Workspace.create(col, engine="duckdb")
        print(f"converted to a columnar workspace in {time.perf_counter() - t:.1f} s "
              f"(catalogue.duckdb {(col / 'catalogue.duckdb').stat().st_size / 1e9:.2f} GB)",
              flush=True)
    return col


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--cache", type=Path, default=Path("/tmp"))
    ap.add_argument("--fresh", action="store_true", help="rebuild cached catalogues")
    ap.add_argument("--engines", default="sqlite",
                    help="select engines to measure in the same run, e.g. sqlite,duckdb")
    ap.add_argument("--direct", action="store_true",
                    help="duckdb only: build the columnar tables straight with DuckDB "
                         "(build_columnar) instead of converting a SQLite catalogue")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.root, args.child)))
        return

    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        root = args.cache / f"phono-bench-select-{n}"
        if args.direct:
            root = root.with_name(root.name + "-direct")
            if args.fresh or not (root / "catalogue.duckdb").exists():
                if root.exists():
                    subprocess.run(["rm", "-rf", str(root)], check=True)
                t = time.perf_counter()
                build_columnar(root, n)
                print(f"built {n:,} tracks into catalogue.duckdb in "
                      f"{time.perf_counter() - t:.1f} s "
                      f"({(root / 'catalogue.duckdb').stat().st_size / 1e9:.2f} GB)", flush=True)
            for _ in range(2):  # a first selection, then a re-selection
                sel = _child(root, "select:duckdb")
                print(f"{n:>11,} tracks, columnar: select {sel['wall_s']:.1f} s wall / "
                      f"{sel['cpu_s']:.1f} s CPU (load {sel['load']:.1f}), peak RSS "
                      f"{sel['peak_rss'] / 2**20:.0f} MiB; selected {sel['selected']:,} "
                      f"covering {sel['covered_share']:.4f}", flush=True)
                print(f"    steps (s wall): {sel['steps']}", flush=True)
            continue
        if args.fresh or not (root / "catalogue.sqlite").exists():
            if root.exists():
                subprocess.run(["rm", "-rf", str(root)], check=True)
            t = time.perf_counter()
            build(root, n)
            print(f"built {n:,} tracks in {time.perf_counter() - t:.1f} s "
                  f"({(root / 'catalogue.sqlite').stat().st_size / 1e9:.2f} GB)", flush=True)
        base = _child(root, "baseline")
        for engine in args.engines.split(","):
            at = root if engine == "sqlite" else _columnar_copy(root, args.fresh)
            sel = _child(at, f"select:{engine}")
            again = _child(at, f"select:{engine}")  # re-selection: ledger rows mostly unchanged
            results.append((n, sel, again, base))
            print(f"{n:>11,} tracks, engine {engine}: select {sel['wall_s']:.1f} s wall / "
                  f"{sel['cpu_s']:.1f} s CPU (load {sel['load']:.1f}), peak RSS "
                  f"{sel['peak_rss'] / 2**20:.0f} MiB; re-select {again['wall_s']:.1f} s wall / "
                  f"{again['cpu_s']:.1f} s CPU (load {again['load']:.1f}); baseline sort "
                  f"{base['wall_s']:.1f} s wall / {base['cpu_s']:.1f} s CPU "
                  f"(RSS {base['peak_rss'] / 2**20:.0f} MiB); ratio select/sort "
                  f"{sel['wall_s'] / base['wall_s']:.1f} wall, {sel['cpu_s'] / base['cpu_s']:.1f} CPU; "
                  f"selected {sel['selected']:,} covering {sel['covered_share']:.4f}", flush=True)
            print(f"    steps (s wall): {sel['steps']}", flush=True)
    if len(results) >= 2 and results[-2][0] != results[-1][0]:
        (n1, s1, _, _), (n2, s2, _, _) = results[-2], results[-1]
        for what in ("wall_s", "cpu_s"):
            k = math.log(s2[what] / s1[what]) / math.log(n2 / n1)
            t256 = s2[what] * (256e6 / n2) ** k
            print(f"{what[:-2]}: measured scaling exponent {k:.2f} (time ∝ n^k) -> "
                  f"256 M tracks ≈ {t256 / 60:.0f} min")
        print(f"peak RSS stays bounded by SQLite's caches: {s1['peak_rss'] / 2**20:.0f} MiB at "
              f"{n1:,}, {s2['peak_rss'] / 2**20:.0f} MiB at {n2:,}")
    print(f"(2-core machine shared with other engineers' test runs; cpu count "
          f"{os.cpu_count()})")


if __name__ == "__main__":
    main()
