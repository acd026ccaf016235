"""The ``phono`` command: thin shells over the library, one module per stage.

The CLI is a package rather than the single ``cli.py`` of DESIGN.md because
every stage adds several commands; each stage's commands live in their own
module here and are registered in :data:`COMMAND_MODULES`. Only this package
prints, draws progress bars and chooses exit codes.
"""

from __future__ import annotations

import importlib

from phonotheque.cli._common import main

# Each module defines ``register(group)``; order is the order of `phono --help`.
COMMAND_MODULES = [
    "phonotheque.cli.catalogue_cmds",
    "phonotheque.cli.build_cmds",
    "phonotheque.cli.ingest_cmds",
    "phonotheque.cli.synth_cmds",
    "phonotheque.cli.select_cmds",
    "phonotheque.cli.audio_cmds",
    "phonotheque.cli.torrent_cmds",
    "phonotheque.cli.publish_cmds",
    "phonotheque.cli.serve_cmds",
    "phonotheque.cli.swarm_cmds",
]

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(main)

__all__ = ["main"]
