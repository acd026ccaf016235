"""`phono ingest {musicbrainz,mbdump,tags,listens} PATH...`: read inputs into the catalogue."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from phonotheque.cli._common import (
    command,
    console,
    emit_json,
    json_option,
    plain_progress,
    workspace_option,
)
from phonotheque.ingest import IngestOptions, IngestReport, ingest
from phonotheque.progress import ProgressEvent, ProgressFn
from phonotheque.sources import ReadOptions
from phonotheque.workspace import Workspace

# Exit code when the ingest finished but refused some input (listed by `phono rejects`).
EXIT_REJECTS = 10

_EPILOG = (
    "Exit status: 0 when every input was read cleanly (or refused only what an earlier run "
    "recorded already); 10 when the ingest finished but refused some input it had not "
    "refused before (see `phono rejects --stage ingest`); 2-7 on errors that stop the run. "
    "Re-running the same command resumes an interrupted ingest and adds nothing twice."
)

_PATHS = click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
)
_FORCE = click.option(
    "--force", is_flag=True, help="Read inputs again even if an earlier run finished them."
)
_BATCH = click.option(
    "--batch-size", type=click.IntRange(1), default=20_000, show_default=True,
    help="Records per transaction.",
)


@click.group("ingest", epilog=_EPILOG)
def ingest_group() -> None:
    """Read MusicBrainz dumps, audio files or listen counts into the catalogue."""


@command("musicbrainz", epilog=_EPILOG, group=ingest_group)
@_PATHS
@_FORCE
@_BATCH
@json_option
@workspace_option
def ingest_musicbrainz(ws: Workspace, paths: tuple[Path, ...], force: bool, as_json: bool,
                       batch_size: int) -> None:
    """MusicBrainz JSON dumps: .json/.jsonl (one entity per line) or .tar.xz archives.

    Folders are searched for such files. Release, recording and artist entities
    are read; archives are streamed without unpacking.
    """
    _run(ws, "musicbrainz", paths, IngestOptions(batch_size=batch_size, force=force), as_json)


@command("mbdump", epilog=_EPILOG, group=ingest_group)
@_PATHS
@_FORCE
@_BATCH
@json_option
@workspace_option
def ingest_mbdump(ws: Workspace, paths: tuple[Path, ...], force: bool, as_json: bool,
                  batch_size: int) -> None:
    """MusicBrainz PostgreSQL dump tables: an mbdump/ folder or mbdump.tar.bz2 archive.

    Reads artist, artist_credit(_name), recording, isrc, track, medium and
    release, and joins them in a temporary database next to the catalogue.
    """
    _run(ws, "mbdump", paths, IngestOptions(batch_size=batch_size, force=force), as_json)


@command("tags", epilog=_EPILOG, group=ingest_group)
@_PATHS
@_FORCE
@_BATCH
@json_option
@workspace_option
def ingest_tags(ws: Workspace, paths: tuple[Path, ...], force: bool, as_json: bool,
                batch_size: int) -> None:
    """Audio files: walk folders, read tags, attach each file to its track.

    A file is matched to a track by MusicBrainz recording id, then ISRC; else a
    track is created from its tags. Files already attached with the same size
    and mtime are not read again.
    """
    _run(ws, "tags", paths, IngestOptions(batch_size=batch_size, force=force), as_json)


@command("listens", epilog=_EPILOG, group=ingest_group)
@_PATHS
@click.option("--key", type=click.Choice(["isrc", "recording_mbid", "track_id"]),
              help="Key column of CSV/Parquet files (default: the first present).")
@click.option("--count-column",
              help="Count column of CSV/Parquet files (default: count, listens, "
                   "listen_count, total_listen_count).")
@click.option("--dataset",
              help="Dataset name (default: the file name without extension). "
                   "Re-ingesting a dataset replaces its counts.")
@_FORCE
@_BATCH
@json_option
@workspace_option
def ingest_listens(ws: Workspace, paths: tuple[Path, ...], key: str | None,
                   count_column: str | None, dataset: str | None, force: bool,
                   batch_size: int, as_json: bool) -> None:
    """Listen counts: ListenBrainz JSON/JSONL, or CSV/Parquet with a key and a count."""
    read = ReadOptions(key=key, count_column=count_column, dataset=dataset)
    _run(ws, "listens", paths, IngestOptions(batch_size=batch_size, force=force, read=read),
         as_json)



def _run(ws: Workspace, kind: str, paths: tuple[Path, ...], options: IngestOptions,
         as_json: bool = False) -> None:
    with _progress(f"ingest {kind}", show=not as_json) as advance:
        report = ingest(ws, kind, paths, options, advance)
    if as_json:
        emit_json(f"ingest {kind}", report, 0 if report.clean else EXIT_REJECTS,
                  "" if report.clean else f"{report.new_rejects} input(s) refused")
        return
    _render(report)
    if report.values_dropped:
        console.print(f"{report.values_dropped} unusable tag or field value(s) left out of "
                      "records that were kept; see `phono rejects --stage ingest`")
    if report.rejected:
        earlier = report.rejected - report.new_rejects
        console.print(
            f"[yellow]{report.rejected} input(s) refused[/]"
            + (f" ({earlier} of them already recorded by an earlier run)" if earlier else "")
            + "; see `phono rejects --stage ingest`"
        )
    if not report.clean:
        sys.exit(EXIT_REJECTS)


@contextmanager
def _progress(description: str, show: bool = True) -> Iterator[ProgressFn]:
    """A bar over input bytes (when known) that also shows records read and records/s."""
    show = show and (console.is_terminal or os.environ.get("PHONO_PROGRESS") == "1")
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
    )
    task = progress.add_task(description, total=None, rows=0, rate="")

    def advance(p: ProgressEvent) -> None:
        t = progress.tasks[task]
        elapsed = t.elapsed or 0.0
        rows = int(p.counts.get("rows", 0))
        rate = rows / elapsed if elapsed > 0 else 0.0
        progress.update(task, total=p.total, completed=p.done, rows=rows,
                        rate=f"{rate:,.0f} rows/s" if rate else "")

    if not show:  # no terminal: plain lines on stderr at a steady interval
        with plain_progress(description, "B") as log:
            yield log
        return
    with progress:
        yield advance


def _render(report: IngestReport) -> None:
    table = Table(title=f"ingest {report.kind}: {len(report.sources)} input(s) "
                        f"in {report.elapsed:.1f} s")
    # "read" counts the records the inputs gave (docs/cli.md: the same on both engines);
    # added/updated count catalogue records of every kind they made (one file: its audio,
    # track, release, artists), so both are labelled, and the table below splits them by
    # kind.
    for col in ("input", "status", "read", "records added", "records updated", "rejected"):
        table.add_column(col, justify="left" if col in ("input", "status") else "right",
                         overflow="fold")
    shown = report.sources if len(report.sources) <= 20 else [
        s for s in report.sources if s.rejected or s.status != "skipped"][:20]
    for s in shown:
        status = s.status + (f" @{s.start_offset:,}" if s.status == "resumed" else "")
        table.add_row(s.source, status, f"{s.read:,}", f"{s.added:,}", f"{s.updated:,}",
                      f"{s.rejected:,}")
    if len(shown) < len(report.sources):
        table.add_row(f"... {len(report.sources) - len(shown)} more", "", "", "", "", "")
    table.add_section()
    table.add_row("total", "", f"{report.read:,}", f"{report.added:,}", f"{report.updated:,}",
                  f"{report.rejected:,}", style="bold")
    console.print(table)
    if report.by_kind:
        kinds = Table(title="by record kind")
        for col in ("kind", "added", "updated", "unchanged"):
            kinds.add_column(col, justify="left" if col == "kind" else "right")
        for k, (a, u, n) in sorted(report.by_kind.items()):
            kinds.add_row(k, f"{a:,}", f"{u:,}", f"{n:,}")
        console.print(kinds)
    if report.excluded_tracks:
        console.print(f"{report.excluded_tracks:,} tracks excluded by the exclusion list")
