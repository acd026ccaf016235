"""Catalogue statistics a curator asks for first."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from phonotheque.catalogue.store import Store
from phonotheque.listen_match import ListenMatch, listen_match


@dataclass(frozen=True, slots=True)
class CatalogueStats:
    tracks: int
    releases: int
    artists: int
    isrcs: int
    unique_isrcs: int
    shared_isrcs: int
    tracks_sharing_isrc: int
    tracks_without_isrc: int
    unknown_country_isrcs: int
    total_listens: int  # listens matched to a track
    tracks_with_listens: int
    unmatched_listens: int  # listens whose key matches no track
    unmatched_listen_rows: int
    tracks_with_audio: int
    source_audio_files: int
    source_audio_bytes: int
    excluded_tracks: int
    exclusions: int
    rejects: int
    listen_match: ListenMatch  # matched / unmatched listens by key kind

    def counts(self) -> dict[str, int]:
        """Every count, by name (the per-kind listen breakdown is in ``listen_match``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "listen_match"}

    def as_dict(self) -> dict[str, Any]:
        return {**self.counts(), "listens": self.listen_match.as_dict()}


def catalogue_stats(store: Store) -> CatalogueStats:
    """Count everything in one pass per table; every query is an index or table scan."""
    q = store.scalar
    matching = listen_match(store.conn)
    return CatalogueStats(
        tracks=q("SELECT count(*) FROM track"),
        releases=q("SELECT count(*) FROM release"),
        artists=q("SELECT count(*) FROM artist"),
        isrcs=q("SELECT count(*) FROM track_isrc"),
        unique_isrcs=q("SELECT count(DISTINCT isrc) FROM track_isrc"),
        shared_isrcs=q(
            "SELECT count(*) FROM (SELECT isrc FROM track_isrc GROUP BY isrc HAVING count(*) > 1)"
        ),
        tracks_sharing_isrc=q(
            """SELECT count(DISTINCT track_id) FROM track_isrc WHERE isrc IN
               (SELECT isrc FROM track_isrc GROUP BY isrc HAVING count(*) > 1)"""
        ),
        tracks_without_isrc=q(
            "SELECT count(*) FROM track t WHERE NOT EXISTS "
            "(SELECT 1 FROM track_isrc i WHERE i.track_id = t.id)"
        ),
        unknown_country_isrcs=q(
            "SELECT count(DISTINCT isrc) FROM track_isrc WHERE known_country = 0"
        ),
        # total(): a float sum, which cannot overflow as sum() can past 2^63; CAST
        # saturates at 2^63 - 1, so the figure stays a 64-bit integer for JSON
        total_listens=q("SELECT CAST(total(count) AS INTEGER) FROM listens "
                        "WHERE track_id IS NOT NULL"),
        tracks_with_listens=q(
            "SELECT count(DISTINCT track_id) FROM listens WHERE track_id IS NOT NULL AND count > 0"
        ),
        unmatched_listens=matching.unmatched,
        unmatched_listen_rows=q("SELECT count(*) FROM listens WHERE track_id IS NULL"),
        tracks_with_audio=q("SELECT count(DISTINCT track_id) FROM source_audio"),
        source_audio_files=q("SELECT count(*) FROM source_audio"),
        source_audio_bytes=q("SELECT coalesce(sum(size), 0) FROM source_audio"),
        excluded_tracks=q("SELECT count(*) FROM track WHERE excluded = 1"),
        exclusions=q("SELECT count(*) FROM exclusion"),
        rejects=q("SELECT count(*) FROM reject"),
        listen_match=matching,
    )
