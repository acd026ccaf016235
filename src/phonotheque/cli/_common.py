"""What every command shares: the root group, the workspace option, error mapping, progress."""

from __future__ import annotations

import dataclasses
import functools
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from phonotheque import __version__
from phonotheque.errors import PhonoError, wrap_os_error, wrap_sqlite_error
from phonotheque.progress import ProgressEvent, ProgressFn
from phonotheque.workspace import Workspace

#: Width of output that is not a terminal (a pipe, a file, cron's mail): wide enough that
#: no table row or magnet link is wrapped or cut (rich would use 80 columns).
PIPE_WIDTH = 4096


def _console(stderr: bool = False) -> Console:
    """A console for stdout or stderr: the terminal's width on a terminal; off a
    terminal full-width lines, never wrapped, so `phono ledger | grep` and
    `phono torrent info | cut` see one row per line. (COLUMNS is not followed off a
    terminal: shells and test runners export a stale 80 there.)"""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)


console = _console()
err_console = _console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phono")
def main() -> None:
    """Phonothèque: build a lawful, publicly distributable music preservation archive.

    A workspace folder is one archive: catalogue.sqlite plus audio/, torrents/
    and publish/. Most commands take --workspace (default: $PHONO_WORKSPACE or
    the current folder). With SOURCE_DATE_EPOCH set, every timestamp phono
    records is that time (reproducible builds).
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        from phonotheque import clock

        try:
            clock.freeze_epoch(int(epoch))
        except ValueError:
            raise click.BadParameter(f"SOURCE_DATE_EPOCH={epoch!r} is not an integer") from None


class SizeType(click.ParamType):
    """A byte size option: 300TB, 1.5GiB, 750MB or a plain number of bytes."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        from phonotheque.units import parse_size

        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except PhonoError as exc:
            self.fail(str(exc), param, ctx)


SIZE = SizeType()


def workspace_option(f: F) -> F:
    """Add ``--workspace/-w`` and pass an opened :class:`Workspace` as ``ws``."""

    @click.option(
        "--workspace",
        "-w",
        "workspace",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("PHONO_WORKSPACE", "."),
        show_default="$PHONO_WORKSPACE or .",
        help="Workspace folder.",
    )
    @functools.wraps(f)
    def wrapper(*args: Any, workspace: Path, **kwargs: Any) -> Any:
        ws = Workspace.open(workspace)
        return f(*args, ws=ws, **kwargs)

    return wrapper  # type: ignore[return-value]


def handle_errors(f: F) -> F:
    """Turn library errors into a one-line message and the error's exit code."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except PhonoError as exc:
            _fail(exc)
        except sqlite3.OperationalError as exc:
            # Last resort for SQLite errors raised outside Store.transaction().
            storage = wrap_sqlite_error(exc, Path("catalogue.sqlite"))
            if storage is None:
                raise
            _fail(storage)
        except OSError as exc:
            # An OSError no library boundary translated. Reads are wrapped where they
            # happen (the input is named there), so what escapes is an output: classify
            # it as a write, with the same table as everywhere else.
            _fail(wrap_os_error(exc, exc.filename or "phono", writing=True))
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]; re-run the same command to resume")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _fail(exc: PhonoError) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    sys.exit(exc.exit_code)


def command(
    name: str, group: click.Group | None = None, **kw: Any
) -> Callable[[Callable[..., Any]], click.Command]:
    """A module-level click command ``name`` with our error handling applied underneath.

    Top-level commands are added to ``phono`` by :data:`phonotheque.cli.COMMANDS`;
    a sub-command names its ``group`` (itself a module-level ``click.group``).
    The result is an ordinary :class:`click.Command`: tests can import it and
    invoke it with ``CliRunner`` on its own.
    """

    def deco(f: Callable[..., Any]) -> click.Command:
        make = group.command if group is not None else click.command
        return make(name, **kw)(handle_errors(f))

    return deco


@contextmanager
def progress_bar(description: str, total: float | None, unit: str = "rows",
                 scale: float = 1, enabled: bool = True) -> Iterator[ProgressFn]:
    r"""A rich progress bar fed by a library job's :class:`ProgressEvent`\ s.

    Shows count, rate (per second) and ETA; the event's message follows the
    description. ``scale`` divides the event's figures (bytes shown as MiB: 2**20).
    Quiet when stdout is not a terminal unless PHONO_PROGRESS=1 (tests and logs
    stay readable).
    """
    show = enabled and (console.is_terminal or os.environ.get("PHONO_PROGRESS") == "1")
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
        transient=False,
    )
    task = progress.add_task(description, total=total, rate="")

    def on_event(event: ProgressEvent) -> None:
        if event.total is not None:
            progress.update(task, total=event.total / scale)
        progress.update(task, completed=event.done / scale,
                        description=f"{description} {event.message}".strip())
        t = progress.tasks[task]
        speed = t.finished_speed or t.speed
        progress.update(task, rate=f"{speed:,.0f} {unit}/s" if speed else "")

    with progress:
        yield on_event


# -- --json: one shape for every stage command (docs/cli.md) -------------------

#: Version of the ``--json`` document; raised when a field changes meaning or goes away.
JSON_SCHEMA = 1


def json_option(f: F) -> F:
    """Add ``--json`` (passed as ``as_json``) to a stage command."""
    return click.option(
        "--json", "as_json", is_flag=True,
        help="Print one JSON document on stdout instead of tables "
             "({command, schema, exit_code, problems, report}; see docs/cli.md).",
    )(f)  # type: ignore[return-value]


def _json_default(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def emit_json(command: str, report: object, exit_code: int = 0,
              problems: str = "") -> None:
    """Print the ``--json`` document of a finished stage command and leave with ``exit_code``.

    ``report`` is the library's own report (a dataclass: its fields, nested) or a
    list of them; ``problems`` says in words why ``exit_code`` is 10, else "".
    """
    doc = {"command": command, "schema": JSON_SCHEMA, "exit_code": exit_code,
           "problems": problems, "report": report}
    click.echo(orjson.dumps(doc, default=_json_default,
                            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
                            | orjson.OPT_PASSTHROUGH_DATACLASS).decode())
    if exit_code:
        sys.exit(exit_code)
