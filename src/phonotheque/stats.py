"""Catalogue statistics a curator asks for first."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from phonotheque.listen_match import ListenMatch, listen_match
from phonotheque.workspace import Workspace

if TYPE_CHECKING:  # DuckDB is imported only when a columnar workspace is counted
    from phonotheque.catalogue.columnar import Connection as ColumnarConnection


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


#: Every count, one scalar subquery each, in one SELECT that both engines run. The
#: bulk tables have the same names and columns in catalogue.sqlite and catalogue.duckdb;
#: the operational tables (source_audio, exclusion, reject) are always in
#: catalogue.sqlite: ``main`` there, attached as ``cat`` beside a columnar catalogue.
_FIGURES: dict[str, str] = {
    "tracks": "SELECT count(*) FROM track",
    "releases": "SELECT count(*) FROM release",
    "artists": "SELECT count(*) FROM artist",
    "isrcs": "SELECT count(*) FROM track_isrc",
    "unique_isrcs": "SELECT count(DISTINCT isrc) FROM track_isrc",
    "shared_isrcs":
        "SELECT count(*) FROM (SELECT isrc FROM track_isrc GROUP BY isrc HAVING count(*) > 1)",
    "tracks_sharing_isrc":
        """SELECT count(DISTINCT track_id) FROM track_isrc WHERE isrc IN
           (SELECT isrc FROM track_isrc GROUP BY isrc HAVING count(*) > 1)""",
    "tracks_without_isrc":
        "SELECT count(*) FROM track t WHERE NOT EXISTS "
        "(SELECT 1 FROM track_isrc i WHERE i.track_id = t.id)",
    "unknown_country_isrcs":
        "SELECT count(DISTINCT isrc) FROM track_isrc WHERE known_country = 0",
    # total(): a float sum, which cannot overflow as sum() can past 2^63 (SQLite's;
    # a macro on DuckDB); saturated to a 64-bit integer below, for JSON
    "total_listens": "SELECT total(count) FROM listens WHERE track_id IS NOT NULL",
    "tracks_with_listens":
        "SELECT count(DISTINCT track_id) FROM listens WHERE track_id IS NOT NULL AND count > 0",
    "unmatched_listen_rows": "SELECT count(*) FROM listens WHERE track_id IS NULL",
    "tracks_with_audio": "SELECT count(DISTINCT track_id) FROM {ops}.source_audio",
    "source_audio_files": "SELECT count(*) FROM {ops}.source_audio",
    "source_audio_bytes": "SELECT coalesce(sum(size), 0) FROM {ops}.source_audio",
    "excluded_tracks": "SELECT count(*) FROM track WHERE excluded = 1",
    "exclusions": "SELECT count(*) FROM {ops}.exclusion",
    "rejects": "SELECT count(*) FROM {ops}.reject",
}

_MAX_INT64 = 2**63 - 1


def catalogue_stats(ws: Workspace) -> CatalogueStats:
    """Count everything in one pass per table; every query is an index or table scan.

    Runs on the engine that holds the workspace's bulk tables: SQLite, or DuckDB over
    catalogue.duckdb for a columnar workspace (the same SQL text).
    """
    if ws.engine == "duckdb":
        from phonotheque.catalogue import bulk, columnar

        con = bulk.open_bulk(ws.root, readonly=True)
        try:
            return _count(con, ops=columnar.CATALOGUE_ALIAS)
        except columnar.Error as exc:  # e.g. a corrupt or truncated catalogue.duckdb
            raise columnar.failed(bulk.path(ws.root), "counting the catalogue", exc) from exc
        finally:
            con.close()
    with ws.store(readonly=True) as store:
        return _count(store.conn, ops="main")


def _count(conn: sqlite3.Connection | ColumnarConnection, ops: str) -> CatalogueStats:
    sql = "SELECT " + ",\n  ".join(f"({query.format(ops=ops)}) AS {name}"
                                   for name, query in _FIGURES.items())
    row = conn.execute(sql).fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    figures = {name: int(value) for name, value in zip(_FIGURES, row, strict=True)}
    # CAST(total AS INTEGER) saturated at 2^63 - 1 in SQLite; DuckDB's CAST raises there
    figures["total_listens"] = min(figures["total_listens"], _MAX_INT64)
    matching = listen_match(conn)
    return CatalogueStats(**figures, unmatched_listens=matching.unmatched,
                          listen_match=matching)
