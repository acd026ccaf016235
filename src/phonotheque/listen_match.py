"""How many listens matched a track, and how many matched nothing, by key kind.

A listen row keeps the key it arrived with (``mbid``, ``isrc``, ``track_id`` or
``key``) and is resolved to a track when one carries that key. Rows that match
no track count towards no coverage; a catalogue whose listens mostly match
nothing (the wrong key column, or listens from another MusicBrainz snapshot)
would otherwise report "100 % coverage" of almost nothing. Select, stats and the
coverage report all show this one summary.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # DuckDB is imported where a columnar connection is opened, not here
    from phonotheque.catalogue.columnar import Connection as ColumnarConnection

__all__ = ["KindMatch", "ListenMatch", "listen_match"]


@dataclass(frozen=True, slots=True)
class KindMatch:
    """Listen rows of one key kind: how many matched a track and how many did not."""

    kind: str
    rows_matched: int
    rows_unmatched: int
    listens_matched: int
    listens_unmatched: int

    @property
    def listens(self) -> int:
        return self.listens_matched + self.listens_unmatched

    @property
    def unmatched_share(self) -> float:
        """Share of this kind's listens that matched no track (0 when it has none)."""
        return self.listens_unmatched / self.listens if self.listens else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rows_matched": self.rows_matched,
                "rows_unmatched": self.rows_unmatched,
                "listens_matched": self.listens_matched,
                "listens_unmatched": self.listens_unmatched,
                "unmatched_share": self.unmatched_share}


@dataclass(frozen=True, slots=True)
class ListenMatch:
    """Every listen row of the catalogue, matched or not, per key kind."""

    kinds: tuple[KindMatch, ...]

    @property
    def rows(self) -> int:
        return sum(k.rows_matched + k.rows_unmatched for k in self.kinds)

    @property
    def matched(self) -> int:
        return sum(k.listens_matched for k in self.kinds)

    @property
    def unmatched(self) -> int:
        return sum(k.listens_unmatched for k in self.kinds)

    @property
    def total(self) -> int:
        return self.matched + self.unmatched

    @property
    def unmatched_share(self) -> float:
        return self.unmatched / self.total if self.total else 0.0

    @property
    def mostly_unmatched(self) -> bool:
        """More listens matched nothing than matched a track: coverage means little."""
        return self.unmatched > self.matched

    def warning(self) -> str | None:
        """The loud warning a curator must see when most listens matched nothing, else None."""
        if not self.mostly_unmatched:
            return None
        worst = max(self.kinds, key=lambda k: k.listens_unmatched)
        return (f"{self.unmatched_share:.1%} of listens ({self.unmatched:,} of {self.total:,}) "
                f"matched no track (worst: {worst.kind} keys, {worst.unmatched_share:.1%} "
                "unmatched); coverage counts only the matched ones. Usually the listens use "
                "another key column or another MusicBrainz snapshot than the catalogue.")

    def as_dict(self) -> dict[str, Any]:
        return {"matched": self.matched, "unmatched": self.unmatched,
                "unmatched_share": self.unmatched_share,
                "mostly_unmatched": self.mostly_unmatched,
                "by_kind": [k.as_dict() for k in self.kinds]}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ListenMatch:
        """Back from :meth:`as_dict` (a stored selection summary); empty for older ones."""
        kinds = tuple(KindMatch(k["kind"], int(k["rows_matched"]), int(k["rows_unmatched"]),
                                int(k["listens_matched"]), int(k["listens_unmatched"]))
                      for k in (d or {}).get("by_kind", ()))
        return cls(kinds)


def listen_match(conn: sqlite3.Connection | ColumnarConnection) -> ListenMatch:
    """One grouped scan of ``listens``: rows and listens, matched and not, per key kind.

    ``conn`` is the SQLite catalogue or a columnar one (the same SQL runs on both).
    """
    rows = conn.execute(
        # total(): a float sum that cannot overflow, whatever the counts add up to
        # (a macro on DuckDB connections, see catalogue/columnar.py)
        """SELECT key_kind,
                  coalesce(sum(track_id IS NOT NULL), 0), coalesce(sum(track_id IS NULL), 0),
                  total(CASE WHEN track_id IS NOT NULL THEN count END),
                  total(CASE WHEN track_id IS NULL THEN count END)
           FROM listens GROUP BY key_kind ORDER BY key_kind""").fetchall()
    # A float total past 2^53 is no longer exact anyway, and capped there the four
    # kinds' sum stays a 64-bit integer for JSON (a catalogue written before
    # listen counts were bounded can hold rows of 2^62).
    return ListenMatch(tuple(KindMatch(str(r[0]), int(r[1]), int(r[2]),
                                       int(min(r[3], _EXACT)), int(min(r[4], _EXACT)))
                             for r in rows))


_EXACT = 2**53  # floats are exact integers up to here (see sources.bounds.MAX_TRACK_LISTENS)
