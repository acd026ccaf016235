"""``phono torrent``: create, inspect and verify BitTorrent files (v1, v2, hybrid)."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import click
import orjson
from rich.markup import escape
from rich.table import Table

from phonotheque.atomic import write_bytes
from phonotheque.cli._common import (
    command,
    console,
    err_console,
    progress_bar,
    workers_type,
)
from phonotheque.errors import IntegrityError
from phonotheque.progress import Meter
from phonotheque.torrent import (
    TorrentInfo,
    TorrentOptions,
    content_size,
    create_torrent,
    read_torrent,
    verify_torrent,
)

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _size(text: str) -> int:
    """``262144``, ``256k``, ``256KiB``, ``4M``, ``4MiB`` -> bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmg]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not m:
        raise click.BadParameter(f"{text!r} is not a size like 262144, 256KiB or 4MiB")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB" if n >= 1 << 20 else f"{n:,} B"


def _as_dict(info: TorrentInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "version": info.version,
        "infohash_v1": info.infohash_v1,
        "infohash_v2": info.infohash_v2,
        "magnet": info.magnet(),
        "piece_length": info.piece_length,
        "pieces": info.num_pieces,
        "total_size": info.total_size,
        "private": info.private,
        "trackers": list(info.trackers),
        "webseeds": list(info.webseeds),
        "comment": info.comment,
        "created_by": info.created_by,
        "creation_date": info.creation_date,
        "files": [
            {
                "path": f.path,
                "size": f.size,
                "pieces_root": f.pieces_root.hex() if f.pieces_root else None,
            }
            for f in info.data_files
        ],
    }


def _print_info(info: TorrentInfo, max_files: int) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [
        ("name", info.name),
        ("version", info.version),
        ("infohash v1", info.infohash_v1 or "-"),
        ("infohash v2", info.infohash_v2 or "-"),
        ("size", f"{_mib(info.total_size)} in {len(info.data_files)} files"),
        ("pieces", f"{info.num_pieces} x {_mib(info.piece_length)}"),
        ("magnet", info.magnet()),
    ]
    rows += [("tracker", t) for t in info.trackers]
    rows += [("webseed", w) for w in info.webseeds]
    if info.comment:
        rows.append(("comment", info.comment))
    if info.private:
        rows.append(("private", "yes"))
    for k, v in rows:
        table.add_row(k, escape(v))
    console.print(table)
    files = Table(title=None)
    files.add_column("size", justify="right")
    files.add_column("path", overflow="fold")
    shown = info.data_files[:max_files] if max_files else info.data_files
    for f in shown:
        files.add_row(f"{f.size:,}", escape(f.path))
    console.print(files)
    if len(shown) < len(info.data_files):
        console.print(f"... and {len(info.data_files) - len(shown)} more files (--all)")


@click.group("torrent")
def torrent() -> None:
    """Create, inspect and verify .torrent files (BitTorrent v1, v2 and hybrid)."""


@command("create", group=torrent)
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .torrent to write.",
)
@click.option(
    "--piece-length",
    "piece_length",
    help="Piece length, e.g. 262144, 256KiB, 4MiB (default: libtorrent's choice for the size).",
)
@click.option(
    "--version",
    "version",
    type=click.Choice(["1", "2", "hybrid"]),
    default="hybrid",
    show_default=True,
    help="BitTorrent metainfo version.",
)
@click.option("--name", help="Torrent name (default: the file or folder name).")
@click.option("--tracker", "trackers", multiple=True, help="Announce URL (repeat for backups).")
@click.option("--webseed", "webseeds", multiple=True, help="Web seed URL (BEP 19; repeatable).")
@click.option("--comment", help="Free-text comment.")
@click.option(
    "--no-date", is_flag=True, help="Write no creation date (byte-reproducible file)."
)
@click.option("--private", is_flag=True, help="Set the private flag (changes the infohash).")
@click.option("--workers", type=workers_type(1),
              help="Hashing threads (default: every core).")
