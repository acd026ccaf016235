"""CLI commands are module-level click commands: importable and runnable on their own."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import click
import orjson
from click.testing import CliRunner

import phonotheque.cli
from phonotheque.cli import COMMANDS, main
from phonotheque.cli.catalogue_cmds import exclude, exclude_add, init, stats
from phonotheque.cli.synth_cmds import synth_cmd


def test_commands_list_is_the_one_place_top_level_commands_come_from() -> None:
    assert all(isinstance(c, click.Command) for c in COMMANDS)
    assert len({c.name for c in COMMANDS}) == len(COMMANDS)
    assert {c.name: c for c in COMMANDS} == main.commands


def test_every_command_defined_in_the_cli_package_is_reachable() -> None:
    """A module-level command that is neither in COMMANDS nor in a group would be dead."""
    reachable: set[int] = set()
    todo: list[click.Command] = list(COMMANDS)
    while todo:
        cmd = todo.pop()
        reachable.add(id(cmd))
        if isinstance(cmd, click.Group):
            todo += cmd.commands.values()
    for info in pkgutil.iter_modules(phonotheque.cli.__path__, "phonotheque.cli."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, click.Command) and value is not main:
                assert id(value) in reachable, f"{info.name}.{name} is not registered"


def test_imported_commands_run_alone(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(init, [str(tmp_path / "ws")])
    assert made.exit_code == 0, made.output
    assert (tmp_path / "ws" / "catalogue.sqlite").is_file()

    counted = runner.invoke(stats, ["--json", "-w", str(tmp_path / "ws")])
    assert counted.exit_code == 0, counted.output
    assert orjson.loads(counted.output)["tracks"] == 0


def test_imported_commands_keep_their_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(stats, ["-w", str(tmp_path / "nowhere")])
    assert missing.exit_code == 3  # WorkspaceError, mapped by handle_errors
    assert "not a workspace" in missing.output

    runner.invoke(init, [str(tmp_path / "ws")])
    usage = runner.invoke(exclude_add, ["--reason", "x", "-w", str(tmp_path / "ws")])
    assert usage.exit_code == 2 and "exactly one of" in usage.output
    assert exclude.commands["add"] is exclude_add

    both = runner.invoke(synth_cmd, ["--out", str(tmp_path / "s")])
    assert both.exit_code == 2 and "exactly one of --tracks, --releases" in both.output
