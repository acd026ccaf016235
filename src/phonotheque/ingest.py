"""The ingest runner: run one source over some paths and write what it yields.

Skipping and resuming belong here, not to the sources (STYLE rule 4). For every
input the catalogue keeps a checkpoint (byte offset and line after the last
committed record, plus the input's size and mtime):

* an input already ``done`` with the same size and mtime is skipped;
* a partially written input of a resumable source restarts at its offset;
* any other input is read from the start; every write is an idempotent upsert,
  so reading something again adds nothing twice.

After writing, exclusions are recomputed so new tracks honour existing ones.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from phonotheque.catalogue import ledger
from phonotheque.catalogue.store import Store
from phonotheque.errors import InputError
from phonotheque.model import Checkpoint, Record, Reject, Release, SourceAudio, Track, WriteCounts
from phonotheque.progress import ProgressEvent, ProgressFn
from phonotheque.read_ahead import read_ahead
from phonotheque.sources import (
    STAGE,
    Input,
    ReadOptions,
    Source,
    bounds,
    compressed_suffix,
    get,
    printable,
    unreadable,
)
from phonotheque.sqlite_uri import file_uri
from phonotheque.workspace import Workspace


@dataclass(frozen=True, slots=True)
class IngestOptions:
    batch_size: int = 20_000
    force: bool = False  # read inputs again even if their checkpoint says done
    read: ReadOptions = field(default_factory=ReadOptions)


def _event(source: str, rows: int, done_bytes: int, total_bytes: int | None) -> ProgressEvent:
    """Progress after every committed batch: bytes of inputs with a known size read so far
    (total None when some input's size cannot be measured: archives, trees), the input
    being read, and the records read so far (all inputs) as ``counts["rows"]``."""
    return ProgressEvent("ingest", done_bytes, total_bytes, "B", source, {"rows": rows})


@dataclass(slots=True)
class SourceReport:
    source: str
    status: str  # read | resumed | skipped
    read: int = 0
    added: int = 0
    updated: int = 0
    rejected: int = 0  # inputs refused (records, lines, files)
    start_offset: int = 0
    values_dropped: int = 0  # values refused from records that were stored
    new_rejects: int = 0  # refusals no earlier run recorded


@dataclass(slots=True)
class IngestReport:
    kind: str
    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    values_dropped: int = 0
    new_rejects: int = 0
    sources: list[SourceReport] = field(default_factory=list)
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [added, updated, unchanged]
    excluded_tracks: int = 0
    elapsed: float = 0.0

    def add_up(self) -> None:
        """Totals from the inputs' reports (both engines' runners end with this)."""
        for rep in self.sources:
            self.read += rep.read
            self.added += rep.added
            self.updated += rep.updated
            self.rejected += rep.rejected
            self.values_dropped += rep.values_dropped
            self.new_rejects += rep.new_rejects

    @property
    def clean(self) -> bool:
        """Nothing refused that an earlier run had not recorded already (exit 0, not 10)."""
        return self.new_rejects == 0


def ingest(
    ws: Workspace,
    kind: str,
    paths: Sequence[Path],
    options: IngestOptions | None = None,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Ingest ``paths`` with the source registered as ``kind`` into ``ws``'s catalogue.

    A columnar workspace is ingested by :mod:`phonotheque.columnar_ingest` (one
    set-based merge per input into catalogue.duckdb), with the same report.
    """
    if ws.engine == "duckdb" and kind == "tags":
        from phonotheque import columnar_tags  # it builds on this module

        return columnar_tags.ingest(ws, paths, options, progress)
    if ws.engine == "duckdb":
        from phonotheque import columnar_ingest  # it builds on this module

        return columnar_ingest.ingest(ws, kind, paths, options, progress)
    options = options or IngestOptions()
    source = get(kind)
    started = time.perf_counter()
    inputs = source.inputs([Path(p) for p in paths])
    report = IngestReport(kind)
    sized = [i.progress_size for i in inputs]
    total_bytes = None if any(s is None for s in sized) else sum(s or 0 for s in sized)
    state = _State()
    with ws.store() as store:
        read_options = options.read
        closers: list[Callable[[], None]] = []
        if source.always_rescan and read_options.known is None:
            # Trees are walked again every run; let the reader skip unchanged files.
            read_options = with_known_files(read_options, store, closers)
        try:
            for item in inputs:
                rep = _one(store, source, item, options, read_options, state, total_bytes,
                           progress)
                report.sources.append(rep)
        finally:
            for close in closers:
                close()
        report.add_up()
        report.excluded_tracks = store.refresh_exclusions()
        # a new ISRC, MBID or file may bring a listed takedown onto a track: say so now
        ledger.sync_exclusions(store)
    report.by_kind = state.by_kind
    report.unchanged = sum(v[2] for v in report.by_kind.values())
    report.elapsed = time.perf_counter() - started
    return report


@dataclass(slots=True)
class _State:
    rows: int = 0
    bytes: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)


