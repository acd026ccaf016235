"""``phono ingest tags`` on a columnar workspace: own files matched to tracks.

The tags reader (:mod:`phonotheque.sources.tags`) walks the tree as it does for a
SQLite workspace and yields one :class:`~phonotheque.model.SourceAudio` per file.
What differs is where the tracks are: in catalogue.duckdb. So each batch of files is

1. matched set-based there, with the row path's rules (:meth:`Store._match_track`):
   the recording MBID first, then each ISRC in the file's order, the lowest track id
   winning; a file matched by nothing describes a new track (its ``fallback``
   records), and a later file of the same batch matches the tracks the earlier ones
   created, as it would on the row path;
2. the new tracks (with their releases, artists and ISRCs) are staged and merged into
   catalogue.duckdb by its owner (:func:`bulk_merge.merge`) and committed;
3. the ``source_audio`` rows (and the batch's rejects) are written to
   catalogue.sqlite by their owner (:meth:`Store.write_source_audio`) and committed.

Two files, two commits, in that order: a crash between them leaves tracks without a
file, which the re-run (the file has no ``source_audio`` row yet, so it is read again)
matches or merges again, adding nothing twice (and records such a file as ``created``,
as the uninterrupted run would: :func:`_created_before`). The other order could leave a
``source_audio`` row pointing at a track that does not exist.

The tables equal the row path's (ids included) for the same files in the same order.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from phonotheque.catalogue import bulk, bulk_listens, bulk_merge, bulk_selection, columnar
from phonotheque.catalogue.store import Store
from phonotheque.ingest import (
    IngestOptions,
    IngestReport,
    SourceReport,
    with_known_files,
    within_bounds,
)
from phonotheque.model import (
    Artist,
    Checkpoint,
    Record,
    Reject,
    Release,
    SourceAudio,
    Track,
    TrackISRC,
)
from phonotheque.progress import ProgressEvent, ProgressFn
from phonotheque.sources import STAGE, Input, ReadOptions, get
from phonotheque.workspace import Workspace

KIND = "tags"


@dataclass(slots=True)
class _Batch:
    files: dict[str, SourceAudio] = field(default_factory=dict)  # by path, the last wins
    rejects: list[Reject] = field(default_factory=list)
    read: int = 0  # records, as the row path counts them (checkpoints aside)
    checkpoint: Checkpoint | None = None


def ingest(ws: Workspace, paths: Sequence[Path], options: IngestOptions | None = None,
           progress: ProgressFn | None = None) -> IngestReport:
    """Ingest the audio files under ``paths`` into the columnar workspace ``ws``."""
    options = options or IngestOptions()
    source = get(KIND)
    started = time.perf_counter()
    inputs = source.inputs([Path(p) for p in paths])
    report = IngestReport(KIND)
    rows = 0
    with ws.store() as store:
        closers: list[Any] = []
        read_options = options.read
        if read_options.known is None:  # files attached unchanged are not opened again
            read_options = with_known_files(read_options, store, closers)
        con = bulk.open_bulk(ws.root)
        try:
            for item in inputs:
                rep = _one(con, store, item, read_options, options, report)
                report.sources.append(rep)
                rows += rep.read
                if progress is not None:
                    progress(ProgressEvent("ingest", 0, None, "B", item.source,
                                           {"rows": rows}))
            with columnar.transaction(con):
                bulk_listens.resolve(con)  # listens keyed by the new tracks' MBIDs, ISRCs
                report.excluded_tracks = bulk_merge.refresh_excluded(con)
                # a new ISRC, MBID or file may bring a listed takedown onto a track
                bulk_selection.sync_exclusions(con)
        except columnar.Error as exc:
            raise columnar.failed(ws.columnar, "ingesting audio files", exc) from exc
        finally:
            con.close()
            for close in closers:
                close()
    report.add_up()
    report.unchanged = sum(v[2] for v in report.by_kind.values())
    report.elapsed = time.perf_counter() - started
    return report


def _batches(records: Iterator[Record], size: int) -> Iterator[_Batch]:
    batch = _Batch()
    n = 0
    for r in records:
        n += 1
        kind = type(r)
        if kind is Checkpoint:
            assert isinstance(r, Checkpoint)
            batch.checkpoint = r
            n -= 1
        elif kind is Reject:
            assert isinstance(r, Reject)
            batch.rejects.append(r)
            batch.read += 1
        else:
            assert isinstance(r, SourceAudio)
            batch.files[r.path] = r
            batch.read += 1
        if n >= size:
            yield batch
            batch, n = _Batch(), 0
    if batch.read or batch.checkpoint is not None:
        yield batch


def _one(con: columnar.Connection, store: Store, item: Input, read_options: ReadOptions,
         options: IngestOptions, report: IngestReport) -> SourceReport:
    source = get(KIND)
    rep = SourceReport(item.source, "read")
    size = min(options.batch_size, source.max_batch or options.batch_size)
    records = within_bounds(item, source.read(item, read_options))
    for batch in _batches(records, size):
        matched, by_kind = _match(con, batch)
        if batch.checkpoint is not None:
            with columnar.transaction(con):
                bulk.save_checkpoint(con, batch.checkpoint)
        counts = store.write_source_audio(matched, batch.rejects)
        for k, (a, u, n) in [*by_kind.items(), *counts.by_kind.items()]:
            row = report.by_kind.setdefault(k, [0, 0, 0])
            row[0] += a
            row[1] += u
            row[2] += n
            rep.added += a
            rep.updated += u
        rep.read += batch.read - counts.rejected
        rep.rejected += counts.rejected - counts.kept
        rep.values_dropped += counts.kept
        rep.new_rejects += counts.new_refused
    return rep


def _lookup(con: columnar.Connection, sql: str, values: list[str]) -> dict[str, int]:
    if not values:
        return {}
    return {str(k): int(v) for k, v in con.execute(sql, {"v": values}).fetchall()}


def _match(con: columnar.Connection, batch: _Batch
           ) -> tuple[list[tuple[SourceAudio, int, str]], dict[str, list[int]]]:
    """Each file of ``batch`` with its track id and how it matched; the new tracks are
    merged into catalogue.duckdb (committed) first. Returns the merge's counts too."""
    files = list(batch.files.values())
    by_mbid = _lookup(con, "SELECT mbid, min(id) FROM track WHERE mbid IN (SELECT unnest($v)) "
                           "GROUP BY mbid", sorted({f.mbid for f in files if f.mbid}))
    by_isrc = _lookup(con, "SELECT isrc, min(track_id) FROM track_isrc "
                           "WHERE isrc IN (SELECT unnest($v)) GROUP BY isrc",
                      sorted({c for f in files for c in f.isrcs}))
    new_mbid: dict[str, str] = {}  # what the batch's new tracks bring: value -> track key
    new_isrc: dict[str, str] = {}
    plan: list[tuple[SourceAudio, int | str, str]] = []
    fallback: list[Record] = []
    for f in files:
        found: int | str | None = None
        how = "created"
        if f.mbid:
            found = by_mbid.get(f.mbid, new_mbid.get(f.mbid))
            how = "mbid"
        if found is None:
            for code in f.isrcs:
                found = by_isrc.get(code, new_isrc.get(code))
                if found is not None:
                    how = "isrc"
                    break
        if found is None:
            how = "created"
            tracks = [r for r in f.fallback if isinstance(r, Track)]
            if not tracks:
                batch.rejects.append(Reject(STAGE, f.path, "file",
                                            "no track matched and no fallback track given"))
                continue
            # the row path writes them by kind: artists, releases, tracks, ISRCs
            for kind in (Artist, Release, Track, TrackISRC):
                fallback.extend(r for r in f.fallback if isinstance(r, kind))
            for t in tracks:
                if t.mbid:
                    new_mbid.setdefault(t.mbid, t.key)
            for i in f.fallback:
                if isinstance(i, TrackISRC):
                    new_isrc.setdefault(i.isrc, i.track_key)
            found = tracks[0].key
        plan.append((f, found, how))
    _created_before(con, plan)
    by_kind: dict[str, list[int]] = {}
    keys = sorted({k for _, k, _ in plan if isinstance(k, str)})
    ids: dict[str, int] = {}
    if fallback:
        bulk_merge.create_staging(con)
        try:
            _stage(con, fallback)
            with columnar.transaction(con):
                by_kind = bulk_merge.merge(con)
        finally:
            bulk_merge.drop_staging(con)
        ids = _lookup(con, "SELECT key, id FROM track WHERE key IN (SELECT unnest($v))", keys)
    matched = [(f, found if isinstance(found, int) else ids[found], how)
               for f, found, how in plan]
    return matched, by_kind


