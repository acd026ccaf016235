"""The ingest runner of a columnar workspace (``phono init --engine duckdb``).

Where :mod:`phonotheque.ingest` writes records in batches of row upserts, this runner
takes each input in a few large *parts*: its reader stages a part set-based into
DuckDB, and one merge folds the part into the bulk tables in ONE transaction that
also saves the input's checkpoint (``bulk.save_checkpoint``: the uncompressed byte
offset and line the part reaches, ``done`` after the last). A reader that cannot cut
its input gives one part. So

* an input whose checkpoint says done with the same size and mtime is skipped
  (unless ``force``);
* a killed ingest redoes at most the part in progress: a reader that can resume
  (``StageContext.start``) starts after the last committed part, the others from the
  start (the merge is an upsert: nothing is counted twice);
* ingesting the same input again changes nothing (the merge compares before it
  writes: the counts say unchanged).

Parts bound memory: a whole 10 M-track input merged at once ran out of a 3 GiB limit
(the merge's GROUP BY with ``arg_max`` over strings and lists does not spill). Merging
part by part gives the tables one merge of the whole input gives, ids included (new
rows get ids in order of their first line either way), as ``Store`` gives the same
rows whatever its batch size.

Rejects go to ``catalogue.sqlite``'s reject table through its owner
(:meth:`Store.record_rejects`), with the same locators the Python readers give, and
are written before the part's transaction commits (an interrupted part writes
them again, which adds nothing). The report has :mod:`phonotheque.ingest`'s shape and
exit-code meaning (``clean``: no refusal an earlier run had not recorded).

Readers are registered by source kind (:data:`READERS`): a module of this package
that defines ``READER`` (a :class:`BulkReader`) adds one, as :mod:`phonotheque.sources`
does for the row path.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from phonotheque.catalogue import bulk, bulk_listens, bulk_merge, columnar
from phonotheque.catalogue.store import Store
from phonotheque.errors import UnsupportedInput
from phonotheque.ingest import IngestOptions, IngestReport, SourceReport
from phonotheque.model import Checkpoint, Reject
from phonotheque.progress import ProgressEvent, ProgressFn
from phonotheque.sources import Input, ReadOptions, get, unreadable
from phonotheque.workspace import Workspace


@dataclass(slots=True)
class Staged:
    """What a reader staged from one part of an input, and where the part ends."""

    read: int = 0  # records read (the row path's "read": every record the input gave)
    rejects: list[Reject] = field(default_factory=list)  # refusals and dropped values
    offset: int = 0  # uncompressed bytes of the input up to the part's end
    line: int = 0  # lines up to the part's end
    done: bool = True  # the input's last part
    disk: int = 0  # bytes of the input file read up to the part's end (for progress)
    #: What the reader's :meth:`BulkReader.prepare` worked out for its merge.
    plan: bulk_merge.Plan | None = None


@dataclass(frozen=True, slots=True)
class StageContext:
    """What a reader may use besides the input: the run's options and scratch room."""

    options: ReadOptions
    tmp: Path  # inside the workspace; the reader removes what it puts there
    start: int = 0  # resume: uncompressed byte offset a committed part reached (0: start)
    line: int = 0  # resume: lines before ``start``
    #: What a reader that stages one long part says while it works: the step it is on and
    #: the bytes of the input on disk it has read so far (progress before the part commits).
    step: Callable[[str, int], None] | None = None


class BulkReader(Protocol):
    """One kind of input on the columnar path (``READER`` of a module of this package)."""

    kind: str  # a kind of :mod:`phonotheque.sources` (its ``inputs`` expands the paths)

    #: True if :meth:`stage` honours ``ctx.start`` (a killed ingest resumes mid-input).
    resumable: bool

    def stage(self, con: columnar.Connection, item: Input,
              ctx: StageContext) -> Generator[Staged, None, None]:
        """Read ``item`` into temporary tables of ``con``, one part at a time: each part
        yielded is merged and committed before the reader stages the next."""
        ...

    def prepare(self, con: columnar.Connection, staged: Staged, tmp: Path) -> None:
        """Work out the merge of a staged part before the runner's transaction, in
        temporary tables or a scratch file in ``tmp`` (DuckDB frees what a transaction
        drops only at its end); the runner calls :func:`bulk_merge.finish` on
        ``staged.plan`` after the transaction."""
        ...

    def merge(self, con: columnar.Connection, staged: Staged) -> dict[str, list[int]]:
        """Fold what :meth:`stage` staged into the bulk tables (inside the runner's
        transaction) and drop the staging; return ``{kind: [added, updated, unchanged]}``."""
        ...


