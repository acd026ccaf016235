"""On a columnar workspace every command either runs or refuses clearly (exit 2).

`phonotheque.workspace.COLUMNAR_COMMANDS` is the one list of commands that run on a
columnar workspace; every other command that takes a workspace refuses one, naming
what works there, before it opens the catalogue.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from phonotheque.cli import COMMANDS, main
from phonotheque.cli._common import command
from phonotheque.workspace import COLUMNAR_COMMANDS, Workspace

DEMO = Path(str(resources.files("phonotheque") / "demo_data"))

#: How each command that may refuse a columnar workspace is run (``-w WS`` is added).
INVOCATIONS: dict[str, list[str]] = {
    "ingest musicbrainz": ["ingest", "musicbrainz", str(DEMO / "musicbrainz")],
    "ingest mbdump": ["ingest", "mbdump", str(DEMO / "mbdump")],
    "ingest tags": ["ingest", "tags", str(DEMO / "audio" / "freedesktop")],
    "ingest listens": ["ingest", "listens", str(DEMO / "listens.csv")],
    "exclude add": ["exclude", "add", "--isrc", "GBAAA9900303", "--reason", "takedown"],
    "exclude remove": ["exclude", "remove", "isrc", "GBAAA9900303"],
    "select": ["select"],
    "ledger": ["ledger"],
    "audio": ["audio", "--workers", "0"],
    "pack": ["pack"],
    "publish": ["publish"],
    "release": ["release"],
    "gc": ["gc"],
    "demo": ["demo", "--no-health"],
}
#: Commands that take no workspace (audio rebuild reads only its files and audio_file).
NO_WORKSPACE = {"synth", "torrent create", "torrent info", "torrent verify", "audio rebuild"}


def _command_names() -> set[str]:
    names: set[str] = set()
    todo: list[tuple[str, click.Command]] = [(c.name or "", c) for c in COMMANDS]
    while todo:
        name, cmd = todo.pop()
        if isinstance(cmd, click.Group):
            todo += [(f"{name} {sub}", c) for sub, c in cmd.commands.items()]
            if not cmd.invoke_without_command:
                continue  # a group that only holds sub-commands
        names.add(name)
    return names


def test_every_command_is_classified_for_columnar_workspaces() -> None:
    """A new command must be listed as running on a columnar workspace, or be refused here."""
    names = _command_names()
    assert names == COLUMNAR_COMMANDS | set(INVOCATIONS) | NO_WORKSPACE, (
        "classify the new command: COLUMNAR_COMMANDS, INVOCATIONS or NO_WORKSPACE")
    assert not COLUMNAR_COMMANDS & NO_WORKSPACE


def _digest(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.iterdir()) if p.is_file()}


def test_every_command_runs_and_a_new_one_is_refused_naming_what_works(
        tmp_path: Path) -> None:
    """Every command runs on a columnar workspace (`demo` was the last refused: it runs
    since its stages all do). A new command that takes a workspace is refused there until
    it is listed: exit 2 before it opens anything, naming the commands that do run."""
    assert set(INVOCATIONS) <= COLUMNAR_COMMANDS
    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    ran: list[Path] = []

    @command("nosuch")
    @click.option("--workspace", "-w", type=click.Path(path_type=Path))
    def nosuch(workspace: Path) -> None:
        ran.append(workspace)

    before = _digest(ws.root)
    out = CliRunner().invoke(nosuch, ["-w", str(ws.root)])
    assert out.exit_code == 2, (out.output, out.exception)
    assert isinstance(out.exception, SystemExit), out.exception
    assert "phono nosuch: not available on a columnar workspace (catalogue.duckdb) yet" \
        in out.output
    assert "On a columnar workspace use:" in out.output
    for works in COLUMNAR_COMMANDS - {"init"}:
        assert works in out.output, works
    assert "Traceback" not in out.output and not ran
    assert _digest(ws.root) == before  # refused before anything was opened or written
    # a SQLite workspace is not refused
    sqlite_ws = Workspace.create(tmp_path / "sqlite")
    assert CliRunner().invoke(nosuch, ["-w", str(sqlite_ws.root)]).exit_code == 0
    assert ran == [sqlite_ws.root]


def test_a_sqlite_workspace_is_not_refused(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    out = CliRunner().invoke(main, ["ledger", "-w", str(ws.root)])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(main, ["audio", "--workers", "0", "-w", str(ws.root)])
    assert "columnar" not in out.output


@pytest.mark.parametrize(("name", "shown", "why"), [
    (b"ws\xff", "ws\\xff", "UTF-8"),  # DuckDB cannot take a path that is not UTF-8
    (b"ws?1", "ws?1", "'?'"),  # DuckDB 1.4 puts '.wal' before the first '?' of the path
])
def test_a_workspace_path_duckdb_cannot_use_is_refused_before_anything_is_made(
        tmp_path: Path, name: bytes, shown: str, why: str) -> None:
    """Paths DuckDB cannot open (a byte that is not UTF-8: UnicodeEncodeError) or cannot
    write its log beside (a '?': its log is named by putting '.wal' before the '?', so the
    first commit failed with a TransactionException). `phono init --engine duckdb` there
    stopped with a traceback and left a SQLite workspace that later commands used as one;
    converting an existing one did the same. Now both exit 3 before anything is made,
    naming the path (a byte shown as \\xNN) and why; the SQLite engine, which can, still
    makes a workspace there."""
    import os

    new = tmp_path / os.fsdecode(name)
    result = CliRunner().invoke(main, ["init", "--engine", "duckdb", str(new)])
    assert result.exit_code == 3, result.output
    assert shown in result.output and why in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not new.exists()
    assert CliRunner().invoke(main, ["init", str(new)]).exit_code == 0
    result = CliRunner().invoke(main, ["init", "--engine", "duckdb", str(new)])
    assert result.exit_code == 3, result.output
    assert Workspace.open(new).engine == "sqlite"


def test_a_columnar_workspace_that_lost_its_catalogue_duckdb_is_refused(tmp_path: Path) -> None:
    """Its tracks live in catalogue.duckdb; without that file the workspace read as an
    empty SQLite one: `phono stats` counted 0 tracks with exit 0, and an ingest would
    have started a new catalogue beside the lost one. Now every command refuses it
    (exit 3, naming the file), and a workspace made columnar before the engine was
    recorded gets it recorded when it is next opened."""
    import sqlite3

    ws = tmp_path / "ws"
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--engine", "duckdb", str(ws)]).exit_code == 0
    assert runner.invoke(main, ["ingest", "musicbrainz", "-w", str(ws),
                                str(DEMO / "musicbrainz")]).exit_code in (0, 10)
    with sqlite3.connect(ws / "catalogue.sqlite") as con:  # as an older phono left it
        con.execute("DELETE FROM meta WHERE key = 'engine'")
    assert runner.invoke(main, ["stats", "-w", str(ws)]).exit_code == 0  # records it
    kept = ws / "catalogue.duckdb.kept"
    (ws / "catalogue.duckdb").rename(kept)
    for args in (["stats"], ["ingest", "musicbrainz", str(DEMO / "musicbrainz")],
                 ["select"]):
        result = runner.invoke(main, [*args[:2], "-w", str(ws), *args[2:]]
                               if args[0] == "ingest" else [*args, "-w", str(ws)])
        assert result.exit_code == 3, (args, result.output)
        assert "catalogue.duckdb is missing" in result.output
    assert not (ws / "catalogue.duckdb").exists()
    kept.rename(ws / "catalogue.duckdb")
    result = runner.invoke(main, ["stats", "-w", str(ws), "--json"])
    assert result.exit_code == 0 and '"tracks": 0' not in result.output
