"""Listens ingest on a columnar workspace: time, CPU, peak RSS, catalogue.duckdb growth per row.

    PYTHONPATH=src python bench/listens_columnar.py --rows 10000000 --dir /work/scratch/me

Writes ``listens.parquet`` and ``listens.csv`` (``recording_mbid``, ``listen_count``; keys
in random order) and ``tracks.parquet`` (the same MBIDs) under ``--dir`` unless they are
there already, then for each format: a fresh columnar workspace holding the tracks
(inserted directly: the set-up, not what is measured), and ``phono ingest listens``'s
library call in a child process, measured from outside (wall, CPU of the child, peak
RSS from wait4, load average before and after). Every listen resolves to a track.
The machine is shared: read the load average beside every time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

_CHILD = """
import json, os, sys, time
from pathlib import Path
from phonotheque.ingest import ingest
from phonotheque.workspace import Workspace
ws = Workspace(Path(sys.argv[1]))
before = os.path.getsize(ws.columnar)
report = ingest(ws, "listens", [Path(sys.argv[2])])
print(json.dumps({"added": report.added, "read": report.read, "rejected": report.rejected,
                  "growth": os.path.getsize(ws.columnar) - before}))
"""


def _generate(rows: int, out: Path) -> None:
    from phonotheque.catalogue import bulk
    from phonotheque.workspace import Workspace

    if all((out / f).is_file() for f in ("listens.parquet", "listens.csv", "tracks.parquet")):
        return
    out.mkdir(parents=True, exist_ok=True)
    gen = out / "gen-ws"  # a throw-away workspace: its DuckDB connection writes the files
    shutil.rmtree(gen, ignore_errors=True)
    Workspace.create(gen, engine="duckdb")
    con = bulk.open_bulk(gen)
    con.execute(f"CREATE TEMP TABLE m AS SELECT i AS id, uuid()::VARCHAR AS mbid "
                f"FROM range(1, {rows} + 1) t(i)")
    listens = ("SELECT mbid AS recording_mbid, CAST(floor(pow(random(), 4) * 100000) AS BIGINT) "
               "AS listen_count FROM m ORDER BY hash(id)")
    con.execute(f"COPY ({listens}) TO '{out}/listens.parquet'")
    con.execute(f"COPY ({listens}) TO '{out}/listens.csv' (HEADER)")
    con.execute(f"COPY (SELECT id, mbid FROM m) TO '{out}/tracks.parquet'")
    con.close()
    shutil.rmtree(gen)


def _workspace(data: Path, root: Path) -> None:
    from phonotheque.catalogue import bulk
    from phonotheque.workspace import Workspace

    shutil.rmtree(root, ignore_errors=True)
    Workspace.create(root, engine="duckdb")
    con = bulk.open_bulk(root)
    try:
        con.execute(f"INSERT INTO track(id, key, mbid, title) SELECT id, mbid, mbid, 't' "
                    f"FROM read_parquet('{data}/tracks.parquet') ORDER BY id")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _measure(root: Path, path: Path) -> dict[str, object]:
    load_before = os.getloadavg()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(root), str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"ingest failed ({status})")
    child = json.loads(out)
    return {"format": path.suffix[1:], "wall_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024), **child,
            "bytes_per_row": round(child["growth"] / max(child["read"], 1), 1),
            "load_before": [round(x, 1) for x in load_before],
            "load_after": [round(x, 1) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, required=True, help="scratch folder (big files)")
    parser.add_argument("--formats", default="parquet,csv")
    args = parser.parse_args()
    data = args.dir / f"listens-{args.rows}"
    _generate(args.rows, data)
    for fmt in args.formats.split(","):
        root = data / f"ws-{fmt}"
        _workspace(data, root)
        print(json.dumps(_measure(root, data / f"listens.{fmt}")), flush=True)
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