def read_counted(con: columnar.Connection, table: str, select: str, rows: int) -> bool:
    """``CREATE OR REPLACE TEMP TABLE <table> AS <select>`` (a DuckDB reader of an input's
    lines); False, with the table dropped, if DuckDB refuses the input or gives other
    than ``rows`` rows (its rowid then numbers the lines: insertion order is kept)."""
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {select}")
    except (columnar.Error, UnicodeDecodeError, UnicodeEncodeError):
        # UnicodeDecodeError: DuckDB's message quotes the bad value cut to a few bytes,
        # possibly inside a character, and the message fails to decode. UnicodeEncodeError:
        # a path in ``select`` holds a byte that is not UTF-8 (a Linux file name may; Python
        # keeps it as a surrogate), which the SQL text cannot carry: Python reads that input.
        con.execute(f"DROP TABLE IF EXISTS temp.{table}")
        return False
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    if row is None or int(row[0]) != rows:
        con.execute(f"DROP TABLE IF EXISTS temp.{table}")
        return False
    return True


def _discover() -> dict[str, BulkReader]:
    found: dict[str, BulkReader] = {}
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            reader = getattr(importlib.import_module(f"{__name__}.{mod.name}"), "READER", None)
            if reader is not None:
                found[reader.kind] = reader
    return found


#: kind -> reader of the columnar path.
READERS: dict[str, BulkReader] = _discover()


def reader(kind: str) -> BulkReader:
    """The columnar reader of ``kind``; UnsupportedInput (exit 2) if there is none."""
    try:
        return READERS[kind]
    except KeyError:
        known = ", ".join(sorted(READERS)) or "none"
        raise UnsupportedInput(kind, "this workspace is columnar (catalogue.duckdb) and "
                                     f"`phono ingest {kind}` has no columnar reader yet "
                                     f"(columnar kinds: {known}); ingest it into a SQLite "
                                     "workspace instead") from None


def _event(source: str, rows: int, done_bytes: int, total_bytes: int | None) -> ProgressEvent:
    return ProgressEvent("ingest", done_bytes, total_bytes, "B", source, {"rows": rows})


def ingest(
    ws: Workspace,
    kind: str,
    paths: Sequence[Path],
    options: IngestOptions | None = None,
    progress: ProgressFn | None = None,
    *,
    memory_bytes: int | None = None,
    threads: int | None = None,
) -> IngestReport:
    """Ingest ``paths`` of ``kind`` into the columnar workspace ``ws``.

    ``memory_bytes`` bounds DuckDB's memory (default :func:`bulk.stage_memory`); what
    does not fit spills into ``<ws>/tmp/duckdb``.
    """
    options = options or IngestOptions()
    bulk_reader = reader(kind)
    source = get(kind)
    started = time.perf_counter()
    inputs = source.inputs([Path(p) for p in paths])
    report = IngestReport(kind)
    # Progress counts bytes of the files on disk: a compressed input's parts report
    # their position in the compressed file (sources.disk_position), so a 100 M-track
    # .jsonl.zst shows how far it is, not "0 MiB" for an hour.
    total_bytes = sum(i.size for i in inputs)
    tmp = ws.root / "tmp" / "ingest"
    # a merge's scratch database left by a killed run (bulk_merge.prepare makes it only
    # for a big part: a run of small ones would leave it there)
    columnar.remove_database(tmp / bulk_merge.SCRATCH_FILE)
    done_bytes = rows = 0
    with ws.store() as store:
        con = bulk.open_bulk(ws.root, memory_bytes=memory_bytes, threads=threads)
        try:
            for item in inputs:
                def tick(read: int, disk: int, step: str, item: Input = item,
                         rows: int = rows, before: int = done_bytes) -> None:
                    # after every committed part (a long input shows progress too), and
                    # at a reader's steps inside a part (``step``: what it does now)
                    if progress is not None:
                        done = before + min(disk, item.size)
                        progress(_event(f"{item.source}: {step}" if step else item.source,
                                        rows + read, done, total_bytes))

                rep, read = _one(con, store, bulk_reader, item, options, tmp, report,
                                 ws.columnar, tick, bulk.stage_memory(memory_bytes))
                rows += read
                done_bytes += item.size
                report.sources.append(rep)
                if progress is not None:
                    progress(_event(item.source, rows, done_bytes, total_bytes))
            report.excluded_tracks = _refresh(con)
        except columnar.Error as exc:  # outside a part's merge (its checkpoint's read, the
            # refresh): a corrupt or truncated catalogue.duckdb, say
            raise columnar.failed(ws.columnar, f"ingesting {kind}", exc,
                                  bulk.stage_memory(memory_bytes)) from exc
        finally:
            con.close()
    report.add_up()
    report.unchanged = sum(v[2] for v in report.by_kind.values())
    report.elapsed = time.perf_counter() - started
    return report


