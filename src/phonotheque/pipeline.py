"""`phono build`: every stage, in order, over one workspace.

The stages are small named functions assembled in one list (:data:`STAGES`);
each reads its input from the catalogue and writes its results back, so the
build is re-runnable: a second run with the same inputs finds every stage's
work done and changes nothing, and a run killed at any moment resumes.
Skipping and change detection belong here, not to the stages (STYLE rule 4).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phonotheque.catalogue import selection
from phonotheque.errors import InputError
from phonotheque.progress import ProgressEvent, ProgressFn
from phonotheque.workspace import COLUMNAR_COMMANDS, Workspace, columnar_refusal, columnar_why

if TYPE_CHECKING:  # the stages are imported when they run, so `phono` starts fast
    from phonotheque.audio import AudioOptions
    from phonotheque.pack.packer import PackOptions
    from phonotheque.publish.publisher import PublishOptions
    from phonotheque.select import SelectOptions

# Every stage reports the one event type (phonotheque.progress); build passes the
# caller's callback to each stage as it is.
StageProgress = ProgressFn


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One input of a build: a source kind (see :mod:`phonotheque.sources`) and a path."""

    kind: str
    path: Path

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}"


def parse_source(text: str) -> SourceSpec:
    """``kind:PATH``, or a bare path whose kind is detected: the source whose
    ``score`` claims it most (see :func:`phonotheque.sources.detect`).
    """
    from phonotheque.sources import SOURCES, detect

    kind, sep, rest = text.partition(":")
    if sep and kind in SOURCES:
        path = Path(rest)
        if not path.exists():
            raise InputError(rest, f"no such file or folder (source {text!r})")
        return SourceSpec(kind, path)
    path = Path(text)
    if not path.exists():
        if sep and kind.isidentifier():
            raise InputError(text, f"unknown source kind {kind!r} "
                                   f"(known: {', '.join(sorted(SOURCES))})")
        raise InputError(text, "no such file or folder")
    return SourceSpec(detect(path).kind, path)


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """Options of every stage; each stage reads only its own part."""

    # None: the stage's defaults (pack: the options of the workspace's last pack)
    select: SelectOptions | None = None
    audio: AudioOptions | None = None
    pack: PackOptions | None = None
    publish: PublishOptions | None = None
    scheduler: str | None = None  # Dask: audio encoding and per-folder torrent hashing
    workers: int | None = None  # audio's local processes; pack's hashing threads
    stop_after: str | None = None  # run stages up to and including this one


@dataclass(slots=True)
class StageResult:
    """What one stage did: its own report (the CLI formats it), and whether it changed
    anything."""

    name: str
    report: Any  # the stage's report type: list[IngestReport], SelectReport, AudioReport, ...
    elapsed: float
    changed: bool
    skipped: str = ""  # why the stage did not run (a columnar workspace), else ""


@dataclass(slots=True)
class BuildReport:
    stages: list[StageResult] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def changed(self) -> bool:
        return any(s.changed for s in self.stages)

    def stage(self, name: str) -> StageResult | None:
        """The stage ``name`` if it ran (not if it was skipped)."""
        return next((s for s in self.stages if s.name == name and not s.skipped), None)


def _last_selection(ws: Workspace) -> int:
    """Id of the newest recorded selection; select records one only when the plan changes."""
    with ws.store(readonly=True) as store:
        return selection.last_run_id(store.conn)


# -- the stages --------------------------------------------------------------------


def _ingest(ws: Workspace, sources: Sequence[SourceSpec], opts: BuildOptions,
            progress: StageProgress) -> StageResult:
    from phonotheque.ingest import IngestReport, ingest
    from phonotheque.sources import get

    # In each source's ingest_order: catalogue sources first, listens last (they
    # would resolve later anyway, but the report is clearer this way).
    reports: list[IngestReport] = []
    for spec in sorted(sources, key=lambda s: get(s.kind).ingest_order):
        reports.append(ingest(ws, spec.kind, [spec.path], progress=progress))
    return StageResult("ingest", reports, 0.0,
                       changed=any(r.added or r.updated for r in reports))


def _select(ws: Workspace, sources: Sequence[SourceSpec], opts: BuildOptions,
            progress: StageProgress) -> StageResult:
    from phonotheque.select import SelectOptions, select

    before = _last_selection(ws)
    rep = select(ws, opts.select or SelectOptions(), progress=progress)
    changed = _last_selection(ws) != before
    return StageResult("select", rep, 0.0, changed=changed)


