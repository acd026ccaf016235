"""Workspace and catalogue commands: init, stats, compare, rejects, exclude, gc."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
from rich.table import Table

from phonotheque.cli._common import command, console, emit_json, json_option, workspace_option
from phonotheque.cli._listens import print_listen_match
from phonotheque.compare import KeyOverlap, compare
from phonotheque.sources import printable
from phonotheque.sources.bounds import MAX_INT64
from phonotheque.stats import catalogue_stats
from phonotheque.workspace import ENGINES, Workspace


def _overlap_table(o: KeyOverlap, a: str, b: str) -> Table:
    t = Table(title=f"{o.kind.upper()}s", show_header=True)
    t.add_column("")
    t.add_column("count", justify="right")
    t.add_column("share", justify="right")
    t.add_column("sample", overflow="fold")
    t.add_row(f"in {a}", f"{o.in_a:,}", "", "")
    t.add_row(f"in {b}", f"{o.in_b:,}", "", "")
    t.add_row("in both", f"{o.both:,}", f"{o.share_of_a_in_b:.1%} of {a}", "")
    t.add_row(f"only in {a}", f"{o.only_a:,}", f"{1 - o.share_of_a_in_b:.1%} of {a}" if o.in_a else "",
              ", ".join(o.sample_only_a))
    t.add_row(f"only in {b}", f"{o.only_b:,}", f"{1 - o.share_of_b_in_a:.1%} of {b}" if o.in_b else "",
              ", ".join(o.sample_only_b))
    return t


@command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--engine", type=click.Choice(ENGINES), default=None,
              help="Where the bulk tables (tracks, releases, artists, ISRCs, listens) live: "
                   "sqlite (the default) or duckdb, the columnar catalogue for tens to "
                   "hundreds of millions of tracks (docs/scale.md). An existing workspace "
                   "given --engine duckdb is converted, ids kept.")
def init(directory: Path, engine: str | None) -> None:
    """Create a workspace in DIRECTORY (idempotent)."""
    ws = Workspace.create(directory, engine=engine)
    console.print(f"workspace ready: {printable(ws.root)} (engine: {ws.engine})")


@command("stats")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@workspace_option
def stats(ws: Workspace, as_json: bool) -> None:
    """Counts a curator needs: tracks, ISRCs (unique, shared, missing), listens, audio."""
    st = catalogue_stats(ws)
    if as_json:
        click.echo(orjson.dumps(st.as_dict(), option=orjson.OPT_INDENT_2))
        return
    table = Table(title=f"catalogue {ws.root}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in st.counts().items():
        table.add_row(key.replace("_", " "), f"{value:,}")
    console.print(table)
    print_listen_match(st.listen_match)


@command("compare")
@click.argument("a", type=click.Path(exists=True, path_type=Path))
@click.argument("b", type=click.Path(exists=True, path_type=Path))
@click.option("--sample", type=click.IntRange(0), default=10, show_default=True,
              help="How many example keys to show for each side.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def compare_cmd(a: Path, b: Path, sample: int, as_json: bool) -> None:
    """Compare two catalogues (workspaces or catalogue.sqlite files) by ISRC and MBID.

    Answers "how many of our ISRCs does the other catalogue lack?". To compare
    with a MusicBrainz dump, ingest it into its own workspace first. Columnar
    workspaces are compared on DuckDB.
    """
    # Past 2**63 - 1 (no engine binds more): every key, as any figure above the
    # catalogue's; a negative one stays a usage error (IntRange(0) above).
    sample = min(sample, MAX_INT64)
    rep = compare(a, b, sample=sample, a_name=str(a), b_name=str(b))
    if as_json:
        def part(o: KeyOverlap) -> dict[str, object]:
            return {"in_a": o.in_a, "in_b": o.in_b, "both": o.both, "only_a": o.only_a,
                    "only_b": o.only_b, "sample_only_a": o.sample_only_a,
                    "sample_only_b": o.sample_only_b}
        click.echo(orjson.dumps({"a": rep.a, "b": rep.b, "isrc": part(rep.isrc),
                                 "mbid": part(rep.mbid)}, option=orjson.OPT_INDENT_2))
        return
    console.print(_overlap_table(rep.isrc, "A", "B"))
    console.print(_overlap_table(rep.mbid, "A", "B"))
    console.print(f"A = {rep.a}\nB = {rep.b}")
    console.print(
        f"[bold]{rep.isrc.only_a:,}[/] of A's {rep.isrc.in_a:,} ISRCs are missing from B."
    )


@command("rejects")
@click.option("--stage", help="Only rejects of this stage (ingest, audio, ...).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@workspace_option
def rejects(ws: Workspace, stage: str | None, limit: int, as_json: bool) -> None:
    """List inputs that were refused, with where and why."""
    # SQLite binds no integer past 64 bits (a traceback); past the catalogue's size a
    # limit lists every reject anyway (and a negative one, SQLite's "no limit", too)
    limit = min(max(limit, -1), MAX_INT64)
    with ws.store(readonly=True) as store:
        rows = store.rejects(stage=stage, limit=limit)
        total = store.reject_count(stage)
    if as_json:
        click.echo(orjson.dumps({"total": total, "rejects": [
            {"stage": r.stage, "source": r.source, "locator": r.locator, "reason": r.reason,
             "created_at": r.created_at} for r in rows]}))
        return
    shown = f"{len(rows)} of {total}" if len(rows) < total else f"{total}"
    table = Table(title=f"{shown} rejects" + (" (--limit)" if len(rows) < total else ""))
    for col in ("stage", "source", "locator", "reason"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.stage, r.source, r.locator, r.reason)
    console.print(table)


@click.group("exclude")
def exclude() -> None:
    """Manage the exclusion (takedown) list, honoured by every stage."""


@command("add", group=exclude)
@click.option("--isrc", help="Exclude every track with this ISRC.")
@click.option("--mbid", help="Exclude a recording, release or artist by MusicBrainz id.")
@click.option("--path", "path_", help="Exclude source audio at this path (file or folder).")
@click.option("--reason", required=True, help="Why (kept in the published record).")
@workspace_option
def exclude_add(
    ws: Workspace, isrc: str | None, mbid: str | None, path_: str | None, reason: str
) -> None:
    """Add an exclusion; the ledger shows it at once, `phono release` publishes it."""
    from phonotheque import exclusions

    given = [(k, v) for k, v in (("isrc", isrc), ("mbid", mbid), ("path", path_)) if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --isrc, --mbid, --path")
    with ws.store() as store:
        change = exclusions.add(store, *given[0], reason)
    what = f"{change.kind} {change.value}"
    if change.matched:
        matches = f"matches {change.matched:,} track{'s' * (change.matched != 1)}"
    else:
        matches = "[yellow]matches no track in the catalogue (yet)[/]"
    console.print(f"{'added' if change.added else 'already present'}: {what}; {matches}; "
                  f"{change.excluded:,} tracks excluded in all", highlight=False, soft_wrap=True)


@command("remove", group=exclude)
@click.argument("kind", type=click.Choice(["isrc", "mbid", "path"]))
@click.argument("value")
@workspace_option
def exclude_remove(ws: Workspace, kind: str, value: str) -> None:
    """Remove an exclusion (VALUE written as for `exclude add`)."""
    from phonotheque import exclusions

    with ws.store() as store:
        value, removed = exclusions.remove(store, kind, value)
    console.print(f"removed: {kind} {value}" if removed else f"not found: {kind} {value}",
                  highlight=False, soft_wrap=True)


@command("list", group=exclude)
@json_option
@workspace_option
def exclude_list(ws: Workspace, as_json: bool) -> None:
    """List exclusions."""
    with ws.store(readonly=True) as store:
        rows = store.exclusions()
    if as_json:
        emit_json("exclude list", {"exclusions": rows})
        return
    table = Table(title=f"{len(rows)} exclusions")
    for col in ("kind", "value", "reason", "added_at"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.kind, r.value, r.reason, r.added_at)
    console.print(table)


@command("gc")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@workspace_option
def gc_cmd(ws: Workspace, dry_run: bool) -> None:
    """Remove taken-down audio and leftover payloads of obsolete torrents from the workspace.

    After `phono exclude add` and `phono release`, the excluded tracks' files
    (and patches) are still in audio/; gc deletes them. Safe to re-run.
    """
    from phonotheque.gc import collect
    from phonotheque.select.options import format_size

    report = collect(ws, dry_run=dry_run)
    if not report.items:
        console.print("gc: nothing to remove")
        return
    for g in report.items:
        console.print(f"  {'would remove' if dry_run else 'removed'} {g.path}  [dim]({g.why})[/]",
                      highlight=False, soft_wrap=True)
    console.print(f"gc: {len(report.items)} {'would be removed' if dry_run else 'removed'} "
                  f"({format_size(report.bytes)})" + (" — dry run, nothing removed"
                                                      if dry_run else ""))
