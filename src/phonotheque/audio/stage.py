"""The audio stage's coordinator: plan from the catalogue, run workers, record results.

``run_audio`` is the one function ``phono audio`` calls. It

1. takes the workspace's audio lock (one coordinator per workspace), checks the
   destination is writable (a read-only or full disk stops the run *before* any
   work) and deletes temp files an interrupted run left behind;
2. walks the selection in rank order and sorts every track into: already done
   (ledger ``success`` and its file is in place), excluded, a previous error
   (re-tried only with ``retry_errors``), a duplicate of another track's source
   bytes (stored once: ledger ``skipped_duplicate``), or work;
3. hands the work to an :class:`~phonotheque.executors.Executor` as
   :class:`~phonotheque.audio.worker.WorkItem` s and records the
   :class:`~phonotheque.audio.worker.FileResult` s in batches — it alone writes the
   catalogue. Failed inputs are copied to ``quarantine/`` with a reason file.

A run killed at any point resumes: a track is marked ``success`` only in the
transaction that records its (already renamed, fsynced) file. On a columnar workspace
the status follows in catalogue.duckdb once that transaction has committed, and the
next run repairs a kill in between (:mod:`phonotheque.catalogue.bulk_selection`);
catalogue.duckdb stays open for the whole run, so `phono ledger` and the other
readers of it wait for the run to end (exit 7, busy).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phonotheque.atomic import sweep_temporaries, write_bytes
from phonotheque.audio.files import quarantine
from phonotheque.audio.tags import TagSet
from phonotheque.audio.worker import AudioOptions, FileResult, WorkItem, run_item
from phonotheque.catalogue import audio_files, bulk, bulk_selection, columnar, held, ledger
from phonotheque.catalogue.audio_files import AudioFile
from phonotheque.catalogue.store import Store, now_iso
from phonotheque.errors import BusyError, StorageError, os_error_class
from phonotheque.executors import Executor, InlineExecutor
from phonotheque.model import Reject
from phonotheque.progress import ProgressEvent, ProgressFn
from phonotheque.workspace import Workspace

_CHUNK = 400
# Ledger detail of a selected track whose file we do not hold (same words as select).
_NOT_HELD = "no source audio file held"
_FLUSH_SECONDS = 2.0
# Codecs we prefer as the source when a track has several files.
_LOSSLESS_CODECS = ("flac", "alac", "wavpack", "ape", "tta", "tak", "wmalossless")


# Progress: files done of those planned; counts: errors, bytes_in, bytes_out,
# audio_seconds and elapsed (seconds), for the rates the CLI shows.
ProgressCallback = ProgressFn


@dataclass(slots=True)
class AudioReport:
    selected: int = 0
    already_done: int = 0
    excluded: int = 0
    previous_errors: int = 0
    duplicates: int = 0
    wanted: int = 0  # selected tracks with no held source file (ledger ``wanted``)
    planned: int = 0  # files sent to workers
    succeeded: int = 0
    written: int = 0  # new files (the rest were already in place, e.g. after a kill)
    errors: Counter[str] = field(default_factory=Counter)
    quarantined: list[str] = field(default_factory=list)
    by_tier: Counter[str] = field(default_factory=Counter)
    tier_overrides: int = 0  # planned reencode kept as original
    bytes_in: int = 0
    bytes_out: int = 0
    patch_bytes: int = 0
    audio_seconds: float = 0.0
    worker_seconds: float = 0.0
    elapsed: float = 0.0
    stale_temps_removed: int = 0
    executor: str = ""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def files_per_second(self) -> float:
        return (self.succeeded + self.error_count) / self.elapsed if self.elapsed else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes_in / 1e6 / self.elapsed if self.elapsed else 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio archived per wall-clock second."""
        return self.audio_seconds / self.elapsed if self.elapsed else 0.0


@dataclass(frozen=True, slots=True)
class _Todo:
    track_id: int
    rank: int
    tier: str
    source_id: int
    source: str


