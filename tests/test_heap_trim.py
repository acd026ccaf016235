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
