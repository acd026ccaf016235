"""`phono health` (scrape the trackers for swarm counts) and `phono adopt` (torrents for volunteers)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson
from rich.markup import escape

from phonotheque.cli._common import SIZE, command, console, progress_bar, workspace_option
from phonotheque.publish.index import read_index
from phonotheque.swarm.adopt import FORMATS, Adoption, AdoptOptions, choose, write
from phonotheque.units import format_size
from phonotheque.workspace import Workspace

if TYPE_CHECKING:
    from phonotheque.swarm.health import HealthReport


def health_lines(report: HealthReport) -> list[str]:
    lines = [
        f"health: {report.torrents} torrents, {report.scraped} scraped from "
        f"{len(report.trackers)} trackers ({report.hashes} info-hashes in {report.seconds:.2f} s)"
    ]
    for t in report.trackers:
        if t.error is None:
            lines.append(f"  [green]ok[/]    {escape(t.url)}: {t.answered}/{t.torrents} torrents "
                         f"in {t.seconds:.2f} s")
        else:
            lines.append(f"  [red]failed[/] {escape(t.url)}: {escape(t.error)} "
                         f"({t.torrents} torrents not scraped there)")
    if report.untracked:
        lines.append(f"  [yellow]{len(report.untracked)} torrents name no tracker[/] (not scraped; "
                     f"no DHT sampling): {escape(', '.join(report.untracked[:5]))}"
                     + (" …" if len(report.untracked) > 5 else ""))
    if report.index_updated:
        lines.append(f"  publish/torrents.json: health of {report.index_updated} torrents updated")
    return lines


def adoption_lines(a: Adoption) -> list[str]:
    lines = [f"adopt: {len(a.chosen)} torrents, {format_size(a.total_size)} of "
             f"{format_size(a.budget)} ({a.candidates} candidates, {a.skipped} too big for "
             "what was left)"]
    for e in a.chosen:
        n = e.get("seeders")
        band = "" if e.get("band") is None else f"band {e['band']:02d}  "
        lines.append(f"  {'?' if n is None else n!s:>3} seeder{'' if n == 1 else 's'}  {band}"
                     f"{format_size(e['data_size']):>9}  {escape(e['display_name'])}")
    return lines


@command("health")
@workspace_option
@click.option("--tracker", "trackers", multiple=True, metavar="URL",
              help="Ask this tracker (udp://, http://, https://) for every torrent instead of "
                   "the trackers each torrent names; repeatable.")
@click.option("--timeout", type=click.FloatRange(0.05, 120), default=3.0, show_default=True,
              help="Seconds to wait for one answer (doubled on each retry).")
@click.option("--retries", type=click.IntRange(0, 10), default=2, show_default=True,
              help="Extra tries per request.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def health(ws: Workspace, trackers: tuple[str, ...], timeout: float, retries: int,
           as_json: bool) -> None:  # fmt: skip
    """Scrape the trackers of every published torrent for seeders, leechers, completed.

    Many info-hashes per request (UDP BEP 15, HTTP BEP 48); each tracker has its own
    deadline, so an unreachable one costs at most that and the others are still
    recorded. Results go to the catalogue and publish/torrents.json. Exit status 10
    when some tracker could not be scraped.
    """
    # Imported here, not with the module: the scrapers' HTTP client and torrent reader
    # would slow every other `phono` command's start.
    from phonotheque.swarm.health import HealthOptions, check
    from phonotheque.swarm.scrape import ScrapeOptions

    deadline = max(10.0, timeout * (2 ** (retries + 1)))
    options = HealthOptions(trackers=trackers, scrape=ScrapeOptions(timeout, retries, deadline))
    with progress_bar("scraping", None, unit="hashes", enabled=not as_json) as advance:
        report = check(ws, options, progress=advance)
    if as_json:
        sys.stdout.write(orjson.dumps({
            **{k: v for k, v in report.__dict__.items() if k != "trackers"},
            "trackers": [t.__dict__ for t in report.trackers],
        }, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for line in health_lines(report):
            console.print(line, highlight=False, soft_wrap=True)
    if any(t.error for t in report.trackers):
        sys.exit(10)


@command("adopt")
@click.option("--workspace", "-w", type=click.Path(file_okay=False, path_type=Path),
              default=lambda: os.environ.get("PHONO_WORKSPACE", "."),
              show_default="$PHONO_WORKSPACE or .", help="Workspace folder.")
@click.option("--publish", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A published folder (torrents.json, torrents/) instead of WORKSPACE/publish, "
                   "e.g. a volunteer's copy.")
@click.option("--budget", type=SIZE, required=True,
              help="Space you can give, e.g. 2TB or 500GiB.")
@click.option("--max-seeders", type=click.IntRange(0), default=None,
              help="Only torrents with at most this many seeders.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Write magnets (text), .torrent files (a folder) or a zip to -o.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Where to write --format (default: adopt.txt, adopt/ or adopt.zip).")
@click.option("--json", "as_json", is_flag=True, help="Print the choice as JSON.")
def adopt(workspace: Path, publish: Path | None, budget: int, max_seeders: int | None, fmt: str | None,
          output: Path | None, as_json: bool) -> None:  # fmt: skip
    """The current torrents that most need seeders and fit BUDGET.

    Fewest seeders first; among equals the most listened band first. Reads
    publish/torrents.json (run `phono health` first for fresh counts); obsolete
    torrents are never offered.
    """
    folder = publish or Path(workspace) / "publish"
    adoption = choose(read_index(folder), AdoptOptions(budget, max_seeders))
    if as_json:
        sys.stdout.write(orjson.dumps(adoption.as_dict(), option=orjson.OPT_INDENT_2).decode()
                         + "\n")
    else:
        for line in adoption_lines(adoption):
            console.print(line, highlight=False, soft_wrap=True)
    if fmt is not None:
        default = {"magnets": "adopt.txt", "torrents": "adopt", "zip": "adopt.zip"}[fmt]
        written = write(adoption, folder, fmt, output or Path(default))
        where = output or Path(default)
        (sys.stderr if as_json else sys.stdout).write(
            f"wrote {where} ({len(written)} files)\n")