def create(
    path: Path,
    output: Path,
    piece_length: str | None,
    version: str,
    name: str | None,
    trackers: tuple[str, ...],
    webseeds: tuple[str, ...],
    comment: str | None,
    no_date: bool,
    private: bool,
    workers: int | None,
) -> None:
    """Hash PATH (a file or folder) into a reproducible torrent."""
    options = TorrentOptions(
        version=version,  # type: ignore[arg-type]
        piece_length=_size(piece_length) if piece_length else None,
        name=name,
        trackers=trackers,
        webseeds=webseeds,
        comment=comment,
        creation_date=None if no_date else int(time.time()),
        private=private,
        workers=workers,
        processes=True,  # `phono` is import-safe for worker processes
    )
    total = content_size(path)
    with progress_bar("hashing", total / (1 << 20), unit="MiB", scale=1 << 20) as show:
        # the engine reports bytes hashed, as torf does; a Meter makes events of them
        info = create_torrent(path, options, progress=Meter(show, "hashing", "B").advance)
    write_bytes(output, info.metainfo)
    console.print(
        f"wrote {escape(str(output))}: {info.version}, {_mib(info.total_size)}, "
        f"{len(info.data_files)} files, pieces of {_mib(info.piece_length)}"
    )
    if info.infohash_v1:
        console.print(f"infohash v1 {info.infohash_v1}")
    if info.infohash_v2:
        console.print(f"infohash v2 {info.infohash_v2}")
    console.print(escape(info.magnet()), soft_wrap=True)


@command("info", group=torrent)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--all", "all_files", is_flag=True, help="List every file (default: the first 50)."
)
def info_cmd(file: Path, as_json: bool, all_files: bool) -> None:
    """Show a torrent's name, files, sizes, piece length, infohashes and magnet link."""
    info = read_torrent(file)
    if as_json:
        click.echo(orjson.dumps(_as_dict(info), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_info(info, 0 if all_files else 50)


@command("verify", group=torrent)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def verify(file: Path, data_dir: Path, as_json: bool) -> None:
    """Check the data in DATA_DIR against torrent FILE; exit 0 only if everything matches.

    DATA_DIR is where a client saved the torrent (holding its file or
    folder), or the torrent's folder itself. Checks v1 pieces and, for v2
    and hybrid torrents, every file's merkle root.
    """
    info = read_torrent(file)
    with progress_bar("verifying", info.total_size / (1 << 20), unit="MiB", scale=1 << 20,
                      enabled=not as_json) as show:
        report = verify_torrent(info, data_dir, progress=Meter(show, "verifying", "B").advance)
    problems = [
        (kind, path)
        for kind, paths in (
            ("missing", report.missing),
            ("truncated", report.truncated),
            ("oversized", report.oversized),
            ("corrupt", report.corrupt),
            ("unexpected", report.extra),
        )
        for path in paths
    ]
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "ok": report.ok,
                    "root": str(report.root),
                    "files_checked": report.files_checked,
                    "bytes_checked": report.bytes_checked,
                    "bad_pieces": report.bad_pieces,
                    "problems": [{"kind": k, "path": p} for k, p in problems],
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
    else:
        if not report.root.exists():
            # A renamed or misplaced folder: one line, not one per file.
            console.print(
                f"[red]{'missing':>10}[/] {escape(str(report.root))} "
                f"(all {len(report.missing)} files of the torrent)",
                highlight=False,
            )
        else:
            for kind, path in problems:
                console.print(f"[red]{kind:>10}[/] {escape(path)}", highlight=False)
        n = len(problems)
        verdict = "[green]OK[/]" if report.ok else f"[bold red]{n} problem{'s' * (n != 1)}[/]"
        console.print(
            f"{verdict}: {report.files_checked} files, {_mib(report.bytes_checked)} "
            f"under {escape(str(report.root))}"
            + (f", {report.bad_pieces} bad pieces" if report.bad_pieces else "")
        )
    if not report.ok:
        if not as_json:
            err_console.print(f"[bold red]error:[/] {escape(str(file))}: data does not match")
        sys.exit(IntegrityError.exit_code)
