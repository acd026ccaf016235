"""What every command shares: the root group, the workspace option, error mapping, progress."""

from __future__ import annotations

import dataclasses
import functools
import os
import sqlite3
import sys
import threading
import time
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

from phonotheque import __version__, interrupts
from phonotheque.errors import PhonoError, sqlite_damage, wrap_os_error, wrap_sqlite_error
from phonotheque.progress import ProgressEvent, ProgressFn
from phonotheque.workspace import Workspace, require_support

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

#: The most worker processes or threads any ``--workers``/``-j`` takes. A larger count
#: ended in a traceback (Python's process pool keeps it in a C int) or would start more
#: processes than any one machine runs usefully; the biggest servers have a few hundred
#: cores, so no real use is refused.
MAX_WORKERS = 1024


def workers_type(minimum: int = 0) -> click.IntRange:
    """The type of every ``--workers`` option: ``minimum`` .. :data:`MAX_WORKERS`."""
    return click.IntRange(minimum, MAX_WORKERS)



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
        except BaseException as exc:
            if interrupts.is_interruption(exc):
                _interrupted()
            if isinstance(exc, PhonoError):
                _fail(exc)
            if isinstance(exc, sqlite3.DatabaseError):
                # A damaged page of catalogue.sqlite met by a read after the open (which
                # checks only the schema): 'database disk image is malformed' mid-command.
                # The workspace's catalogue is the SQLite file a command reads; named so.
                root = kwargs.get("workspace")
                damage = sqlite_damage(exc, Path(root) / "catalogue.sqlite"
                                       if isinstance(root, Path) else "catalogue.sqlite")
                if damage is not None:
                    _fail(damage)
            if isinstance(exc, sqlite3.OperationalError):
                # Last resort for SQLite errors raised outside Store.transaction().
                storage = wrap_sqlite_error(exc, Path("catalogue.sqlite"))
                if storage is None:
                    raise
                _fail(storage)
            if isinstance(exc, OSError):
                # An OSError no library boundary translated. Reads are wrapped where they
                # happen (the input is named there), so what escapes is an output: classify
                # it as a write, with the same table as everywhere else.
                _fail(wrap_os_error(exc, exc.filename or "phono", writing=True))
            raise

    return wrapper  # type: ignore[return-value]


def _interrupted() -> NoReturn:
    err_console.print("[yellow]interrupted[/]; re-run the same command to resume")
    sys.exit(130)


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

    qualified = f"{group.name} {name}" if group is not None else name

    def deco(f: Callable[..., Any]) -> click.Command:
        make = group.command if group is not None else click.command
        return make(name, **kw)(handle_errors(engine_guard(qualified)(f)))

    return deco


