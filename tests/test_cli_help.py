"""Every command explains itself: a command without help text fails this test."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from phonotheque.cli import main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
    return out


ALL = _commands(main)


def test_every_pipeline_command_is_registered() -> None:
    names = {c[0] for c in ALL}
    for required in ("init", "ingest", "stats", "compare", "exclude", "rejects", "select",
                     "ledger", "audio", "pack", "publish", "release", "verify", "torrent",
                     "serve", "seed", "build", "demo", "synth"):
        assert required in names


@pytest.mark.parametrize("path", ALL, ids=[" ".join(c) for c in ALL])
def test_command_has_help(path: tuple[str, ...]) -> None:
    cmd: click.Command = main
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    assert (cmd.help or "").strip(), f"phono {' '.join(path)} has no help text"
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