def run_audio(ws: Workspace, options: AudioOptions | None = None,
              executor: Executor | None = None,
              on_progress: ProgressCallback | None = None) -> AudioReport:
    """Archive every selected track that is not done yet; return what happened."""
    options = options or AudioOptions()
    executor = executor or InlineExecutor()
    report = AudioReport(executor=executor.description)
    t0 = time.perf_counter()
    with _audio_lock(ws):
        _check_writable(ws.audio)
        report.stale_temps_removed = sweep_temporaries(ws.audio, recursive=True) + \
            sweep_temporaries(ws.quarantine, recursive=True)
        with ws.store() as store:
            if ws.engine == "duckdb":
                _run_columnar(ws, store, executor, options, report, on_progress, t0)
            else:
                _run(ws, store, executor, options, report, on_progress, t0, _Ledger())
    report.elapsed = time.perf_counter() - t0
    return report


def _run(ws: Workspace, store: Store, executor: Executor, options: AudioOptions,
         report: AudioReport, on_progress: ProgressCallback | None, t0: float,
         book: _Ledger) -> None:
    todo = _plan(ws, store, options, report, book)
    report.planned = len(todo)
    items = _items(ws, store, todo, options)
    _execute(ws, store, executor, items, options, report, on_progress, t0, book)


def _run_columnar(ws: Workspace, store: Store, executor: Executor, options: AudioOptions,
                  report: AudioReport, on_progress: ProgressCallback | None,
                  t0: float) -> None:
    """The same run on a columnar workspace (catalogue.duckdb holds the selection and the
    ledger). The selected tracks no file is held for are planned set-based there
    (:func:`bulk_selection.unheld_plan`: they can be tens of millions); the held ones,
    bounded by the user's files, are mirrored into this SQLite connection
    (:mod:`phonotheque.catalogue.held`) and planned, archived and tagged by the code a
    SQLite workspace runs. Statuses go to catalogue.duckdb after each batch's
    catalogue.sqlite commit (the order and why it is safe: :mod:`.bulk_selection`)."""
    con = bulk.open_bulk(ws.root)
    try:
        try:
            with columnar.transaction(con):
                bulk_selection.sync_selection(con)
                bulk_selection.reconcile_audio(con)
                unheld = bulk_selection.unheld_plan(con, held.HELD_SQL, options.retry_errors,
                                                    _NOT_HELD)
        except columnar.Error as exc:
            raise columnar.failed(ws.columnar, "planning the audio stage", exc) from exc
        for name, n in unheld.items():
            setattr(report, name, getattr(report, name) + n)
        with held.mirrored(con, store):
            _run(ws, store, executor, options, report, on_progress, t0, _Ledger(con, ws.columnar))
    finally:
        con.close()


class _Ledger:
    """Where the stage's ledger statuses go: catalogue.sqlite's ``ledger`` in the
    transaction of the batch they belong to, or, on a columnar workspace (``con``),
    catalogue.duckdb's right after that transaction commits (:meth:`flush`)."""

    def __init__(self, con: columnar.Connection | None = None,
                 where: Path | None = None) -> None:
        self.con = con
        self.where = where
        self.pending: list[tuple[int, str, str | None]] = []

    def sync(self, store: Store) -> None:
        if self.con is None:  # a columnar run synced before it mirrored the ledger
            ledger.sync_selection(store)

    def record(self, store: Store, outcomes: list[tuple[int, str, str | None]]) -> None:
        if self.con is None:
            ledger.record_outcomes(store, outcomes)
        else:
            self.pending.extend(outcomes)

    def flush(self) -> None:
        if self.con is None or not self.pending:
            return
        pending, self.pending = self.pending, []
        try:
            with columnar.transaction(self.con):
                bulk_selection.record_outcomes(self.con, pending)
        except columnar.Error as exc:
            raise columnar.failed(self.where, "recording audio outcomes", exc) from exc


class _audio_lock:
    """An exclusive ``flock`` on ``audio/.lock`` (released by the kernel if we are killed)."""

    def __init__(self, ws: Workspace) -> None:
        self.path = ws.audio / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise os_error_class(exc.errno, writing=True)(
                self.path, f"cannot create the lock file: {exc.strerror}") from exc
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self.fd)
            self.fd = None
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise BusyError(self.path.parent.parent,
                                "busy: another `phono audio` is running on this workspace "
                                "(try again when it has finished)") from exc
            raise

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _check_writable(folder: Path) -> None:
    """Fail fast with a StorageError if ``folder`` cannot take a small fsynced file."""
    probe = folder / ".write-test"
    write_bytes(probe, b"phonotheque write test\n")
    try:
        probe.unlink()
    except OSError:
        pass