def _created_before(con: columnar.Connection, plan: list[tuple[SourceAudio, int | str, str]]
                    ) -> None:
    """Say ``created`` again for a file that matched a stored track it created itself in a
    run killed between its two commits (the track merged, the file's ``source_audio`` row
    lost): an uninterrupted run, and the row path, record ``created`` for it. Such a track
    came from this file (its provenance is the file's own Track record's) and the file has
    no row yet; with a row (a ``--force`` re-read) the match stays what it is, as on the
    row path."""
    own = {}  # plan index -> the provenance source of the file's own track record
    for i, (f, found, _how) in enumerate(plan):
        if isinstance(found, int):
            mine = next((r for r in f.fallback if isinstance(r, Track)), None)
            if mine is not None and mine.prov is not None:
                own[i] = mine.prov.source
    if not own:
        return
    ids = sorted({int(plan[i][1]) for i in own})
    sources = {int(k): v for k, v in con.execute(
        "SELECT id, source FROM track WHERE id IN (SELECT unnest($v))", {"v": ids}).fetchall()}
    paths = sorted({plan[i][0].path for i in own})
    held = {str(r[0]) for r in con.execute(
        "SELECT path FROM cat.source_audio WHERE path IN (SELECT unnest($v))",
        {"v": paths}).fetchall()}
    for i, source in own.items():
        f, found, _how = plan[i]
        if sources.get(int(found)) == source and f.path not in held:
            plan[i] = (f, found, "created")


