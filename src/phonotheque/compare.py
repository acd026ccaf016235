"""Coverage of one catalogue by another: which ISRCs and recording MBIDs each lacks.

Both catalogues are SQLite files; the comparison ATTACHes the second to the
first and runs set operations in SQL, so it works at any size without loading
either catalogue into Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from phonotheque.catalogue.store import Store


@dataclass(frozen=True, slots=True)
class KeyOverlap:
    """Overlap of one kind of key (ISRC or recording MBID) between A and B."""

    kind: str
    in_a: int
    in_b: int
    both: int
    only_a: int
    only_b: int
    sample_only_a: list[str] = field(default_factory=list)
    sample_only_b: list[str] = field(default_factory=list)

    @property
    def share_of_a_in_b(self) -> float:
        return self.both / self.in_a if self.in_a else 0.0

    @property
    def share_of_b_in_a(self) -> float:
        return self.both / self.in_b if self.in_b else 0.0


@dataclass(frozen=True, slots=True)
class CompareReport:
    a: str
    b: str
    isrc: KeyOverlap
    mbid: KeyOverlap


_KEYS = {
    "isrc": "SELECT DISTINCT isrc AS k FROM {db}.track_isrc",
    "mbid": "SELECT DISTINCT mbid AS k FROM {db}.track WHERE mbid IS NOT NULL",
}


def compare(a: Store, b_path: Path, *, sample: int = 10, a_name: str = "A",
            b_name: str = "B") -> CompareReport:
    """Compare catalogue ``a`` with the catalogue file at ``b_path`` (only read)."""
    conn = a.conn
    # Plain path: the store connection is not opened in URI mode. We only read.
    conn.execute("ATTACH DATABASE ? AS other", (str(b_path),))
    try:
        parts = {kind: _overlap(a, kind, sample) for kind in _KEYS}
    finally:
        conn.execute("DETACH DATABASE other")
    return CompareReport(a_name, b_name, parts["isrc"], parts["mbid"])


def _overlap(store: Store, kind: str, sample: int) -> KeyOverlap:
    qa = _KEYS[kind].format(db="main")
    qb = _KEYS[kind].format(db="other")
    in_a = store.scalar(f"SELECT count(*) FROM ({qa})")
    in_b = store.scalar(f"SELECT count(*) FROM ({qb})")
    both = store.scalar(f"SELECT count(*) FROM ({qa} INTERSECT {qb})")
    only_a = [r[0] for r in store.query(f"{qa} EXCEPT {qb} ORDER BY 1 LIMIT ?", (sample,))]
    only_b = [r[0] for r in store.query(f"{qb} EXCEPT {qa} ORDER BY 1 LIMIT ?", (sample,))]
    return KeyOverlap(kind, in_a, in_b, both, in_a - both, in_b - both, only_a, only_b)