# -- planning -----------------------------------------------------------------------


def _plan(ws: Workspace, store: Store, options: AudioOptions, report: AudioReport,
          book: _Ledger) -> list[_Todo]:
    book.sync(store)
    # streamed: only the tracks still to do are kept in memory
    rows = store.conn.execute(
        """SELECT s.track_id, s.rank, s.tier, l.status, t.excluded,
                  af.path AS af_path, af.size AS af_size, af.sha256 AS af_sha,
                  af.tier AS af_tier, af.reconstruction AS af_rec
             FROM selection s JOIN track t ON t.id = s.track_id
             LEFT JOIN ledger l ON l.track_id = s.track_id
             LEFT JOIN audio_file af ON af.track_id = s.track_id
            ORDER BY s.rank, s.track_id""")
    wanted: list[tuple[int, int, str]] = []
    for r in rows:
        report.selected += 1
        status = r["status"] or "todo"
        if r["excluded"]:
            report.excluded += 1
        elif (status == "success" and r["af_path"] and not _tier_changed(r)
              and _in_place(ws, r, options.verify_existing)):
            report.already_done += 1
        elif status == "skipped_duplicate":
            report.duplicates += 1
        elif status.startswith("error_") and not options.retry_errors:
            report.previous_errors += 1
        else:
            wanted.append((r["track_id"], r["rank"], r["tier"]))
    todo, no_source = _attach_sources(store, wanted)
    if no_source:
        # Selected but not held: the archive's wanted list, not a failure.
        book.record(store, [(tid, "wanted", _NOT_HELD) for tid in no_source])
        book.flush()
        report.wanted += len(no_source)
    todo, dups = _dedupe(store, todo)
    if dups:
        book.record(store, [(tid, "skipped_duplicate", detail) for tid, detail in dups])
        book.flush()
        report.duplicates += len(dups)
    return todo


def _tier_changed(row: Any) -> bool:
    """A re-selection moved the track to another tier than its file's.

    An original kept *instead of* a planned re-encode (see ``tiers.decide_tier``)
    is not a change: the same decision would be taken again.
    """
    if row["af_tier"] == row["tier"]:
        return False
    kept_on_purpose = row["af_tier"] == "original" and row["tier"] == "reencode" and (
        '"tier_reason":"planned"' not in (row["af_rec"] or ""))
    return not kept_on_purpose


def _in_place(ws: Workspace, row: Any, verify: bool) -> bool:
    path = ws.root / row["af_path"]
    try:
        if path.stat().st_size != row["af_size"]:
            return False
    except OSError:
        return False
    if not verify:
        return True  # the name is the hash: right size + right name
    with open(path, "rb") as f:
        return bool(hashlib.file_digest(f, "sha256").hexdigest() == row["af_sha"])


