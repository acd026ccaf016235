"""`phono serve` (search page + JSON API) and `phono seed` (seed the published torrents)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from phonotheque.cli._common import SIZE, command, console
from phonotheque.errors import wrap_os_error
from phonotheque.workspace import CATALOGUE, Workspace

if TYPE_CHECKING:
    from phonotheque.serve.seeder import SeedChange, TorrentStatus


def _root(workspace: Path | None) -> Path:
    return Path(workspace or os.environ.get("PHONO_WORKSPACE", "."))


_workspace = click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Workspace folder (default: $PHONO_WORKSPACE or .); only its publish/ and torrents/ are used.",
)


def _rate(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def _table(rows: list[TorrentStatus], listen: str) -> Table:
    table = Table(title=f"seeding on {listen}  (Ctrl-C to stop)", title_justify="left")
    table.add_column("torrent", overflow="fold")
    table.add_column("state")
    table.add_column("peers", justify="right")
    table.add_column("upload", justify="right")
    table.add_column("uploaded", justify="right")
    for s in rows:
        state = f"[red]{s.state}: {s.error}[/]" if s.error else s.state
        if s.state not in ("seeding", "error"):
            state = f"[yellow]{s.state}[/] {s.progress:.0%}"
        table.add_row(s.name, state, str(s.peers), f"{_rate(s.upload_rate)}/s", _rate(s.uploaded))
    table.add_section()
    table.add_row(
        f"[bold]{len(rows)} torrents[/]", "", str(sum(s.peers for s in rows)),
        f"[bold]{_rate(sum(s.upload_rate for s in rows))}/s[/]",
        _rate(sum(s.uploaded for s in rows)),
    )  # fmt: skip
    return table


_CHANGE = {
    "added": "now seeding {name} (new publish)",
    "removed": "stopped seeding {name} (no longer published; its payload stays for phono gc)",
    "missing": "[yellow]missing payload[/]: {name} (expected {detail}); not seeded",
    "unusable": "[red]not seeded[/]: {name}: {detail}",
}


def _change_line(change: SeedChange) -> str:
    return _CHANGE[change.kind].format(name=change.name, detail=change.detail)


@command("serve")
@_workspace
@click.option("--publish", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Published folder holding metadata.sqlite (default: WORKSPACE/publish).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port (0: any free port).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes sharing the socket.")
@click.option("--cache-mb", type=click.IntRange(0, 1 << 20), default=64, show_default=True,
              help="MiB of answers cached per worker, measured as JSON (0: none).")
def serve(workspace: Path | None, publish: Path | None, host: str, port: int,
          workers: int, cache_mb: int) -> None:  # fmt: skip
    """Serve the search page and JSON API over the published metadata (read-only)."""
    from phonotheque.serve.app import ServeOptions
    from phonotheque.serve.server import run

    folder = publish or _root(workspace) / "publish"
    options = ServeOptions(folder, host=host, port=port, workers=workers,
                           cache_bytes=cache_mb << 20)  # fmt: skip

    def ready(url: str) -> None:
        console.print(f"search page: [bold]{url}[/]   JSON API: {url}api   (Ctrl-C to stop)",
                      highlight=False, soft_wrap=True)  # fmt: skip
        console.file.flush()  # the URL must show now, even when stdout is a pipe

    run(options, on_ready=ready)
    console.print("stopped")


@command("seed")
@_workspace
@click.option("--publish", type=click.Path(file_okay=False, path_type=Path),
              help="Published folder whose torrents.json lists the torrents (default: WORKSPACE/publish).")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path),
              help="Folder holding the .torrent files and payload folders (default: WORKSPACE/torrents); "
                   "with --adopt, where the adopted torrents are downloaded.")
@click.option("--listen", default="0.0.0.0:6881", show_default=True,
              help="host:port to accept peers on; a port in use is an error (exit 2), "
                   "port 0 takes any free port.")
@click.option("--interface", help="Bind to this network interface or address only.")
@click.option("--dht/--no-dht", default=True, show_default=True, help="Use the DHT.")
@click.option("--lsd/--no-lsd", default=True, show_default=True,
              help="Local service discovery (multicast on the LAN).")
@click.option("--utp/--no-utp", default=True, show_default=True, help="Allow uTP as well as TCP.")
@click.option("--upnp/--no-upnp", default=False, show_default=True,
              help="Ask the router to forward the port (UPnP / NAT-PMP).")
@click.option("--recheck", is_flag=True,
              help="Hash all payload before seeding (default: hash each piece when first asked).")
@click.option("--adopt", "adopt_budget", type=SIZE, metavar="SIZE",
              help="Volunteer: download the torrents that most need seeders within SIZE "
                   "(as `phono adopt`), then seed them.")
@click.option("--max-seeders", type=click.IntRange(0), default=None,
              help="With --adopt: only torrents with at most this many seeders.")
def seed(workspace: Path | None, publish: Path | None, data: Path | None, listen: str,
         interface: str | None, dht: bool, lsd: bool, utp: bool, upnp: bool,
         recheck: bool, adopt_budget: int | None, max_seeders: int | None) -> None:  # fmt: skip
    """Seed every published torrent (data, metadata, art) until Ctrl-C.

    A new publish (e.g. `phono release` after a takedown) is followed while running:
    torrents no longer published stop being seeded, new ones start, each change printed.
    On a workspace, what is seeded is recorded in its catalogue (currently_seeding in
    torrents.json, and upload totals per torrent). With --adopt, download and seed the
    torrents that most need seeders instead.
    """
    # Imported here, not with the module: the seeder loads libtorrent and the swarm
    # modules an HTTP client, which every other `phono` command would pay for.
    from rich.live import Live

    from phonotheque.cli.swarm_cmds import adoption_lines
    from phonotheque.publish.index import read_index
    from phonotheque.serve.seed_follow import FOLLOW_EVERY, PublishFollower
    from phonotheque.serve.seeder import Seeder, SeedOptions, find_published
    from phonotheque.swarm.adopt import AdoptOptions, choose
    from phonotheque.swarm.seeding import RECORD_EVERY, SeedingLog, adopted_items

    root = _root(workspace)
    publish_dir = publish or root / "publish"
    options = SeedOptions(listen=listen, interface=interface, dht=dht, lsd=lsd, utp=utp,
                          upnp=upnp, recheck=recheck, fetch=adopt_budget is not None)
    log = None
    torrents = data or root / "torrents"
    if adopt_budget is not None:
        adoption = choose(read_index(publish_dir), AdoptOptions(adopt_budget, max_seeders))
        for line in adoption_lines(adoption):
            console.print(line, highlight=False, soft_wrap=True)
        target = data or root / "torrents"
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise wrap_os_error(exc, target) from exc
        items = adopted_items(adoption, publish_dir, target)
    else:
        items = find_published(torrents, publish_dir)
        if (root / CATALOGUE).is_file():
            log = SeedingLog(Workspace.open(root), publish_dir)
    if not items:
        raise click.ClickException(f"{data or root / 'torrents'}: no torrents to seed")
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Seeder(items, options) as seeder:
            for m in seeder.missing:
                console.print(f"[yellow]missing payload[/]: {m.item.torrent.name} "
                              f"(expected {m.expected}); not seeded", highlight=False,
                              soft_wrap=True)
            host = listen.rsplit(":", 1)[0]
            where = f"{interface or host}:{seeder.listen_port}"
            missing = {m.item.torrent for m in seeder.missing}
            seeded = [i for i in items if i.torrent not in missing]
            companions = sum(i.companion for i in seeded)
            verb = "downloading and seeding" if adopt_budget is not None else "seeding"
            console.print(f"{verb} {len(seeded) - companions} torrents"
                          + (f" and {companions} v1 companions" if companions else "")
                          + f" on {where}", highlight=False)
            if log is not None:
                log.start(seeder.status())
            console.file.flush()
            last = time.monotonic()
            follower = None if adopt_budget is not None else \
                PublishFollower(seeder, torrents, publish_dir)  # fmt: skip
            try:
                with Live(_table(seeder.status(), where), console=console,
                          refresh_per_second=2, auto_refresh=False) as live:  # fmt: skip
                    while not stop.wait(FOLLOW_EVERY):
                        rows = seeder.status()
                        changes = follower.poll() if follower is not None else []
                        for change in changes:
                            console.print(_change_line(change), highlight=False, soft_wrap=True)
                        if changes:
                            console.file.flush()
                            if log is not None:
                                log.follow(rows, seeder.status())
                        live.update(_table(seeder.status(), where), refresh=True)
                        if log is not None and time.monotonic() - last > RECORD_EVERY:
                            log.record(seeder.status())
                            last = time.monotonic()
                if not console.is_terminal:
                    console.line()  # Live leaves its last frame unterminated off a terminal
                final = seeder.status()
            finally:
                if log is not None:
                    log.record(seeder.status(), stopped=True)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    console.print(
        f"stopped: {len(final)} torrents, {_rate(sum(s.uploaded for s in final))} uploaded",
        highlight=False,
    )