def _one(
    store: Store,
    src: Source,
    item: Input,
    options: IngestOptions,
    read_options: ReadOptions,
    state: _State,
    total_bytes: int | None,
    progress: ProgressFn | None,
) -> SourceReport:
    cp = store.checkpoint(item.source)
    same = cp is not None and cp.size == item.size and cp.mtime_ns == item.mtime_ns
    if cp is not None and cp.done and same and not options.force and not src.always_rescan:
        state.bytes += item.progress_size or 0
        if progress is not None:
            progress(_event(item.source, state.rows, state.bytes, total_bytes))
        return SourceReport(item.source, "skipped")
    start = line = 0
    if cp is not None and not cp.done and same and not options.force and src.resumable:
        start, line = cp.offset, cp.line
    rep = SourceReport(item.source, "resumed" if start else "read", start_offset=start)
    base_bytes = state.bytes
    if item.progress_size is not None and compressed_suffix(item.path.name) is None:
        # (a compressed file's offset counts uncompressed bytes: its first checkpoint
        # says where on disk it is)
        state.bytes += min(start, item.progress_size)
    by_kind = state.by_kind

    def tap(records: Iterator[Record]) -> Iterator[Record]:
        # Note the offset each checkpoint reaches so progress can count bytes. On the
        # writer's side of the prefetch: in the reader's thread it said how far the reader
        # had run ahead (up to 16 chunks), which depends on timing, not what was written.
        for r in records:
            if type(r) is Checkpoint and item.progress_size is not None:
                reached = r.offset if r.disk is None else r.disk
                state.bytes = base_bytes + min(reached, item.progress_size)
            yield r

    def watch(records: Iterator[Record]) -> Iterator[Record]:
        # Every record within the limits SQLite and later stages can hold; an input that
        # cannot be read (further) is marked done, so a re-run skips it until it changes.
        return within_bounds(item, records, unreadable=Checkpoint(
            item.source, src.kind, item.size, done=True, size=item.size,
            mtime_ns=item.mtime_ns))

    def on_batch(counts: WriteCounts) -> None:
        state.rows += counts.read
        for k, (a, u, n) in counts.by_kind.items():
            row = by_kind.setdefault(k, [0, 0, 0])
            row[0] += a
            row[1] += u
            row[2] += n
        if progress is not None:
            progress(_event(item.source, state.rows, state.bytes, total_bytes))

    counts = store.write(
        tap(_prefetch(watch(src.read(item, read_options, start, line)
                            if item.problem is None else unreadable(item, src.kind)))),
        batch_size=min(options.batch_size, src.max_batch or options.batch_size),
        on_batch=on_batch,
    )
    state.bytes = base_bytes + (item.progress_size or 0)
    rep.read, rep.added, rep.updated = counts.read - counts.rejected, counts.added, counts.updated
    rep.rejected, rep.values_dropped = counts.rejected - counts.kept, counts.kept
    rep.new_rejects = counts.new_refused
    return rep


def within_bounds(item: Input, records: Iterable[Record],
                  unreadable: Checkpoint | None = None) -> Iterator[Record]:
    """``records`` within :mod:`~phonotheque.sources.bounds`, with a reject for each value
    put right or refused; an input that cannot be read further becomes a ``file`` reject,
    followed by ``unreadable`` if given (the row path's checkpoint marking it done). Both
    paths' rules (the row path and the readers of a columnar workspace)."""
    problems: list[str] = []
    try:
        for r in records:
            keep = bounds.check(r, problems)
            if problems:
                yield from bound_rejects(item, r, problems, kept=keep)
                problems.clear()
            if keep:
                yield r
    except InputError as exc:
        yield Reject(STAGE, item.source, "file", exc.problem)
        if unreadable is not None:
            yield unreadable


def bound_rejects(item: Input, record: Record, problems: list[str],
                   kept: bool) -> Iterator[Reject]:
    """One reject per value :mod:`~phonotheque.sources.bounds` put right or refused."""
    prov = getattr(record, "prov", None)
    locator = prov.locator if prov is not None else ""
    source = item.source
    what = ""
    if type(record) is SourceAudio:
        source = printable(record.path)
    elif type(record) is Track and record.mbid is not None:
        what = f"recording {record.key}: "
    elif type(record) is Release and record.mbid is not None:
        what = f"release {record.key}: "
    for problem in dict.fromkeys(problems):  # a file's track repeats the file's duration
        yield Reject(STAGE, source, locator, what + problem, kept)


def _prefetch(records: Iterator[Record], chunk: int = 1024, depth: int = 16) -> Iterator[Record]:
    """Run the reader in a thread, ``depth`` chunks of ``chunk`` records ahead of the
    writer (:func:`read_ahead`).

    SQLite releases the GIL while it works, so parsing the next lines overlaps
    with writing the previous batch (two cores: up to twice as fast). Memory stays
    bounded by ``chunk * depth`` records. The reader's exceptions are re-raised here.
    """
    batches = iter(lambda: list(itertools.islice(records, chunk)), [])
    for batch in read_ahead(batches, depth, name="ingest-reader"):
        yield from batch


def with_known_files(
    options: ReadOptions, store: Store, closers: list[Callable[[], None]]
) -> ReadOptions:
    """Let the tags reader skip files already attached with the same size and mtime.

    The reader runs in its own thread (see :func:`_prefetch`), so it gets its own
    read-only connection; WAL lets it read while the writer writes.
    """
    import sqlite3
    from dataclasses import replace

    conn = sqlite3.connect(file_uri(store.path, mode="ro"), uri=True, check_same_thread=False)
    closers.append(conn.close)

    def known(path: str, size: int, mtime_ns: int) -> bool:
        row = conn.execute(
            "SELECT size, mtime_ns FROM source_audio WHERE path = ?", (path,)
        ).fetchone()
        return row is not None and row[0] == size and row[1] == mtime_ns

    return replace(options, known=known)
