"""Where the bulk tables live: write rates and bytes per row, SQLite vs DuckDB's own file.

Part 1 (``--rows N``): DuckDB generates N track-like rows (id, 36-char text key,
MBID, title, release id, position, duration) and writes them (a) into an unindexed
table of a SQLite file through DuckDB's SQLite extension, (b) the same with a UNIQUE
index on the text key (what the SQLite catalogue's ``track.key`` has), (c) into a
table of DuckDB's own file. Wall and CPU time per row, bytes per row on disk; the
first line is the cost of generating the rows alone (included in the others).

Part 2 (``--workspace WS``, repeatable): bytes per track of each table (with its
indexes) in a workspace's ``catalogue.sqlite`` (SQLite's ``dbstat``) and
``catalogue.duckdb`` (DuckDB's ``pragma_storage_info`` blocks), over the number of
tracks.

    .venv/bin/python bench/storage.py --rows 1000000 --workspace /tmp/ws
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from phonotheque.catalogue import columnar

ROWS_SQL = """
SELECT i AS id, 'mb:' || md5(i::VARCHAR)[1:8] || '-' || md5(i::VARCHAR)[9:12] || '-'
       || md5(i::VARCHAR)[13:16] || '-' || md5(i::VARCHAR)[17:20] || '-'
       || md5(i::VARCHAR)[21:32] AS key,
       md5((i * 7)::VARCHAR) AS mbid, 'Track title ' || i AS title,
       i // 12 AS release_id, i % 12 + 1 AS position, 150000 + (i * 7919) % 200000 AS duration_ms
FROM range({n}) t(i)
"""
TRACK_COLS = ("id BIGINT, key VARCHAR, mbid VARCHAR, title VARCHAR, release_id BIGINT, "
              "position BIGINT, duration_ms BIGINT")


def _timed(con: columnar.Connection, sql: str) -> tuple[float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    con.execute(sql)
    return time.perf_counter() - t0, time.process_time() - c0


def write_rates(n: int, tmp: Path) -> list[tuple[str, float, float, int]]:
    """[(target, wall s, CPU s, bytes on disk)] for writing ``n`` rows to each target."""
    cat = tmp / "cat.sqlite"
    sqlite3.connect(cat).execute("CREATE TABLE track(id INTEGER)").connection.close()
    con = columnar.connect(cat, temp_directory=tmp / "spill")
    wall, cpu = _timed(con, f"SELECT count(*), sum(length(key) + length(mbid) + length(title)) "
                            f"FROM ({ROWS_SQL.format(n=n)})")
    con.close()
    out = [("(generating the rows only, nothing written)", wall, cpu, 0)]
    for label, index in (("SQLite table via the extension, no index", False),
                         ("SQLite table via the extension, UNIQUE(key)", True)):
        dst = tmp / f"out-{index}.sqlite"
        db = sqlite3.connect(dst)
        db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, key TEXT NOT NULL"
                   + (" UNIQUE" if index else "") + ", mbid TEXT, title TEXT, "
                   "release_id INTEGER, position INTEGER, duration_ms INTEGER)")
        db.close()
        con = columnar.connect(cat, temp_directory=tmp / "spill")
        columnar.attach(con, dst, "o")
        wall, cpu = _timed(con, f"INSERT INTO o.t {ROWS_SQL.format(n=n)}")
        con.close()
        out.append((label, wall, cpu, dst.stat().st_size))
    dst = tmp / "out.duckdb"
    con = columnar.connect(cat, temp_directory=tmp / "spill", database=dst)
    con.execute(f"CREATE TABLE t({TRACK_COLS})")
    wall, cpu = _timed(con, f"INSERT INTO t {ROWS_SQL.format(n=n)}")
    con.execute("CHECKPOINT")
    con.close()
    out.append(("DuckDB's own file", wall, cpu, dst.stat().st_size))
    return out


def sqlite_tables(db: Path) -> dict[str, int]:
    """Bytes per table in a SQLite file, its indexes counted with it."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    owner = {name: tbl for name, tbl in con.execute(
        "SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")}
    sizes: dict[str, int] = {}
    for name, size in con.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
        table = owner.get(name, name)
        sizes[table] = sizes.get(table, 0) + int(size)
    con.close()
    return sizes


def duckdb_tables(ws: Path) -> dict[str, int]:
    """Bytes per table in catalogue.duckdb: distinct persistent blocks x block size."""
    con = columnar.connect(ws / "catalogue.sqlite", temp_directory=ws / "tmp" / "duckdb",
                           database=ws / "catalogue.duckdb")
    block = con.execute("SELECT block_size FROM pragma_database_size() "
                        "WHERE database_name = current_database()").fetchone()
    assert block is not None
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall()]
    sizes = {}
    for t in tables:
        row = con.execute(f"SELECT count(DISTINCT block_id) FROM pragma_storage_info('{t}') "
                          "WHERE persistent").fetchone()
        sizes[t] = int(row[0] if row else 0) * int(block[0])
    con.close()
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=0, help="part 1: rows to write (0: skip)")
    ap.add_argument("--workspace", type=Path, action="append", default=[],
                    help="part 2: a workspace to measure (repeatable)")
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder for part 1")
    args = ap.parse_args()
    if args.rows:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            print(f"\nWriting {args.rows:,} track-like rows (DuckDB generates them):\n")
            print("| target | wall s | CPU s | µs/row (wall) | µs/row (CPU) | B/row on disk |")
            print("|---|---:|---:|---:|---:|---:|")
            for label, wall, cpu, size in write_rates(args.rows, Path(tmp)):
                print(f"| {label} | {wall:.2f} | {cpu:.2f} | {wall / args.rows * 1e6:.2f} | "
                      f"{cpu / args.rows * 1e6:.2f} | {size / args.rows:.0f} |")
    for ws in args.workspace:
        tracks = sqlite3.connect(f"file:{ws / 'catalogue.sqlite'}?mode=ro", uri=True)
        n = 0
        if (ws / "catalogue.duckdb").is_file():
            con = columnar.connect(ws / "catalogue.sqlite", temp_directory=ws / "tmp" / "duckdb",
                                   database=ws / "catalogue.duckdb")
            row = con.execute("SELECT count(*) FROM track").fetchone()
            con.close()
            n = int(row[0]) if row else 0
        if not n:
            row = tracks.execute("SELECT count(*) FROM track").fetchone()
            n = int(row[0]) if row else 0
        tracks.close()
        print(f"\n{ws}: {n:,} tracks\n")
        print("| file | table (+ its indexes) | MB | B/track |")
        print("|---|---|---:|---:|")
        parts = [("catalogue.sqlite", sqlite_tables(ws / "catalogue.sqlite"))]
        if (ws / "catalogue.duckdb").is_file():
            parts.append(("catalogue.duckdb", duckdb_tables(ws)))
        for file, sizes in parts:
            for table, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
                if size >= 1e6:
                    print(f"| {file} | {table} | {size / 1e6:,.1f} | {size / max(n, 1):,.1f} |")
            total = sum(sizes.values())
            print(f"| {file} | **all** | {total / 1e6:,.1f} | {total / max(n, 1):,.1f} |")


if __name__ == "__main__":
    sys.exit(main())
