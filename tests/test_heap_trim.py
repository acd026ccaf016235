"""The C heap's free pages go back to the system while a columnar connection is open."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from phonotheque.catalogue import bulk
from phonotheque.workspace import Workspace

# A child process fills glibc's heap with 1 KiB blocks (Python hands blocks past 512
# bytes to malloc), frees all but one in 64 (so the heap cannot shrink from its top),
# then reports its RSS in MiB just after and 3 s later, with or without the trimmer.
_CHILD = textwrap.dedent("""
    import sys, time
    from phonotheque import heap_trim
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    blocks = [bytes(1024) * 1 for _ in range(300_000)]
    kept = blocks[::64]
    del blocks
    full = rss()
    if sys.argv[1] == "trim":
        assert heap_trim.start()
    time.sleep(3 * heap_trim.INTERVAL)
    print(full, rss(), len(kept))
""")


def _rss(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True,
                         text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def test_free_heap_pages_are_returned_to_the_system() -> None:
    """~290 MiB freed in a fragmented heap: glibc alone keeps it in the RSS; with the
    trimmer running (as every columnar connection starts it) it is given back. The
    project runs on Debian (glibc); elsewhere ``start`` returns False and this fails."""
    full, later = _rss("none")
    assert later > full - 50, (full, later)  # glibc alone keeps it
    full, later = _rss("trim")
    assert later < full - 150, (full, later)


def test_a_columnar_connection_starts_the_trimmer(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    bulk.open_bulk(ws.root).close()
    assert any(t.name == "heap-trim" and t.daemon for t in threading.enumerate())


# A child process fills DuckDB's buffers (~0.6 GiB through DuckDB's own jemalloc), frees
# them, then reports its RSS in MiB: just after, after `hand_back_memory` (or nothing), and
# 3 s later; the background threads switched off or left as `columnar.connect` sets them.
_DUCKDB_CHILD = textwrap.dedent("""
    import sys, tempfile, time
    from pathlib import Path
    from phonotheque.catalogue import bulk, columnar
    from phonotheque.workspace import Workspace
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    root = Path(tempfile.mkdtemp(dir=sys.argv[3])) / "ws"
    Workspace.create(root, engine="duckdb")
    limit = 1 << 30
    con = bulk.open_bulk(root, memory_bytes=limit)
    if sys.argv[2] == "off":
        con.execute("SET allocator_background_threads = false")
    con.execute("CREATE TEMP TABLE t AS SELECT range AS i, md5(range::VARCHAR) AS s "
                "FROM range(4000000)")
    con.execute("SELECT count(DISTINCT s) FROM t").fetchall()
    con.execute("DROP TABLE t")
    full = rss()
    if sys.argv[1] == "hand":
        columnar.hand_back_memory(con, limit)
    after = rss()
    time.sleep(3)
    print(full, after, rss(), columnar.memory_in_force(con))
""")


def _duckdb_rss(call: str, threads: str, tmp: Path) -> list[int]:
    out = subprocess.run([sys.executable, "-c", _DUCKDB_CHILD, call, threads, str(tmp)],
                         capture_output=True, text=True, check=True).stdout.split()
    return [int(x) for x in out]


def test_duckdb_hands_its_freed_memory_back_when_asked(tmp_path: Path) -> None:
    """What DuckDB's allocator keeps once its buffers are freed leaves the RSS at once
    with hand_back_memory (the publish calls it before SQLite's index sorts), and the
    memory limit is set back as it was. Without the call, and without jemalloc's
    background threads, it stays (measured: 3 GiB through a 10 M publish's SQLite phase)."""
    full, after, _, _ = _duckdb_rss("none", "off", tmp_path)
    assert after > full - 50, (full, after)
    full, after, _, limit = _duckdb_rss("hand", "off", tmp_path)
    assert after < full - 300, (full, after)
    assert limit == 1 << 30


def test_duckdb_returns_freed_memory_on_its_own(tmp_path: Path) -> None:
    """Every columnar connection runs jemalloc's background threads: freed buffers leave
    the RSS within seconds while DuckDB is idle, where they stayed until its next work."""
    full, after, later, _ = _duckdb_rss("none", "on", tmp_path)
    assert later < full - 300, (full, after, later)
