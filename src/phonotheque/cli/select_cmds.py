"""Selection commands: select, ledger, coverage-report."""

from __future__ import annotations

import csv
import itertools
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
import orjson
from rich.table import Table

from phonotheque.cli._common import SIZE, command, console, progress_bar, workspace_option
from phonotheque.cli._listens import print_listen_match
from phonotheque.errors import InputError, PhonoError
from phonotheque.select import (
    ENGINES,
    EXPORT_COLUMNS,
    STEPS,
    BandScheme,
    LedgerEntry,
    SelectOptions,
    SelectReport,
    format_size,
    select,
)
from phonotheque.select.chart import FORMATS, last_run, render_coverage, render_report
from phonotheque.select.ledger_view import LedgerView, open_ledger
from phonotheque.select.report import MODES
from phonotheque.sources.bounds import MAX_INT64
from phonotheque.workspace import Workspace


class _Bands(click.ParamType):
    name = "SCHEME"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> BandScheme:
        if isinstance(value, BandScheme):
            return value
        try:
            return BandScheme.parse(str(value))
        except PhonoError as exc:
            self.fail(str(exc), param, ctx)


def _report_path(value: Path | None) -> Path | None:
    if value is not None and value.suffix.lower() not in FORMATS:
        raise InputError(value, f"report must end in one of {', '.join(FORMATS)}")
    return value


@command("select")
@click.option("--coverage", type=click.FloatRange(0, 1), default=0.996, show_default=True,
              help="Share of listens (of non-excluded tracks) to cover.")
@click.option("--budget", type=SIZE, default=None,
              help="Stop at this estimated archive size (300TB, 1.5GiB, ...).")
@click.option("--original-share", type=click.FloatRange(0, 1), default=None,
              help="Tracks within this share of listens keep their original file "
                   "[default: 0.5; every track when all held tracks are taken].")
@click.option("--tail-threshold", type=click.IntRange(0), default=None,
              help="Instead of --original-share: re-encode tracks with fewer listens.")
@click.option("--opus-bitrate", type=click.IntRange(1), default=75_000, show_default=True,
              help="Bits/s of re-encoded (Opus) files, for size estimates.")
@click.option("--priority-threshold", type=float, default=0.5, show_default=True,
              help="Take zero-listen tracks without a held file whose secondary priority "
                   "(0..1) reaches this; held ones are taken first (above 1: none).")
@click.option("--all", "take_all", is_flag=True,
              help="Take every held track (your own collection), ranked by listens; also "
                   "what happens when there is no listen data at all.")
@click.option("--bands", type=_Bands(), default="decade", show_default=True,
              help="Popularity bands: 'decade' (of listen count) or 'quantiles:N'.")
@click.option("--report", "reports", type=click.Path(dir_okay=False, path_type=Path),
              multiple=True, help="Also write the coverage report (.html, .png, .svg).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--engine", type=click.Choice(sorted(ENGINES)), default=None,
              help="Optional: select runs on the workspace's engine (DuckDB on a columnar "
                   "workspace, `phono init DIR --engine duckdb`); another value is an error "
                   "that says so.")
@workspace_option
def select_cmd(ws: Workspace, coverage: float, budget: int | None,
               original_share: float | None, tail_threshold: int | None, opus_bitrate: int,
               priority_threshold: float, take_all: bool, bands: BandScheme,
               reports: tuple[Path, ...], as_json: bool, engine: str | None) -> None:
    """Choose the tracks to archive: the fewest that cover --coverage of listens.

    One file per ISRC; zero-listen tracks by secondary priority; tiers
    (original / reencode); popularity bands; every track's status in the
    ledger. Re-running with other options keeps audio outcomes.
    """
    for r in reports:
        _report_path(r)
    options = SelectOptions(
        coverage=coverage, budget_bytes=budget, original_share=original_share,
        tail_threshold=tail_threshold, opus_bitrate=opus_bitrate,
        priority_threshold=priority_threshold, bands=bands, take_all=take_all,
    )
    with progress_bar("select", total=len(STEPS), unit="steps", enabled=not as_json) as advance:
        report = select(ws, options, advance, engine=engine)
    for r in reports:
        render_report(report, r)
    if as_json:
        click.echo(orjson.dumps(report.summary(), option=orjson.OPT_INDENT_2))
        return
    _render(report)
    for r in reports:
        console.print(f"report written: {r}")


@command("ledger")
@click.option("--status", help="Only this status (a trailing * matches a prefix: error_*).")
# A limit or offset past 2**63 - 1 (more tracks than any catalogue holds) means all, or
# none: clamped there, as neither SQLite nor DuckDB binds a larger integer (a traceback).
@click.option("--limit", type=click.IntRange(0, MAX_INT64, clamp=True), default=None,
              help="Tracks to list (0: counts only) [default: 20 in the table, all "
                   "with --json or --csv].")
@click.option("--offset", type=click.IntRange(0, MAX_INT64, clamp=True), default=0)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--csv", "as_csv", is_flag=True,
              help="The matching tracks as CSV (mbid, isrc, title, artist, listens, ...): "
                   "e.g. the wanted list, `--status wanted --csv`.")
