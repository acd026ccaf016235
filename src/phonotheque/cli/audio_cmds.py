"""`phono audio`: archive the selected tracks (tiers, tags, hashes, patches); `rebuild`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from phonotheque.catalogue import audio_files
from phonotheque.cli._common import (
    command,
    console,
    emit_json,
    handle_errors,
    json_option,
    plain_progress,
    workers_type,
)
from phonotheque.errors import WorkspaceError
from phonotheque.progress import ProgressEvent
from phonotheque.workspace import Workspace, require_support


@click.group("audio", invoke_without_command=True)
@click.option("--workspace", "-w", "workspace",
              type=click.Path(file_okay=False, path_type=Path),
              default=lambda: os.environ.get("PHONO_WORKSPACE", "."),
              show_default="$PHONO_WORKSPACE or .", help="Workspace folder.")
@click.option("--workers", "-j", type=workers_type(0), default=None,
              help="Local worker processes (default: number of cores; 0 = in this process).")
@click.option("--scheduler", metavar="tcp://HOST:8786",
              help="Run on a Dask distributed cluster instead of local processes.")
@click.option("--bitrate", default="75k", show_default=True,
              help="Opus bitrate of the reencode tier.")
@click.option("--vbr", type=click.Choice(["on", "off", "constrained"]), default="on",
              show_default=True, help="libopus VBR mode.")
@click.option("--application", type=click.Choice(["audio", "voip", "lowdelay"]),
              default="audio", show_default=True, help="libopus application.")
@click.option("--opus-arg", "opus_args", multiple=True, metavar="ARG",
              help="Extra ffmpeg output argument (repeatable), e.g. --opus-arg=-frame_duration "
                   "--opus-arg=40.")
@click.option("--no-patches", is_flag=True, help="Do not make .zstdpatch files for originals.")
@click.option("--no-replaygain", is_flag=True,
              help="Skip the ReplayGain (ebur128) measurement: ~10% less CPU per re-encode.")
@click.option("--verify", is_flag=True,
              help="Re-hash finished files before skipping them (default: size check).")
@click.option("--retry-errors", is_flag=True, help="Try again tracks that failed before.")
@json_option
@click.pass_context
@handle_errors
def audio(ctx: click.Context, workspace: Path, workers: int | None, scheduler: str | None,
          bitrate: str, vbr: str, application: str, opus_args: tuple[str, ...],
          no_patches: bool, no_replaygain: bool, verify: bool, retry_errors: bool,
          as_json: bool) -> None:
    """Archive every selected track: originals kept (tags only), the tail re-encoded to Opus.

    Each file is probed, tagged (Picard's tag names, ReplayGain, cover), hashed
    and written atomically under audio/<tier>/<sha256[:2]>/<sha256>.<ext>;
    originals get a .zstdpatch that rebuilds the source bytes. Bad inputs go to
    quarantine/ with a reason file. Re-running resumes where a run stopped.

    Exit status: 0 clean; 10 finished, but some files failed (quarantined; see
    `phono ledger --status 'error_*'`); 7 another `phono audio` holds the
    workspace; 2-6 on errors that stop the run.
    """
    if ctx.invoked_subcommand is not None:
        return
    require_support(workspace, "audio")  # `audio rebuild` reads no bulk table
    from phonotheque.audio import AudioOptions, EncodeOptions, run_audio
    from phonotheque.audio.encode import parse_bitrate
    from phonotheque.executors import make_executor

    parse_bitrate(bitrate)
    ws = Workspace.open(workspace)
    options = AudioOptions(
        encode=EncodeOptions(bitrate=bitrate, vbr=vbr, application=application,
                             extra_args=opus_args, replaygain=not no_replaygain),
        patches=not no_patches, verify_existing=verify, retry_errors=retry_errors,
    )
    show = not as_json and (console.is_terminal or os.environ.get("PHONO_PROGRESS") == "1")
    progress = Progress(
        TextColumn("[bold]audio"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, disable=not show,
    )
    task = progress.add_task("audio", total=None, stats="")

    def on_progress(p: ProgressEvent) -> None:
        c = p.counts
        el = max(c.get("elapsed", 0.0), 1e-6)
        errors = int(c.get("errors", 0))
        stats = (f"{p.done / el:.1f} files/s  {c.get('bytes_in', 0) / 1e6 / el:.1f} MB/s  "
                 f"{c.get('audio_seconds', 0) / el:.0f}x realtime  "
                 + (f"[red]{errors} errors[/]" if errors else "0 errors"))
        progress.update(task, completed=p.done, total=p.total, stats=stats)

    with make_executor(workers, scheduler) as executor, progress, \
            plain_progress("audio", "files") as log:
        # on a terminal the bar; without one (cron, CI) plain lines on stderr
        report = run_audio(ws, options, executor, on_progress if show else log)
    if as_json:
        emit_json("audio", report, 10 if report.error_count else 0,
                  f"{report.error_count} files failed" if report.error_count else "")
        return
    _render(report)
    if report.error_count:
        # README: 10 = the run finished but some inputs were refused (quarantined here).
        sys.exit(10)


@command("rebuild", group=audio)
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("patch", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the original (default: FILE's name + .original).")
@click.option("--sha256", "expected", help="Expected sha256 of the original "
              "(default: from the patch header, or the catalogue when FILE is in it).")
@click.pass_context
def rebuild_cmd(ctx: click.Context, file: Path, patch: Path, output: Path | None,
                expected: str | None) -> None:
    """Re-create the exact original of archive FILE from its PATCH and check its sha256."""
    from phonotheque.audio import rebuild

    if expected is None:
        expected = _catalogue_original_sha(ctx.parent.params.get("workspace") if ctx.parent
                                           else None, file)
    out = output or file.with_name(file.name + ".original")
    rep = rebuild(file, patch, out, expected)
    state = "[green]verified[/]" if rep.verified else "[yellow]not verified (no hash known)[/]"
    console.print(f"rebuilt {rep.output} ({rep.size:,} bytes, sha256 {rep.sha256}) {state}")



def _catalogue_original_sha(workspace: Path | None, file: Path) -> str | None:
    """original_sha256 of ``file`` if it lies in a workspace whose catalogue knows it."""
    if workspace is None:
        return None
    try:
        ws = Workspace.open(workspace)
    except WorkspaceError:
        return None
    try:
        rel = file.resolve().relative_to(ws.root).as_posix()
    except ValueError:
        return None
    with ws.store(readonly=True) as store:
        return audio_files.original_sha256(store, rel)


def _render(report: object) -> None:
    from phonotheque.audio import AudioReport

    assert isinstance(report, AudioReport)
    t = Table(title="phono audio", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("executor", report.executor)
    t.add_row("selected tracks", f"{report.selected:,}")
    t.add_row("already done (skipped)", f"{report.already_done:,}")
    t.add_row("processed now", f"{report.planned:,}")
    for tier, n in sorted(report.by_tier.items()):
        t.add_row(f"  archived as {tier}", f"{n:,}")
    t.add_row("  new files written", f"{report.written:,}")
    t.add_row("duplicates (stored once)", f"{report.duplicates:,}")
    t.add_row("excluded", f"{report.excluded:,}")
    if report.wanted:
        t.add_row("wanted (no file held; `phono ledger --status wanted`)", f"{report.wanted:,}")
    if report.previous_errors:
        t.add_row("earlier errors (use --retry-errors)", f"{report.previous_errors:,}")
    t.add_row("errors", f"{report.error_count:,}")
    for reason, n in sorted(report.errors.items()):
        t.add_row(f"  error_{reason}", f"{n:,}")
    t.add_row("read / written", f"{report.bytes_in / 1e6:,.1f} MB / {report.bytes_out / 1e6:,.1f} MB")
    t.add_row("patches", f"{report.patch_bytes:,} bytes")
    t.add_row("time", f"{report.elapsed:,.1f} s")
    t.add_row("throughput", f"{report.files_per_second:,.2f} files/s, "
              f"{report.mb_per_second:,.1f} MB/s, {report.realtime_factor:,.0f}x realtime")
    if report.stale_temps_removed:
        t.add_row("stale temp files removed", f"{report.stale_temps_removed:,}")
    console.print(t)
    if report.quarantined:
        console.print(f"{len(report.quarantined)} inputs quarantined (see quarantine/*.reason.txt)")