def _attach_sources(store: Store, wanted: list[tuple[int, int, str]]
                    ) -> tuple[list[_Todo], list[int]]:
    """Pick each track's best source file: lossless first, then highest bitrate, then size."""
    todo: list[_Todo] = []
    missing: list[int] = []
    for i in range(0, len(wanted), _CHUNK):
        chunk = wanted[i : i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        best: dict[int, Any] = {}
        for s in store.query(
            f"SELECT id, track_id, path, codec, bitrate, size FROM source_audio "
            f"WHERE track_id IN ({marks})", [c[0] for c in chunk]
        ):
            key = (s["codec"] in _LOSSLESS_CODECS, s["bitrate"] or 0, s["size"] or 0, -s["id"])
            cur = best.get(s["track_id"])
            if cur is None or key > cur[0]:
                best[s["track_id"]] = (key, s)
        for tid, rank, tier in chunk:
            if tid in best:
                s = best[tid][1]
                todo.append(_Todo(tid, rank, tier, s["id"], str(Path(s["path"]).absolute())))
            else:
                missing.append(tid)
    return todo, missing


def _dedupe(store: Store, todo: list[_Todo]) -> tuple[list[_Todo], list[tuple[int, str]]]:
    """Byte-identical sources are archived once: the best-ranked track keeps them.

    Only files whose size collides with another pending file or an archived
    original are hashed here, so the coordinator reads (almost) nothing.
    """
    sizes: dict[int, int] = {}
    for t in todo:
        try:
            st = os.stat(t.source)
        except OSError:
            continue  # the worker reports it
        # only non-empty regular files: opening a FIFO to hash it would block
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            sizes[t.track_id] = st.st_size
    count = Counter(sizes.values())
    archived: dict[int, list[tuple[str, int]]] = {}
    uniq_sizes = list(count)
    for i in range(0, len(uniq_sizes), _CHUNK):
        chunk = uniq_sizes[i : i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for r in store.query(
            f"SELECT original_size, original_sha256, track_id FROM audio_file "
            f"WHERE original_size IN ({marks})", chunk):
            archived.setdefault(r[0], []).append((r[1], r[2]))
    keep: list[_Todo] = []
    dups: list[tuple[int, str]] = []
    owner: dict[str, int] = {}
    for t in todo:
        size = sizes.get(t.track_id)
        if size is None or (count[size] < 2 and size not in archived):
            keep.append(t)
            continue
        try:
            with open(t.source, "rb") as f:
                sha = hashlib.file_digest(f, "sha256").hexdigest()
        except OSError:
            keep.append(t)
            continue
        first = owner.get(sha)
        if first is None:
            first = next((tid for s, tid in archived.get(size, []) if s == sha and tid != t.track_id),
                         None)
        if first is None:
            owner[sha] = t.track_id
            keep.append(t)
        else:
            dups.append((t.track_id, f"same source bytes as track {first} (sha256 {sha})"))
    return keep, dups


def _items(ws: Workspace, store: Store, todo: list[_Todo], options: AudioOptions
           ) -> Iterator[WorkItem]:
    """Work items with their tags, built a chunk at a time (memory stays flat)."""
    for i in range(0, len(todo), _CHUNK):
        chunk = todo[i : i + _CHUNK]
        tags = _tags_for(ws, store, {t.track_id: t.source_id for t in chunk})
        for t in chunk:
            yield WorkItem(
                track_id=t.track_id, source_audio_id=t.source_id, source=t.source,
                planned_tier=t.tier, workspace=str(ws.root), tags=tags.get(t.track_id, TagSet()),
                options=options,
            )


def _tags_for(ws: Workspace, store: Store, sources: dict[int, int]) -> dict[int, TagSet]:
    """Tags per track id; ``sources`` maps each track to the source file it is archived from."""
    track_ids = list(sources)
    marks = ",".join("?" * len(track_ids))
    audio_licence = {
        r[0]: r[1] for r in store.query(
            f"SELECT id, licence FROM source_audio WHERE id IN ({marks})", list(sources.values()))
    }
    out: dict[int, TagSet] = {}
    us = "char(31)"
    for r in store.query(
        f"""SELECT t.id, t.title, t.artist_credit, t.mbid, t.disc, t.position, t.source,
                   t.licence, r.title AS album, r.date, r.label, r.mbid AS release_mbid,
                   r.art_path, r.artist_credit AS release_artist,
                   (SELECT group_concat(isrc, {us}) FROM
                      (SELECT isrc FROM track_isrc WHERE track_id = t.id ORDER BY isrc)) AS isrcs,
                   (SELECT group_concat(mbid, {us}) FROM
                      (SELECT a.mbid FROM track_artist ta JOIN artist a ON a.id = ta.artist_id
                        WHERE ta.track_id = t.id AND a.mbid IS NOT NULL ORDER BY ta.position))
                     AS artist_mbids,
                   (SELECT group_concat(name, ', ') FROM
                      (SELECT a.name FROM track_artist ta JOIN artist a ON a.id = ta.artist_id
                        WHERE ta.track_id = t.id ORDER BY ta.position)) AS artist_names
              FROM track t LEFT JOIN release r ON r.id = t.release_id
             WHERE t.id IN ({marks})""", track_ids):
        art = r["art_path"]
        if art and not os.path.isabs(art):
            art = str(ws.root / art)
        out[r["id"]] = TagSet(
            title=r["title"],
            artist=r["artist_credit"] or r["artist_names"],
            album=r["album"],
            tracknumber=r["position"],
            discnumber=r["disc"],
            date=r["date"],
            isrcs=tuple((r["isrcs"] or "").split("\x1f")) if r["isrcs"] else (),
            mb_recording_id=r["mbid"],
            mb_album_id=r["release_mbid"],
            mb_artist_ids=tuple(r["artist_mbids"].split("\x1f")) if r["artist_mbids"] else (),
            label=r["label"],
            source=r["source"],
            # LICENSE is the audio's licence: the track row's licence is its metadata's
            licence=audio_licence.get(sources[r["id"]]),
            metadata_licence=r["licence"],
            art_path=art,
        )
    return out


# -- execution and recording -----------------------------------------------------------


def _execute(ws: Workspace, store: Store, executor: Executor, items: Iterator[WorkItem],
             options: AudioOptions, report: AudioReport,
             on_progress: ProgressCallback | None, t0: float, book: _Ledger) -> None:
    batch: list[FileResult] = []
    last_flush = time.perf_counter()
    done = 0
    fatal: FileResult | None = None
    try:
        for res in executor.map_unordered(run_item, items):
            if res.status == "fatal":
                fatal = res
                break
            done += 1
            _account(report, res)
            batch.append(res)
            now = time.perf_counter()
            if len(batch) >= options.batch_size or now - last_flush >= _FLUSH_SECONDS:
                pending, batch, last_flush = batch, [], now
                _record(ws, store, pending, report, book)  # (not retried below if it raises)
            if on_progress is not None:
                on_progress(ProgressEvent(
                    "audio", done, report.planned, "files", counts={
                        "errors": report.error_count, "bytes_in": report.bytes_in,
                        "bytes_out": report.bytes_out, "audio_seconds": report.audio_seconds,
                        "elapsed": now - t0}))
    finally:
        # whatever stops us (a fatal error, Ctrl-C), record what finished
        if batch:
            _record(ws, store, batch, report, book)
    if fatal is not None:
        raise StorageError(ws.audio, f"run stopped (finished files are recorded, no half "
                                     f"files are left): {fatal.detail}")


def _account(report: AudioReport, res: FileResult) -> None:
    report.worker_seconds += res.seconds
    if res.ok:
        report.succeeded += 1
        report.written += int(res.written)
        report.by_tier[res.tier or "?"] += 1
        report.bytes_in += res.original_size or 0
        report.bytes_out += res.size or 0
        report.patch_bytes += res.patch_size or 0
        report.audio_seconds += (res.source_duration_ms or res.duration_ms or 0) / 1000
    else:
        report.errors[res.reason or res.status] += 1


def _record(ws: Workspace, store: Store, batch: list[FileResult], report: AudioReport,
            book: _Ledger) -> None:
    """One transaction per batch: audio_file rows, ledger statuses, rejects (on a
    columnar workspace the statuses go to catalogue.duckdb once it has committed)."""
    stamp = now_iso()
    for res in batch:
        if not res.ok:
            q = quarantine(ws.quarantine, res.track_id, Path(res.source) if res.source else None,
                           res.reason or "internal", res.detail)
            report.quarantined.append(q.relative_to(ws.root).as_posix())
    outcomes: list[tuple[int, str, str | None]] = []
    rejects: list[Reject] = []
    with store.transaction():
        for res in batch:
            if res.ok:
                assert res.path is not None and res.tier is not None
                other = audio_files.path_holder(store, res.path, res.track_id)
                if other is not None:
                    outcomes.append((res.track_id, "skipped_duplicate",
                                     f"same archive file as track {other}"))
                    continue
                audio_files.record_audio_file(store, _audio_file(res), stamp)
                outcomes.append((res.track_id, "success", res.tier))
            else:
                outcomes.append((res.track_id, res.status, res.detail))
                rejects.append(Reject("audio", res.source, f"track {res.track_id}",
                                      f"{res.status}: {res.detail}"))
        book.record(store, outcomes)
        store.add_rejects(rejects)
    book.flush()


def _audio_file(res: FileResult) -> AudioFile:
    assert res.path is not None and res.tier is not None
    assert res.size is not None and res.sha256 is not None
    return AudioFile(
        track_id=res.track_id, source_audio_id=res.source_audio_id, tier=res.tier,
        path=res.path, container=res.container, codec=res.codec, bitrate=res.bitrate,
        duration_ms=res.duration_ms, size=res.size, sha256=res.sha256,
        original_sha256=res.original_sha256, original_size=res.original_size,
        patch_path=res.patch_path, replaygain_gain=res.replaygain_gain,
        replaygain_peak=res.replaygain_peak, reconstruction=res.reconstruction)