_STAGING = {Artist: "stg_artist", Release: "stg_release", Track: "stg_track",
            TrackISRC: "stg_isrc"}
_INTS = {"seq": pa.int64(), "disc": pa.int64(), "position": pa.int64(),
         "duration_ms": pa.int64(), "known_country": pa.int32(),
         "artist_keys": pa.list_(pa.string())}


def _value(r: Any, column: str) -> Any:
    """A staging column of record ``r``: its attribute of that name, provenance from
    ``r.prov``."""
    if column in ("source", "locator", "licence"):
        return None if r.prov is None else getattr(r.prov, column)
    value = getattr(r, column)
    return list(value) if column == "artist_keys" else (
        int(value) if column == "known_country" else value)


def _stage(con: columnar.Connection, records: list[Record]) -> None:
    """Append ``records`` (numbered in order: the merge gives new rows ids in that
    order) to :func:`bulk_merge.create_staging`'s tables, one Arrow batch per table."""
    rows: dict[str, list[list[Any]]] = defaultdict(list)
    for seq, r in enumerate(records, 1):
        table = _STAGING[type(r)]
        rows[table].append([seq, *(_value(r, c)
                                   for c in bulk_merge.STAGING_COLUMNS[table][1:])])
    for table, values in rows.items():
        columns = bulk_merge.STAGING_COLUMNS[table]
        batch = pa.Table.from_arrays(
            [pa.array(col, type=_INTS.get(name, pa.string()))
             for name, col in zip(columns, zip(*values, strict=True), strict=True)],
            names=list(columns))
        con.register("phono_tags_batch", batch)
        try:
            con.execute(f"INSERT INTO {table} SELECT * FROM phono_tags_batch")
        finally:
            con.unregister("phono_tags_batch")