@workspace_option
def ledger_cmd(ws: Workspace, status: str | None, limit: int | None, offset: int,
               as_json: bool, as_csv: bool) -> None:
    """Count tracks per status and list them (selected ones in rank order).

    `--status wanted` is the archive's wanted list: selected tracks whose
    file is not held, with their MBID, ISRC and listens, for acquisition.
    """
    if as_json and as_csv:
        raise InputError("--json --csv", "choose one output format")
    with open_ledger(ws) as view:
        if as_csv:
            _write_csv(view.iter(status), limit, offset)
            return
        if as_json:
            _write_json(view, status, limit, offset)
            return
        if limit is None:
            limit = 20
        counts = view.counts()
        matching = view.matching(status)
        rows = view.entries(status, limit, offset) if limit != 0 else []
    t = Table(title="ledger")
    t.add_column("status")
    t.add_column("tracks", justify="right")
    for k, v in counts.items():
        t.add_row(k, f"{v:,}")
    console.print(t)
    if not counts:
        console.print("empty ledger: run `phono select` first")
    if rows:
        lt = Table(title=f"{matching:,} tracks" + (f" with status {status}" if status else ""))
        for col in ("rank", "band", "tier", "listens"):
            lt.add_column(col, no_wrap=True, justify="right")
        lt.add_column("status / detail", overflow="fold", min_width=22)
        lt.add_column("title", overflow="fold")
        for r in rows:
            lt.add_row("" if r.rank is None else str(r.rank),
                       "" if r.band is None else str(r.band), r.tier or "",
                       f"{r.listens:,}",
                       r.status + (f"\n[dim]{r.detail}[/]" if r.detail else ""),
                       r.title)
        console.print(lt)


@command("coverage-report")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@workspace_option
def coverage_report(ws: Workspace, output: Path) -> None:
    """Draw the coverage report of the last selection to OUTPUT (.html, .png, .svg)."""
    _report_path(output)
    with ws.store(readonly=True) as store:
        run = last_run(store)
    if run is None:
        raise InputError(ws.root, "no selection yet (run `phono select`)")
    render_coverage(run[0], run[1], output)
    console.print(f"report written: {output}")



def _write_json(view: LedgerView, status: str | None, limit: int | None,
                offset: int) -> None:
    """``{"counts", "matching", "tracks": [...]}``, the tracks streamed one by one (an
    export of every matching track keeps memory flat on any ledger)."""
    head = orjson.dumps({"counts": view.counts(), "matching": view.matching(status)})
    out = sys.stdout
    out.write(head[:-1].decode() + ',"tracks":[')
    stop = None if limit is None else min(offset + limit, sys.maxsize)  # islice's bound
    for i, entry in enumerate(itertools.islice(view.iter(status), offset, stop)):
        out.write(("," if i else "")
                  + orjson.dumps({k: getattr(entry, k) for k in entry.__slots__}).decode())
    out.write("]}\n")


def _write_csv(entries: Iterable[LedgerEntry], limit: int | None, offset: int) -> None:
    """Stream ``entries`` as CSV to stdout (memory stays flat on any ledger)."""
    writer = csv.DictWriter(sys.stdout, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    stop = None if limit is None else min(offset + limit, sys.maxsize)  # islice's bound
    for entry in itertools.islice(entries, offset, stop):
        writer.writerow(entry.export_row())


def _render(r: SelectReport) -> None:
    o = r.options
    t = Table(title="selection", show_header=False)
    t.add_column("", style="bold")
    t.add_column("", justify="right")
    t.add_row("tracks in catalogue", f"{r.tracks:,}")
    t.add_row("excluded", f"{r.excluded:,}")
    t.add_row("works ranked (one per ISRC)", f"{r.works:,}")
    t.add_row("selection", MODES[r.mode])
    t.add_row("matched listens counted", f"{r.total_listens:,}")
    if r.unresolved_listens:
        t.add_row("listens matching no track",
                  f"{r.unresolved_listens:,} ({r.listen_match.unmatched_share:.1%})")
    if r.held_only:
        t.add_row("coverage of matched listens", f"{100 * r.covered_share:.3f} %")
    else:
        t.add_row("coverage of matched listens: target / reached",
                  f"{100 * o.coverage:.3f} % / {100 * r.covered_share:.3f} %")
    t.add_row("selected", f"{r.selected:,} (zero-listen {r.selected_zero_listen:,})")
    for tier in r.tiers.values():
        t.add_row(f"  {tier.tier}", f"{tier.tracks:,}  {format_size(tier.est_bytes)}")
    t.add_row("estimated size", format_size(r.est_bytes))
    if o.budget_bytes is not None:
        t.add_row("budget", format_size(o.budget_bytes)
                  + ("  [yellow](stopped the selection)[/]" if r.budget_stopped else ""))
    t.add_row("time", f"{r.elapsed_s:.1f} s")
    console.print(t)
    if r.bands:
        bt = Table(title=f"bands ({o.bands})")
        for col in ("band", "tracks", "est. size", "covered at end"):
            bt.add_column(col, justify="right")
        for b in r.bands:
            bt.add_row(str(b.band), f"{b.tracks:,}", format_size(b.est_bytes),
                       f"{100 * b.cum_share:.3f} %")
        console.print(bt)
    st = Table(title="ledger")
    st.add_column("status")
    st.add_column("tracks", justify="right")
    for k, v in r.statuses.items():
        st.add_row(k, f"{v:,}")
    console.print(st)
    print_listen_match(r.listen_match)
    if r.mode == "no_listens":
        console.print(f"[bold]no listen data:[/] every held track is selected ({r.selected:,})"
                      + ("" if o.original_share is not None or o.tail_threshold is not None
                         else ", original files kept"))
    if not r.target_reached and not r.budget_stopped and r.total_listens:
        console.print("[yellow]coverage target not reached[/]")