def engine_guard(name: str) -> Callable[[F], F]:
    """Refuse a columnar workspace (``--workspace``) unless ``phono name`` runs on one.

    Which commands do is :data:`phonotheque.workspace.COLUMNAR_COMMANDS`, the one list;
    :func:`command` applies this to every command, so a new command that takes a
    workspace is refused there until it is listed.
    """

    def deco(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            root = kwargs.get("workspace")
            if isinstance(root, Path):
                require_support(root, name)
            return f(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

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

    if show:
        with progress:
            yield on_event
    else:
        with plain_progress(description, unit, scale) as log:
            yield log


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


# -- progress off a terminal ----------------------------------------------------

#: Seconds between two plain progress lines (PHONO_PROGRESS_INTERVAL overrides).
PLAIN_INTERVAL = 10.0


class PlainLog:
    r"""Plain progress lines on stderr for runs without a terminal (cron, nohup, CI).

    Fed the same :class:`ProgressEvent`\ s as the rich bars; prints at most one line
    every ``interval`` seconds (the first after ``interval``), each with the count, the
    rate since the start and, when the total is known, the share and ETA. Quiet runs
    shorter than one interval print nothing.

    Between events, a heartbeat (:meth:`beat`, called by :func:`plain_progress`'s
    thread) prints the last figures again once an interval has passed without a line:
    a job inside one long statement (a 10 M-track merge commits after minutes, a
    publish builds an index for a quarter of a minute) still shows, every interval, that
    it runs and for how long. Events come from the job's threads, beats from another:
    one lock orders them.
    """

    def __init__(self, description: str, unit: str = "", scale: float = 1,
                 interval: float | None = None) -> None:
        if interval is None:
            try:
                interval = float(os.environ.get("PHONO_PROGRESS_INTERVAL", PLAIN_INTERVAL))
            except ValueError:
                interval = PLAIN_INTERVAL
        self.description = description
        self.unit = unit
        self.scale = scale
        self.interval = interval
        self.start = self.last = time.monotonic()
        self.lines = 0
        self.event: ProgressEvent | None = None
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            now = time.monotonic()
            if self.event is not None and event.stage != self.event.stage:
                self.start = now  # `build`: each stage counts (and is timed) from zero
            self.event = event
            if now - self.last >= self.interval:
                self.last = now
                self.print(event, now)

    def beat(self) -> None:
        """Print the last figures again (or, before any event, that the job runs) if no
        line was printed for an interval."""
        with self._lock:
            now = time.monotonic()
            if now - self.last >= self.interval:
                self.last = now
                self.print(self.event, now)

    def line(self, event: ProgressEvent | None, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        if event is None:  # nothing reported yet: the job is in its first step
            return f"{self.description}: elapsed {_duration(elapsed)} - working"
        unit = event.unit or self.unit
        scale, shown_unit = (2**20, "MiB") if unit == "B" else (self.scale, unit)
        done = event.done / scale
        rate = done / elapsed
        parts = [f"{event.stage or self.description}:"]
        if event.total:
            total = event.total / scale
            parts.append(f"{done:,.0f}/{total:,.0f} {shown_unit} "
                         f"({min(event.done / event.total, 1):.0%})")
        else:
            parts.append(f"{done:,.0f} {shown_unit}")
        if elapsed < min(0.5, self.interval):  # a stage that just began: no rate yet
            rate = 0.0
        else:
            parts.append(f"{rate:,.1f} {shown_unit}/s")
        if event.total and rate > 0:
            left = max(event.total / scale - done, 0) / rate
            parts.append(f"ETA {_duration(left)}")
        parts.append(f"elapsed {_duration(elapsed)}")
        counts = ", ".join(f"{k} {v:,.0f}" for k, v in event.counts.items()
                           if k not in ("elapsed",) and isinstance(v, (int, float)))
        if counts:
            parts.append(f"[{counts}]")
        if event.message:
            parts.append(f"- {event.message}")
        return " ".join(parts)

    def print(self, event: ProgressEvent | None, now: float) -> None:
        self.lines += 1
        stamp = time.strftime("%H:%M:%S")
        err_console.print(f"{stamp} {self.line(event, now)}", markup=False, highlight=False,
                          soft_wrap=True)

    def close(self) -> None:
        """A last line with the final figures, if the run was long enough to log at all."""
        with self._lock:
            if self.lines and self.event is not None:
                self.print(self.event, time.monotonic())


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


#: The shortest interval that gets a heartbeat: PHONO_PROGRESS_INTERVAL=0 (a line for
#: every event, which tests use to see each committed part) must not get lines of its own.
MIN_BEAT_INTERVAL = 0.05


@contextmanager
def plain_progress(description: str, unit: str = "", scale: float = 1) -> Iterator[PlainLog]:
    """A :class:`PlainLog` with its heartbeat thread, which writes its last line when the
    job ends."""
    log = PlainLog(description, unit, scale)
    stop = threading.Event()
    beats = None
    if log.interval >= MIN_BEAT_INTERVAL:
        # an interval past what a thread can wait (PHONO_PROGRESS_INTERVAL=inf) means no
        # beat ever comes: wait the longest a thread can, again and again
        wait = min(log.interval, threading.TIMEOUT_MAX)

        def beat() -> None:
            while not stop.wait(wait):
                log.beat()

        beats = threading.Thread(target=beat, name="phono-progress", daemon=True)
        beats.start()
    try:
        yield log
    finally:
        stop.set()
        if beats is not None:
            beats.join()
        log.close()


def progress_on_terminal(enabled: bool = True) -> bool:
    """Whether a rich bar is drawn (stdout a terminal, or PHONO_PROGRESS=1)."""
    return enabled and (console.is_terminal or os.environ.get("PHONO_PROGRESS") == "1")