def _refresh(con: columnar.Connection) -> int:
    with columnar.transaction(con):
        # Listens whose tracks arrived since (or in) this run find them now, as the
        # row path's Store.write resolves after every ingest. Every run, not only runs
        # that added tracks: a run killed after its tracks committed resolves here.
        bulk_listens.resolve(con)
        n = bulk_merge.refresh_excluded(con)
    return n


def _one(con: columnar.Connection, store: Store, bulk_reader: BulkReader, item: Input,
         options: IngestOptions, tmp: Path, report: IngestReport, where: Path,
         tick: Callable[[int, int, str], None], limit: int) -> tuple[SourceReport, int]:
    cp = bulk.checkpoint(con, item.source)
    same = cp is not None and cp.size == item.size and cp.mtime_ns == item.mtime_ns
    if cp is not None and cp.done and same and not options.force:
        return SourceReport(item.source, "skipped"), 0
    start = line = 0
    if (cp is not None and not cp.done and same and not options.force
            and bulk_reader.resumable):
        start, line = cp.offset, cp.line
    rep = SourceReport(item.source, "resumed" if start else "read", start_offset=start)
    if item.problem is not None:  # never opened: its reject and checkpoint, as the row path's
        found = list(unreadable(item, bulk_reader.kind))
        with columnar.transaction(con):
            bulk.save_checkpoint(con, next(r for r in found if type(r) is Checkpoint))
            counts = store.record_rejects([r for r in found if type(r) is Reject])
        rep.rejected, rep.new_rejects = counts.rejected, counts.new_refused
        return rep, 0
    parts = bulk_reader.stage(con, item, StageContext(
        options.read, tmp, start, line,
        step=lambda what, disk: tick(rep.read, disk, what)))
    try:
        for staged in parts:
            bulk_reader.prepare(con, staged, tmp)
            try:
                with columnar.transaction(con):
                    by_kind = bulk_reader.merge(con, staged)
                    bulk.save_checkpoint(con, Checkpoint(
                        item.source, bulk_reader.kind,
                        item.size if staged.done else staged.offset,
                        done=staged.done, line=0 if staged.done else staged.line,
                        size=item.size, mtime_ns=item.mtime_ns))
                    counts = store.record_rejects(staged.rejects)
            finally:
                if staged.plan is not None:
                    bulk_merge.finish(con, staged.plan)
            for k, (a, u, n) in by_kind.items():
                row = report.by_kind.setdefault(k, [0, 0, 0])
                row[0] += a
                row[1] += u
                row[2] += n
            rep.read += staged.read
            rep.added += sum(v[0] for v in by_kind.values())
            rep.updated += sum(v[1] for v in by_kind.values())
            rep.rejected += counts.rejected - counts.kept
            rep.values_dropped += counts.kept
            rep.new_rejects += counts.new_refused
            if not staged.done:
                tick(rep.read, staged.disk, "")
    except columnar.Error as exc:
        raise columnar.failed(where, f"ingesting {item.source}", exc, limit) from exc
    finally:
        parts.close()  # the reader's scratch files go now, also when a part failed
    return rep, rep.read
