"""Workspace and catalogue commands: init, stats, compare, rejects, exclude."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
from rich.table import Table

from phonotheque.cli._common import command, console, workspace_option
from phonotheque.model import Exclusion
from phonotheque.workspace import Workspace


def register(main: click.Group) -> None:
    @command(main, "init")
    @click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
    def init(directory: Path) -> None:
        """Create a workspace in DIRECTORY (idempotent)."""
        ws = Workspace.create(directory)
        console.print(f"workspace ready: {ws.root}")

    @command(main, "rejects")
    @click.option("--stage", help="Only rejects of this stage (ingest, audio, ...).")
    @click.option("--limit", type=int, default=50, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @workspace_option
    def rejects(ws: Workspace, stage: str | None, limit: int, as_json: bool) -> None:
        """List inputs that were refused, with where and why."""
        with ws.store(readonly=True) as store:
            rows = store.rejects(stage=stage, limit=limit)
            total = store.scalar(
                "SELECT count(*) FROM reject" + (" WHERE stage = ?" if stage else ""),
                (stage,) if stage else (),
            )
        if as_json:
            click.echo(orjson.dumps({"total": total, "rejects": [r.__dict__ if hasattr(r, "__dict__") else
                                      {k: getattr(r, k) for k in r.__slots__} for r in rows]}))
            return
        table = Table(title=f"{total} rejects")
        for col in ("stage", "source", "locator", "reason"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r.stage, r.source, r.locator, r.reason)
        console.print(table)

    @main.group("exclude")
    def exclude() -> None:
        """Manage the exclusion (takedown) list, honoured by every stage."""

    @command(exclude, "add")
    @click.option("--isrc", help="Exclude every track with this ISRC.")
    @click.option("--mbid", help="Exclude a recording, release or artist by MusicBrainz id.")
    @click.option("--path", "path_", help="Exclude source audio at this path (file or folder).")
    @click.option("--reason", required=True, help="Why (kept in the published record).")
    @workspace_option
    def exclude_add(
        ws: Workspace, isrc: str | None, mbid: str | None, path_: str | None, reason: str
    ) -> None:
        """Add an exclusion."""
        from phonotheque import isrc as isrc_mod

        given = [(k, v) for k, v in (("isrc", isrc), ("mbid", mbid), ("path", path_)) if v]
        if len(given) != 1:
            raise click.UsageError("give exactly one of --isrc, --mbid, --path")
        kind, value = given[0]
        if kind == "isrc":
            value = isrc_mod.parse(value).code
        elif kind == "path":
            value = str(Path(value).resolve())
        elif kind == "mbid":
            value = value.strip().lower()
        with ws.store() as store:
            added = store.add_exclusion(Exclusion(kind, value, reason))
            n = store.scalar("SELECT count(*) FROM track WHERE excluded = 1")
        console.print(
            f"{'added' if added else 'already present'}: {kind} {value}; {n} tracks excluded"
        )

    @command(exclude, "remove")
    @click.argument("kind", type=click.Choice(["isrc", "mbid", "path"]))
    @click.argument("value")
    @workspace_option
    def exclude_remove(ws: Workspace, kind: str, value: str) -> None:
        """Remove an exclusion."""
        with ws.store() as store:
            removed = store.remove_exclusion(kind, value)
        console.print("removed" if removed else "not found")

    @command(exclude, "list")
    @workspace_option
    def exclude_list(ws: Workspace) -> None:
        """List exclusions."""
        with ws.store(readonly=True) as store:
            rows = store.exclusions()
        table = Table(title=f"{len(rows)} exclusions")
        for col in ("kind", "value", "reason", "added_at"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r.kind, r.value, r.reason, r.added_at)
        console.print(table)
