"""Album art choices (owner of ``art_scan`` and ``release_art``).

``phono pack`` looks for art of the releases it packed; :func:`record_art_scan`
stores which releases were looked at and the image chosen for each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from phonotheque.catalogue.store import Store


@dataclass(frozen=True, slots=True)
class ChosenArt:
    """The image chosen for a release; ``source`` is the image file, or the audio file
    it is embedded in when ``origin`` is ``embedded``."""

    release_id: int
    sha256: str
    size: int
    mime: str
    member: str
    origin: str
    source: str


def record_art_scan(store: Store, packed_table: str, scanned: Iterable[int],
                    found: Sequence[ChosenArt]) -> None:
    """One transaction: releases not in ``packed_table`` (a temp table of release
    ``id`` s) lose their art and scan, so they are looked at again if they return;
    each ``scanned`` release records whether art was found, and ``found`` replaces
    the art of the releases it covers."""
    found_ids = {a.release_id for a in found}
    scanned_ids = sorted(scanned)
    with store.transaction() as conn:
        for table in ("art_scan", "release_art"):
            conn.execute(
                f"DELETE FROM {table} WHERE release_id IN (SELECT release_id FROM {table} "
                f"WHERE release_id NOT IN (SELECT id FROM {packed_table}))")
        conn.executemany(
            "INSERT OR REPLACE INTO art_scan(release_id, found) VALUES (?, ?)",
            [(i, int(i in found_ids)) for i in scanned_ids],
        )
        conn.executemany("DELETE FROM release_art WHERE release_id = ?",
                         [(i,) for i in scanned_ids])
        conn.executemany(
            "INSERT INTO release_art(release_id, sha256, size, mime, member, origin, source) "
            "VALUES (?,?,?,?,?,?,?)",
            [(a.release_id, a.sha256, a.size, a.mime, a.member, a.origin, a.source)
             for a in found],
        )
