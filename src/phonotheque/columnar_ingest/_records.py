"""Stage a row source's model records into the columnar staging tables.

The general path: any :mod:`phonotheque.sources` reader that yields artists,
releases, tracks and ISRC links (MusicBrainz JSON in every layout, mbdump) runs as
it does for a SQLite workspace, its records pass the same :mod:`~phonotheque.sources.bounds`
checks, and they are appended to ``stg_*`` in chunks (Arrow batches, so DuckDB takes
them without a row loop). The rows are exactly those the row path writes, so the
merge gives the same tables; faster readers (``musicbrainz`` lines in SQL) fall back
to this one for what they do not read themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from phonotheque.catalogue import bulk_merge, columnar
from phonotheque.columnar_ingest import Staged
from phonotheque.errors import InputError
from phonotheque.ingest import within_bounds
from phonotheque.model import (
    Artist,
    Checkpoint,
    Provenance,
    Record,
    Reject,
    Release,
    Track,
    TrackISRC,
)
from phonotheque.sources import Input

_CHUNK = 100_000  # rows per Arrow batch

_TEXT = pa.string()
_INT = pa.int64()
_TYPES: dict[str, dict[str, pa.DataType]] = {
    table: {c: (_INT if c in ("seq", "disc", "position", "duration_ms") else
                pa.int32() if c == "known_country" else
                pa.list_(_TEXT) if c == "artist_keys" else _TEXT) for c in cols}
    for table, cols in bulk_merge.STAGING_COLUMNS.items()
}


def _prov(p: Provenance | None) -> tuple[str | None, str | None, str | None]:
    return (None, None, None) if p is None else (p.source, p.locator, p.licence)


class Stager:
    """Appends records to the staging tables, numbering them in arrival order."""

    def __init__(self, con: columnar.Connection, staged: Staged, seq: int = 0) -> None:
        self.con = con
        self.staged = staged
        self.seq = seq
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _TYPES}

    def add(self, records: Iterable[Record]) -> None:
        """Stage ``records``; rejects are kept for the runner, checkpoints ignored
        (the runner checkpoints the whole input). ``read`` counts the rest, as the
        row path does."""
        rows = self.rows
        staged = self.staged
        for r in records:
            kind = type(r)
            if kind is Reject:
                assert isinstance(r, Reject)
                staged.rejects.append(r)
                continue
            if kind is Checkpoint:
                continue
            table = _TABLE.get(kind)
            if table is None:
                raise InputError(getattr(r, "path", kind.__name__),
                                 f"a {kind.__name__} record has no columnar table")
            self.seq += 1
            staged.read += 1
            out = rows[table]
            out.append(_ROW[kind](self.seq, r))
            if len(out) >= _CHUNK:
                self.flush()

    def flush(self) -> None:
        for table, rows in self.rows.items():
            if rows:
                insert_rows(self.con, table, rows, _TYPES[table])
                rows.clear()


def insert_rows(con: columnar.Connection, table: str, rows: list[tuple[Any, ...]],
                types: dict[str, pa.DataType]) -> None:
    """Append ``rows`` (tuples in the order of ``types``: column -> Arrow type) to
    ``table`` as one Arrow batch, so DuckDB takes them without a row loop."""
    columns = zip(*rows, strict=True)
    arrays = [pa.array(col, type=t) for col, t in zip(columns, types.values(), strict=True)]
    con.register("phono_stage_batch", pa.Table.from_arrays(arrays, names=list(types)))
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM phono_stage_batch")
    finally:
        con.unregister("phono_stage_batch")


_TABLE: dict[type, str] = {Track: "stg_track", TrackISRC: "stg_isrc", Artist: "stg_artist",
                           Release: "stg_release"}


def _track(seq: int, r: Any) -> tuple[Any, ...]:
    return (seq, r.key, r.mbid, r.title, r.artist_credit, list(r.artist_keys), r.release_key,
            r.disc, r.position, r.duration_ms, *_prov(r.prov))


def _isrc(seq: int, r: Any) -> tuple[Any, ...]:
    return (seq, r.track_key, r.isrc, int(r.known_country), *_prov(r.prov))


def _artist(seq: int, r: Any) -> tuple[Any, ...]:
    return (seq, r.key, r.mbid, r.name, r.sort_name, *_prov(r.prov))


def _release(seq: int, r: Any) -> tuple[Any, ...]:
    return (seq, r.key, r.mbid, r.title, r.date, r.label, r.barcode, r.artist_credit,
            r.art_path, *_prov(r.prov))


_ROW = {Track: _track, TrackISRC: _isrc, Artist: _artist, Release: _release}


def stage(con: columnar.Connection, item: Input, records: Iterable[Record]) -> Staged:
    """Stage all of ``records`` (one input, read by a row source) into fresh tables."""
    bulk_merge.create_staging(con)
    staged = Staged()
    stager = Stager(con, staged)
    stager.add(within_bounds(item, records))
    stager.flush()
    return staged


class MergedByBulkMerge:
    """``prepare``/``merge`` of a reader that stages into ``stg_*`` (:mod:`bulk_merge`):
    the merge worked out before the runner's transaction, written inside it."""

    def prepare(self, con: columnar.Connection, staged: Staged, tmp: Path) -> None:
        staged.plan = bulk_merge.prepare(con, tmp)

    def merge(self, con: columnar.Connection, staged: Staged) -> dict[str, list[int]]:
        assert staged.plan is not None  # the runner prepares every part first
        counts = bulk_merge.apply(con, staged.plan)
        bulk_merge.drop_staging(con)
        return counts
