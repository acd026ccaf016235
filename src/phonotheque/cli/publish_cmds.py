"""Pack and publish commands: pack, publish, release, verify."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from phonotheque.cli._common import (
    SIZE,
    command,
    console,
    emit_json,
    json_option,
    progress_bar,
    workers_type,
    workspace_option,
)
from phonotheque.workspace import Workspace


def _mb(n: int) -> str:
    from phonotheque.select.options import format_size

    return format_size(n)


def _torrent_option_decorators(f: Any) -> Any:
    for deco in reversed([
        click.option("--max-files", type=click.IntRange(1), default=None,
                     help="Files per data folder (default 60000)."),
        click.option("--max-bytes", type=SIZE, default=None,
                     help="Bytes per data folder (default 100GB)."),
        click.option("--layout", type=click.Choice(["aac", "readable"]), default=None,
                     help="aac: files named by AACID (default); readable: Artist/Release/NN Title.ext."),
        click.option("--prefix", default=None,
                     help="Institution prefix of folder names (default 'phonotheque')."),
        click.option("--collection", default=None,
                     help="AAC collection base name (default 'music' -> music_files_bandNN)."),
        click.option("--piece-length", type=SIZE, default=None,
                     help="Torrent piece length (default: libtorrent's choice)."),
        click.option("--torrent-version", "torrent_version", type=click.Choice(["hybrid", "1", "2"]),
                     default=None, help="BitTorrent version (default hybrid v1+v2)."),
        click.option("--tracker", "trackers", multiple=True, help="Announce URL (repeatable)."),
        click.option("--webseed", "webseeds", multiple=True, help="Web seed URL (repeatable)."),
        click.option("--art", "art_dir", type=click.Path(file_okay=False, exists=True,
                                                         path_type=Path),
                     default=None, help="Folder of cover images named <release mbid>.<ext>."),
        click.option("--no-art", is_flag=True, help="Do not pack album art."),
        click.option("--rescan-art", is_flag=True,
                     help="Look for art of every packed release again, not only of new ones."),
        click.option("--no-check", is_flag=True,
                     help="Do not re-hash files against the catalogue's sha256 while packing."),
    ]):
        f = deco(f)
    return f


def _executor_options(f: Any) -> Any:
    f = click.option("--scheduler", metavar="tcp://HOST:8786",
                     help="Build each data folder on a Dask cluster worker (shared storage, "
                          "same paths).")(f)
    return click.option("--workers", "-j", type=workers_type(0), default=None,
                        help="Build this many data folders at once in local processes "
                             "(default: one at a time here; hashing uses every core anyway).")(f)


def _build_pack_options(ws: Workspace, **kw: Any) -> Any:
    """Options given on the command line over those of the last pack, over the defaults."""
    from phonotheque.pack.packer import resolve_options

    given = {
        "max_files": kw["max_files"], "max_bytes": kw["max_bytes"], "layout": kw["layout"],
        "prefix": kw["prefix"], "collection": kw["collection"],
        "piece_length": kw["piece_length"], "version": kw["torrent_version"],
        "trackers": tuple(kw["trackers"]) or None, "webseeds": tuple(kw["webseeds"]) or None,
        "art_dir": kw["art_dir"],
        "art": False if kw["no_art"] else None,
        "rescan_art": True if kw["rescan_art"] else None,
        "check_sha256": False if kw["no_check"] else None,
    }
    return resolve_options(ws, given)


def _print_pack(report: Any) -> None:
    if report.resumed:
        console.print("[yellow]resumed an interrupted pack[/]")
    for name in report.new_folders:
        console.print(f"  new  {name}")
    for old, new in report.rebuilt:
        console.print(f"  [yellow]obsolete[/] {old}" + (f" -> {new}" if new else " (no files left)"))
    if report.art_torrent:
        console.print(f"  art  {report.art_torrent} ({report.art_images} images)")
    console.print(
        f"pack: {report.eligible} eligible files; {len(report.new_folders)} new and "
        f"{len(report.rebuilt)} rebuilt folders, {report.tracks_packed} tracks in "
        f"{report.files_packed} files ({_mb(report.bytes_packed)}) in {report.seconds:.1f}s"
        + (f"; {report.copied} copied (no hard links)" if report.copied else "")
        + (f"; [red]{len(report.rejects)} rejected[/] (see `phono rejects --stage pack`)"
           if report.rejects else "")
    )


def _print_publish(report: Any, ws: Workspace) -> None:
    console.print(
        f"publish: {ws.publish} as of {report.built_at}: {report.tables.get('track', 0)} tracks, "
        f"{report.tables.get('file', 0)} files; torrents.json lists {report.listed} torrents "
        f"({report.current} current, {report.obsolete} obsolete) in {report.seconds:.1f}s"
    )
    if report.database_torrent:
        console.print(f"  metadata torrent {report.database_torrent}")
    if report.unreleased:
        console.print(f"  [yellow]{report.unreleased} packed data torrents are not released yet[/]"
                      " (run `phono release`)")


@command("pack")
@_torrent_option_decorators
@_executor_options
@json_option
@workspace_option
def pack_cmd(ws: Workspace, workers: int | None, scheduler: str | None, as_json: bool,
             **kw: Any) -> None:
    """Put finished files into data folders by popularity band, one torrent each.

    Most popular band first; each folder capped by --max-files and --max-bytes.
    Files are hard-linked from audio/ into torrents/<folder>/. Folders never
    change: new files go into new folders, and a folder that lost files (an
    exclusion) is rebuilt and its old torrent marked obsolete.

    With --scheduler, each folder is linked, checked and hashed by a Dask
    worker (which must see the workspace at the same path); this process
    only plans and writes the catalogue.
    """
    from phonotheque.pack.packer import run_pack

    options = _build_pack_options(ws, **kw)
    with progress_bar("pack", None, unit="B", enabled=not as_json) as advance:
        report = run_pack(ws, options, processes=workers, scheduler=scheduler, progress=advance)
    if as_json:
        emit_json("pack", report)
        return
    _print_pack(report)


@command("publish")
@click.option("--name", default="Phonothèque", show_default=True,
              help="The archive's display name (shown by `phono serve`).")
@click.option("--no-parquet", is_flag=True, help="Skip the Parquet export.")
@click.option("--no-database-torrent", is_flag=True,
              help="Do not make a torrent of metadata.sqlite + parquet/.")
@click.option("--search-tracks", type=click.IntRange(0), default=None,
              help="Text search indexes this many tracks, most listened first "
                   "[default: all, up to 10,000,000]; every table and Parquet stay complete.")
@json_option
@workspace_option
def publish_cmd(ws: Workspace, name: str, no_parquet: bool, no_database_torrent: bool,
                search_tracks: int | None, as_json: bool) -> None:
    """Write publish/: metadata.sqlite, Parquet, AAC metadata, torrents.json, magnets.

    Lists the torrents of released waves (see `phono release`).
    """
    from phonotheque.publish.publisher import PublishOptions, publish

    with progress_bar("publish", None, enabled=not as_json) as advance:
        report = publish(ws, PublishOptions(name=name, parquet=not no_parquet,
                                            database_torrent=not no_database_torrent,
                                            search_tracks=search_tracks),
                         progress=advance)
    if as_json:
        emit_json("publish", report)
        return
    _print_publish(report, ws)


@command("release")
@click.option("--wave-bytes", type=SIZE, default=None,
              help="At most this many bytes of data torrents in the wave (at least one).")
@click.option("--wave-bands", type=click.IntRange(1), default=None,
              help="At most this many popularity bands in the wave.")
@click.option("--no-pack", is_flag=True, help="Do not run `phono pack` first.")
@click.option("--name", default="Phonothèque", show_default=True,
              help="The archive's display name.")
@_executor_options
@json_option
@workspace_option
def release_cmd(ws: Workspace, wave_bytes: int | None, wave_bands: int | None,
                no_pack: bool, name: str, workers: int | None,
                scheduler: str | None, as_json: bool) -> None:
    """Publish the next wave of torrents, most popular bands first.

    Packs first (so folders hit by new exclusions are rebuilt and their old
    torrents marked obsolete), numbers the next unreleased folders with the
    new wave, and regenerates publish/ (torrents.json, magnets, metadata).
    """
    from phonotheque.publish.publisher import PublishOptions
    from phonotheque.publish.waves import ReleaseOptions, release

    options = ReleaseOptions(wave_bytes=wave_bytes, wave_bands=wave_bands, pack=not no_pack,
                             publish=PublishOptions(name=name))
    from phonotheque.pack.packer import folder_executor

    with folder_executor(workers, scheduler) as executor, \
            progress_bar("release", None, unit="B", enabled=not as_json) as advance:
        report = release(ws, options, progress=advance, executor=executor)
    if as_json:
        emit_json("release", report)
        return
    if report.pack is not None:
        _print_pack(report.pack)
    if report.resumed:
        console.print(f"release: finished publishing wave {report.wave} "
                      "(an earlier release was interrupted)")
    elif report.wave is None:
        console.print("release: nothing new to release")
    else:
        console.print(
            f"release: wave {report.wave}: {len(report.released)} data torrents "
            f"({_mb(report.bytes)}), bands {', '.join(map(str, report.bands)) or '-'}; "
            f"{report.remaining} torrents ({_mb(report.remaining_bytes)}) left for later waves"
        )
    for name_ in report.obsoleted:
        console.print(f"  [yellow]obsolete[/] {name_}")
    if report.publish is not None:
        _print_publish(report.publish, ws)


@command("verify")
@click.argument("data_dir", type=click.Path(exists=True, path_type=Path))
@click.option("--against", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="The publish/ folder to check against "
              "(default: publish/ of --workspace, or ./publish).")
@click.option("--workspace", "-w", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Workspace whose publish/ to use.")
@click.option("--rebuild-originals", is_flag=True,
              help="Also rebuild originals from their patches and check original_sha256.")
@click.option("--rebuild-dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Keep the rebuilt originals here.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify_cmd(data_dir: Path, against: Path | None, workspace: Path | None,
               rebuild_originals: bool, rebuild_dir: Path | None, as_json: bool) -> None:
    """Check downloaded DATA_DIR against the published hashes and merkle roots.

    Exit code 0 when every file matched; 4 when something is missing, corrupt,
    unexpected, renamed or obsolete (each named by path).
    """
    import orjson

    from phonotheque.publish.verify import VerifyOptions, verify

    if against is None:
        against = (workspace / "publish") if workspace else Path("publish")
    options = VerifyOptions(against=against, rebuild_originals=rebuild_originals,
                            rebuild_dir=rebuild_dir)
    if as_json:  # stdout is for the JSON document only
        report = verify(data_dir, options)
    else:
        with progress_bar("verify", None, unit="B") as advance:
            report = verify(data_dir, options, progress=advance)
    if as_json:
        click.echo(orjson.dumps({
            "ok": report.ok,
            "files_checked": report.files_checked,
            "files_ok": report.files_ok,
            "bytes_checked": report.bytes_checked,
            "originals_checked": report.originals_checked,
            "originals_ok": report.originals_ok,
            "folders": [f.__dict__ for f in report.folders],
            "problems": [{"path": p.path, "kind": p.kind, "detail": p.detail}
                         for p in report.problems],
        }, option=orjson.OPT_INDENT_2).decode())
    else:
        for f in report.folders:
            if f.reference:
                console.print(f"reference: {f.found_as} is the database checked against "
                              "(its pieces were checked by your BitTorrent client)")
            if f.renamed:
                console.print(f"[yellow]renamed[/]: {f.found_as} is torrent {f.torrent}")
            if f.obsolete:
                console.print(f"[yellow]obsolete[/]: {f.found_as} (torrent {f.torrent}) "
                              f"was replaced by {f.superseded_by or 'nothing'}")
        if report.problems:
            table = Table(title=f"{len(report.problems)} problems")
            for col in ("kind", "path", "detail"):
                table.add_column(col, overflow="fold")
            for p in report.problems:
                table.add_row(p.kind, p.path, p.detail)
            console.print(table)
        # problems, counted as the table lists them: a missing file is never "checked",
        # so "n-1/n files ok" would understate what went wrong
        kinds = {k: len(v) for k, v in sorted(report.by_kind().items())}
        console.print(
            f"verify: {len(report.folders)} torrents, {len(report.problems)} problems"
            + (f" ({', '.join(f'{n} {k}' for k, n in kinds.items())})" if kinds else "")
            + f"; {report.files_checked} files hashed ({_mb(report.bytes_checked)})"
            + (f"; originals {report.originals_ok}/{report.originals_checked} rebuilt"
               if rebuild_originals else "")
            + (" — [green]everything matched[/]" if report.ok else " — [red]MISMATCH[/]")
        )
    if not report.ok:
        sys.exit(4)
