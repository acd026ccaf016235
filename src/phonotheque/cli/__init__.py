"""The ``phono`` command: thin shells over the library, one module per stage.

The CLI is a package rather than the single ``cli.py`` of DESIGN.md because
every stage adds several commands; each stage's commands are module-level
click commands in their own module here, and :data:`COMMANDS` adds them to
the root group in one place. Only this package prints, draws progress bars
and chooses exit codes.
"""

from __future__ import annotations

import click

from phonotheque.cli import (
    audio_cmds,
    build_cmds,
    catalogue_cmds,
    ingest_cmds,
    publish_cmds,
    select_cmds,
    serve_cmds,
    swarm_cmds,
    synth_cmds,
    torrent_cmds,
)
from phonotheque.cli._common import main

# Every top-level command and group of `phono` (sub-commands hang off their group).
# `phono --help` lists them alphabetically, whatever the order here.
COMMANDS: list[click.Command] = [
    catalogue_cmds.init,
    catalogue_cmds.stats,
    catalogue_cmds.compare_cmd,
    catalogue_cmds.rejects,
    catalogue_cmds.exclude,
    catalogue_cmds.gc_cmd,
    build_cmds.build_cmd,
    build_cmds.demo,
    ingest_cmds.ingest_group,
    synth_cmds.synth_cmd,
    select_cmds.select_cmd,
    select_cmds.ledger_cmd,
    select_cmds.coverage_report,
    audio_cmds.audio,
    torrent_cmds.torrent,
    publish_cmds.pack_cmd,
    publish_cmds.publish_cmd,
    publish_cmds.release_cmd,
    publish_cmds.verify_cmd,
    serve_cmds.serve,
    serve_cmds.seed,
    swarm_cmds.health,
    swarm_cmds.adopt,
]

for _command in COMMANDS:
    main.add_command(_command)

__all__ = ["COMMANDS", "main"]
