"""The selection and packing options of `phono build`, and how their changes are shown.

Every option defaults to "not given" (None), so the library can tell an option
given on this command line from one kept by an earlier build
(:mod:`phonotheque.build_settings`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from phonotheque.build_settings import BuildSettings, ResolvedSettings
from phonotheque.cli._common import SIZE, console

F = TypeVar("F", bound=Callable[..., Any])

# Setting -> its command-line spelling, for messages.
FLAGS = {"take_all": "--all", "budget_bytes": "--budget", "trackers": "--tracker",
         "webseeds": "--webseed"}


def flag(name: str) -> str:
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def build_settings_options(f: F) -> F:
    """Add the kept build options (each passed as a keyword, None when not given)."""
    for deco in reversed([
        click.option("--all/--no-all", "take_all", default=None,
                     help="Archive every held track (your own collection), ranked by "
                          "listens; --no-all goes back to coverage of listens. Without any "
                          "listen data every held track is taken anyway."),
        click.option("--coverage", type=click.FloatRange(0, 1), default=None,
                     help="Share of matched listens the archive must cover [default: 0.996]."),
        click.option("--priority-threshold", type=float, default=None,
                     help="Take zero-listen tracks without a held file whose secondary "
                          "priority (0..1) reaches this [default: 0.5]."),
        click.option("--original-share", type=click.FloatRange(0, 1), default=None,
                     help="Tracks within this share of listens keep their original file "
                          "[default: 0.5; all when every held track is taken]."),
        click.option("--tail-threshold", type=click.IntRange(0), default=None,
                     help="Instead of --original-share: re-encode tracks with fewer listens."),
        click.option("--budget", "budget_bytes", type=SIZE, default=None,
                     help="Stop selecting at this estimated size (300TB, 1.5GiB, ...)."),
        click.option("--layout", type=click.Choice(["aac", "readable"]), default=None,
                     help="aac: files named by AACID (default); readable: "
                          "Artist/Release/NN Title.ext."),
        click.option("--torrent-version", type=click.Choice(["hybrid", "1", "2"]),
                     default=None, help="BitTorrent version (default hybrid v1+v2)."),
        click.option("--tracker", "trackers", multiple=True,
                     help="Announce URL (repeatable)."),
        click.option("--webseed", "webseeds", multiple=True, help="Web seed URL (repeatable)."),
        click.option("--max-files", type=click.IntRange(1), default=None,
                     help="Files per data folder (default 60000)."),
        click.option("--max-bytes", type=SIZE, default=None,
                     help="Bytes per data folder (default 100GB)."),
    ]):
        f = deco(f)
    return f


def given_settings(kw: dict[str, Any]) -> BuildSettings:
    """The options given on this command line (repeatable ones: None when absent)."""
    values = dict(kw)
    for name in ("trackers", "webseeds"):
        values[name] = tuple(values.get(name) or ()) or None
    return BuildSettings(**values)


def _show(value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, tuple):
        return " ".join(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def print_settings(resolved: ResolvedSettings) -> None:
    """Which kept options this build uses, and which ones it changed."""
    if resolved.kept:
        kept = ", ".join(f"{flag(k)} {_show(v)}" for k, v in sorted(resolved.kept.items()))
        console.print(f"options kept from earlier builds: {kept}")
    for c in resolved.changes:
        console.print(f"[yellow]option changed:[/] {flag(c.name)} {_show(c.old)} -> "
                      f"{_show(c.new)} (kept for later builds)")