def _audio(ws: Workspace, sources: Sequence[SourceSpec], opts: BuildOptions,
           progress: StageProgress) -> StageResult:
    from phonotheque.audio import AudioOptions, run_audio
    from phonotheque.executors import make_executor

    with make_executor(opts.workers, opts.scheduler) as executor:
        rep = run_audio(ws, opts.audio or AudioOptions(), executor, on_progress=progress)
    return StageResult("audio", rep, 0.0, changed=bool(rep.written or rep.error_count))


def _pack(ws: Workspace, sources: Sequence[SourceSpec], opts: BuildOptions,
          progress: StageProgress) -> StageResult:
    from phonotheque.pack.packer import resolve_options, run_pack

    pack_opts = opts.pack or resolve_options(ws, {"workers": opts.workers})
    # --workers are audio's processes; folders are built here or on the cluster
    # (see folder_executor), as `phono pack` without --workers does.
    rep = run_pack(ws, pack_opts, scheduler=opts.scheduler, progress=progress)
    return StageResult("pack", rep, 0.0, changed=rep.changed)


def _publish_digest(ws: Workspace) -> str:
    h = hashlib.sha256()
    for p in sorted(ws.publish.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(ws.publish)}\0{st.st_size}\0".encode())
            if st.st_size <= 64 << 20:
                h.update(hashlib.sha256(p.read_bytes()).digest())
            else:  # too big to re-read on every build; the catalogue digest covers it
                h.update(str(st.st_mtime_ns).encode())
    return h.hexdigest()


def _publish(ws: Workspace, sources: Sequence[SourceSpec], opts: BuildOptions,
             progress: StageProgress) -> StageResult:
    from phonotheque.publish.publisher import PublishOptions
    from phonotheque.publish.waves import ReleaseOptions, release

    before = _publish_digest(ws)
    # A build releases everything it packed as one wave; progressive waves
    # are `phono release --wave-bands/--wave-bytes` on a built workspace. The coverage
    # chart goes into the new generation with the rest (publish/ changes as a whole).
    publish_opts = replace(opts.publish or PublishOptions(), coverage_chart=True)
    rep = release(ws, ReleaseOptions(pack=False, publish=publish_opts), progress=progress)
    return StageResult("publish", rep, 0.0, changed=_publish_digest(ws) != before)


Stage = Callable[[Workspace, Sequence[SourceSpec], BuildOptions, StageProgress], StageResult]

STAGES: list[tuple[str, Stage]] = [
    ("ingest", _ingest),
    ("select", _select),
    ("audio", _audio),
    ("pack", _pack),
    ("publish", _publish),
]


#: The ``phono`` command each stage after ingest runs as; a columnar workspace runs the
#: stages whose command is in :data:`~phonotheque.workspace.COLUMNAR_COMMANDS` (ingest:
#: ``ingest <kind>`` for each source) and skips the others, saying why.
STAGE_COMMANDS = {"select": "select", "audio": "audio", "pack": "pack", "publish": "publish"}


def check_columnar_sources(sources: Sequence[SourceSpec]) -> None:
    """Refuse, before anything runs, a source a columnar workspace cannot ingest."""
    for spec in sources:
        command = f"ingest {spec.kind}"
        if command not in COLUMNAR_COMMANDS:
            raise InputError(str(spec), f"phono {command} is {columnar_refusal(command)}")


def _skip(ws: Workspace, name: str) -> str:
    """Why stage ``name`` does not run on ``ws`` ("" when it runs)."""
    command = STAGE_COMMANDS.get(name)
    if ws.engine != "duckdb" or command is None or command in COLUMNAR_COMMANDS:
        return ""
    return columnar_why(command)


def _ignore(event: ProgressEvent) -> None:
    pass


def build(
    ws: Workspace,
    sources: Sequence[SourceSpec],
    options: BuildOptions | None = None,
    progress: StageProgress | None = None,
    on_stage: Callable[[StageResult], object] | None = None,
) -> BuildReport:
    """Run every stage in order; return what each did (and whether anything changed).

    On a columnar workspace a stage whose command does not run there would be skipped
    with its reason in the report (every stage runs there now); a source it cannot
    ingest is refused before anything runs (:class:`InputError`).
    """
    options = options or BuildOptions()
    progress = progress or _ignore
    if ws.engine == "duckdb":
        check_columnar_sources(sources)
    report = BuildReport()
    started = time.perf_counter()
    for name, stage in STAGES:
        t0 = time.perf_counter()
        skipped = _skip(ws, name)
        result = (StageResult(name, None, 0.0, changed=False, skipped=skipped) if skipped
                  else stage(ws, sources, options, progress))
        result.elapsed = time.perf_counter() - t0
        report.stages.append(result)
        if on_stage is not None:
            on_stage(result)
        if options.stop_after == name:
            break
    report.elapsed = time.perf_counter() - started
    return report
