"""`phono build` (every stage in order) and `phono demo` (a build over the bundled demo data)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from phonotheque.cli._build_options import build_settings_options, given_settings, print_settings
from phonotheque.cli._common import (
    command,
    console,
    emit_json,
    json_option,
    plain_progress,
    workers_type,
)
from phonotheque.cli._listens import warn_unmatched
from phonotheque.pipeline import (
    BuildOptions,
    BuildReport,
    SourceSpec,
    StageResult,
    build,
    check_columnar_sources,
    parse_source,
)
from phonotheque.progress import ProgressEvent
from phonotheque.publish.index import read_index
from phonotheque.select.report import MODES
from phonotheque.workspace import ENGINES, Workspace


def demo_sources() -> list[SourceSpec]:
    """The bundled demo catalogue (see demo_data/README.md), as build sources."""
    root = Path(str(resources.files("phonotheque") / "demo_data"))
    return [
        SourceSpec("musicbrainz", root / "musicbrainz" / "mbdump-sample.jsonl"),
        SourceSpec("mbdump", root / "mbdump"),
        SourceSpec("tags", root / "audio"),
        SourceSpec("listens", root / "listens.csv"),
        SourceSpec("listens", root / "listenbrainz-top-recordings.json"),
    ]


def _run_build(ws: Workspace, sources: list[SourceSpec], options: BuildOptions,
               quiet: bool = False) -> BuildReport:
    """Run the build with a bar per stage and a line as each stage ends (none if ``quiet``)."""
    progress = Progress(
        TextColumn("[bold]{task.fields[stage]:>8}"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def on_progress(event: ProgressEvent) -> None:
        message = _progress_message(event)
        if event.stage not in tasks:
            tasks[event.stage] = progress.add_task(message, total=event.total, stage=event.stage)
        progress.update(tasks[event.stage], description=message, completed=event.done,
                        total=event.total)

    def on_stage(result: StageResult) -> None:
        if quiet:
            return
        if result.skipped:
            progress.console.print(f"[bold]{result.name:>8}[/] [yellow]skipped[/]: "
                                   f"{result.skipped}", highlight=False, soft_wrap=True)
            return
        mark = "[green]changed[/]" if result.changed else "[dim]up to date[/]"
        progress.console.print(
            f"[bold]{result.name:>8}[/] {stage_summary(result)}  ({result.elapsed:.1f} s, {mark})"
        )

    with progress, plain_progress("build") as log:
        # on a terminal a bar per stage; without one (cron, CI) plain lines on stderr
        report = build(ws, sources, options,
                       progress=on_progress if console.is_terminal and not quiet else log,
                       on_stage=on_stage)
    if not report.changed and not quiet:
        console.print("[green]nothing to do:[/] every stage was already up to date")
    return report


def _progress_message(event: ProgressEvent) -> str:
    """The text beside a stage's bar: where it is, in the stage's own unit."""
    if event.stage == "audio":
        return f"{event.done:.0f}/{event.total or 0:.0f} files, " \
               f"{event.counts.get('errors', 0):.0f} errors"
    if event.stage == "ingest":
        return Path(event.message).name
    return event.message


def stage_summary(result: StageResult) -> str:
    """One line saying what a stage of the build did, from its report."""
    if result.skipped:
        return f"skipped: {result.skipped}"
    return _STAGE_SUMMARIES[result.name](result.report)


def _ingest_summary(reports: list[Any]) -> str:
    # One input record (a file, a dump line) makes records of several kinds (a file:
    # its audio, track, release, artists), so "added" is said per kind, not summed.
    added: dict[str, int] = {}
    updated = 0
    for r in reports:
        for kind, (a, u, _n) in r.by_kind.items():
            added[kind] = added.get(kind, 0) + a
            updated += u
    kinds = ", ".join(f"{n:,} {kind}" for kind, n in sorted(added.items()) if n)
    return (f"{sum(r.read for r in reports):,} records read, "
            f"added {kinds or 'nothing'}, {updated:,} records updated, "
            f"{sum(r.rejected for r in reports):,} rejected")


def _select_summary(rep: Any) -> str:
    if rep.mode == "no_listens":
        what = "every held track (no listen data)"
    elif rep.mode == "all":
        what = "every held track (--all)"
    elif rep.total_listens:
        what = f"covering {rep.covered_share:.2%} of matched listens"
    else:
        what = "(no listen matched a track)"
    wanted = rep.statuses.get("wanted", 0)
    return (f"{rep.selected:,} tracks selected {what}"
            + (f", {wanted:,} of them wanted (no file held)" if wanted else ""))


def _audio_summary(rep: Any) -> str:
    tiers = ", ".join(f"{n} {t}" for t, n in sorted(rep.by_tier.items()))
    errors = (f" ({', '.join(f'{n} {k}' for k, n in sorted(rep.errors.items()))})"
              if rep.error_count else "")
    return (f"{rep.succeeded:,} files archived ({tiers or 'none new'}), "
            f"{rep.already_done:,} already done, {rep.wanted:,} wanted, "
            f"{rep.error_count:,} errors{errors}")


def _pack_summary(rep: Any) -> str:
    return (f"{len(rep.new_folders)} new torrent folders, {len(rep.rebuilt)} rebuilt, "
            f"{rep.files_packed:,} files packed")


def _publish_summary(rep: Any) -> str:
    pub = rep.publish
    listed = f"{pub.current} torrents listed" if pub is not None else "nothing published"
    wave = (f"wave {rep.wave} released ({len(rep.released)} data torrents)" if rep.wave
            else "no new wave")
    return f"{wave}; {listed}"


_STAGE_SUMMARIES: dict[str, Callable[[Any], str]] = {
    "ingest": _ingest_summary, "select": _select_summary, "audio": _audio_summary,
    "pack": _pack_summary, "publish": _publish_summary,
}


def _summary(ws: Workspace, report: BuildReport) -> Table:
    from phonotheque.stats import catalogue_stats

    st = catalogue_stats(ws)
    t = Table(title=f"archive {ws.root}", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("tracks", f"{st.tracks:,}")
    t.add_row("unique ISRCs", f"{st.unique_isrcs:,}")
    m = st.listen_match
    t.add_row("listens matched to a track", f"{m.matched:,}")
    if m.unmatched:
        t.add_row("listens matching no track", f"{m.unmatched:,} ({m.unmatched_share:.1%})")
    t.add_row("tracks with audio", f"{st.tracks_with_audio:,}")
    t.add_row("rejected inputs", f"{st.rejects:,}")
    sel = report.stage("select")
    if sel is not None:
        r = sel.report
        t.add_row("selected", f"{r.selected:,}")
        if r.held_only:
            t.add_row("selection", MODES[r.mode])
        elif r.total_listens:
            t.add_row("coverage of matched listens", f"{r.covered_share:.2%}")
        else:
            t.add_row("coverage of matched listens", "n/a (no listen matched a track)")
        wanted = r.statuses.get("wanted", 0)
        if wanted:
            t.add_row("wanted (selected, no file held)", f"{wanted:,}")
    t.add_row("build time", f"{report.elapsed:.1f} s")
    return t


def _notes(ws: Workspace, report: BuildReport) -> None:
    """What the curator should know although nothing failed: unmatched listens, wanted tracks."""
    sel = report.stage("select")
    if sel is None:
        return
    warn_unmatched(sel.report.listen_match)
    wanted = sel.report.statuses.get("wanted", 0)
    if wanted:
        console.print(f"{wanted:,} selected tracks are wanted (no file held): "
                      f"`phono ledger -w {ws.root} --status wanted --csv` lists them")


def _problems(report: BuildReport) -> str:
    """What went wrong without stopping the build (rejected inputs, failed files), or ''."""
    parts = []
    ingest = report.stage("ingest")
    if ingest is not None:
        # Only refusals this run made: a re-run over the same bad file is not news.
        rejected = sum(r.new_rejects for r in ingest.report)
        if rejected:
            parts.append(f"{rejected} inputs rejected")
    audio = report.stage("audio")
    if audio is not None and audio.report.error_count:
        parts.append(f"{audio.report.error_count} tracks failed in audio")
    return ", ".join(parts)


@command("build")
@click.argument("sources", nargs=-1, required=True)
@click.option("--workspace", "-w", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Workspace folder (created if missing).")
@build_settings_options
@click.option("--scheduler", help="Dask scheduler address (tcp://host:8786) for audio "
                                  "encoding and per-folder torrent hashing.")
@click.option("--workers", type=workers_type(0),
              help="Local worker processes (default: all cores; 0 = in this process).")
@click.option("--stop-after", type=click.Choice(["ingest", "select", "audio", "pack", "publish"]),
              help="Run the stages up to this one only.")
@click.option("--engine", type=click.Choice(ENGINES), default=None,
              help="duckdb: a columnar workspace (as `phono init --engine duckdb` makes, "
                   "converting an existing one), for tens to hundreds of millions of tracks; "
                   "every stage runs there, audio and pack included. "
                   "Default: the workspace's engine (sqlite for a new one).")
@json_option
def build_cmd(sources: tuple[str, ...], workspace: Path, scheduler: str | None,
              workers: int | None, stop_after: str | None, engine: str | None,
              as_json: bool, **settings: Any) -> None:
    """Run ingest -> select -> audio -> pack -> publish over SOURCES.

    Each SOURCE is `kind:PATH` (musicbrainz:, mbdump:, tags:, listens:) or a
    path whose kind is detected. Re-running with the same inputs changes
    nothing; a killed build resumes where it stopped.

    Selection and packing options given once are kept in the workspace: later
    builds use them without repeating them, and a build given other values
    says what changed. With no listen data at all (your own collection),
    every held track is archived with its original file.

    Exit status: 0 clean; 10 finished, but some inputs were rejected or some
    tracks failed (see `phono rejects`, `phono ledger`); a re-run that meets
    only the rejects an earlier run recorded exits 0; 2-7 on errors that stop
    the build (5: disk full or read-only destination, 7: workspace busy).

    On a columnar workspace (--engine duckdb) every stage runs and the exit
    status means the same; a source it could not ingest would be refused (2)
    before anything runs.
    """
    from phonotheque.build_settings import resolve
    from phonotheque.pack.packer import resolve_options

    specs = [parse_source(s) for s in sources]  # every source checked before anything is made
    if engine == "duckdb" or Workspace(workspace).engine == "duckdb":
        check_columnar_sources(specs)
    ws = Workspace.create(workspace, engine=engine)
    resolved = resolve(ws, given_settings(settings))
    if not as_json:
        print_settings(resolved)
    base_pack = resolve_options(ws, {"workers": workers})
    options = BuildOptions(select=resolved.settings.select_options(),
                           pack=resolved.settings.pack_options(base_pack),
                           scheduler=scheduler, workers=workers, stop_after=stop_after)
    report = _run_build(ws, specs, options, quiet=as_json)
    if as_json:
        problems = _problems(report)
        emit_json("build", {"changed": report.changed, "elapsed": report.elapsed,
                            "stages": report.stages}, 10 if problems else 0, problems)
        return
    console.print(_summary(ws, report))
    _notes(ws, report)
    _exit_on_problems(report)


def _exit_on_problems(report: BuildReport) -> None:
    """Exit 10 (README) when the build finished but refused inputs or failed tracks."""
    problems = _problems(report)
    if problems:
        console.print(f"[yellow]{problems}[/] (see `phono rejects` and `phono ledger "
                      f"--status 'error_*'`)")
        sys.exit(10)


def _demo_health(ws: Workspace) -> None:
    from phonotheque.cli.swarm_cmds import health_lines
    from phonotheque.swarm import loopback

    console.print("\n[bold]Swarm health[/] (our seeder and a private tracker, on 127.0.0.1 only)")
    if not loopback.available():
        console.print("  skipped: opentracker is not installed (./scripts/setup installs it)")
        return
    report = loopback.loopback_health(ws)
    for line in health_lines(report):
        console.print(line, highlight=False, soft_wrap=True)
    entries = read_index(ws.publish)
    for e in entries:
        if not e["obsolete"]:
            n = e["seeders"]
            console.print(f"  {'?' if n is None else n:>3} seeder{'' if n == 1 else 's'}  "
                          f"{e['display_name']}", highlight=False, soft_wrap=True)


@command("demo")
@click.option("--workspace", "-w", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo-archive"), show_default=True,
              help="Where to build the demo archive.")
@click.option("--serve", "serve_after", is_flag=True,
              help="Then serve the search page until Ctrl-C.")
@click.option("--port", type=int, default=8080, show_default=True,
              help="Port of the search page.")
@click.option("--health/--no-health", default=True, show_default=True,
              help="Seed the demo's torrents through a private tracker on 127.0.0.1 for a moment "
                   "and show their swarm health (needs opentracker).")
def demo(workspace: Path, serve_after: bool, port: int, health: bool) -> None:
    """Build a small archive from the bundled real demo catalogue and show what it made.

    Runs every stage (ingest, select, audio, pack, publish) over real
    MusicBrainz data, ListenBrainz rows and real audio files bundled with
    phonotheque, then tells you how to search, verify and seed the result.
    One bundled file is deliberately broken, so a first demo exits 10 (the
    build finished but rejected an input) like any such build; a re-run exits 0.
    On a columnar workspace (`phono init DIR --engine duckdb` first) it runs the
    same stages and makes the same archive.
    """
    ws = Workspace.create(workspace)
    console.print(f"[bold]Phonothèque demo[/]: building {ws.root} from the bundled catalogue")
    report = _run_build(ws, demo_sources(), BuildOptions())
    console.print(_summary(ws, report))
    _notes(ws, report)
    sel = report.stage("select")
    if sel is not None and sel.report.listen_match.warning() is not None:
        # A first-time user reads this screen first: say why the warning is right here.
        console.print("[dim](expected in the demo: its ListenBrainz sample is a real top-recordings "
                      "list, mostly of recordings outside the few bundled releases)[/]")
    if health:
        _demo_health(ws)
    w = workspace
    url = f"http://127.0.0.1:{port}/"
    console.print(
        "\n[bold]What it made[/]\n"
        f"  archive files:   {ws.audio}  (originals + Opus re-encodes, tagged)\n"
        f"  torrents:        {ws.torrents}\n"
        f"  published:       {ws.publish}  (metadata.sqlite, parquet/, torrents.json, magnets.txt)\n"
        "\n[bold]Try[/]\n"
        f"  .venv/bin/phono serve -w {w} --port {port}     search page at [bold]{url}[/]\n"
        f"  .venv/bin/phono ledger -w {w}                 why each track is in or out\n"
        f"  .venv/bin/phono verify {w}/torrents --against {w}/publish\n"
        f"  .venv/bin/phono seed -w {w} --listen 127.0.0.1:6881 --no-dht --no-lsd\n"
        f"  .venv/bin/phono adopt -w {w} --budget 1GB         what a volunteer would seed"
    )
    if serve_after:
        from phonotheque.serve.app import ServeOptions
        from phonotheque.serve.server import run

        run(ServeOptions(ws.publish, host="127.0.0.1", port=port),
            on_ready=lambda u: console.print(f"serving the search page at [bold]{u}[/] "
                                             "(Ctrl-C to stop)"))
    _exit_on_problems(report)
