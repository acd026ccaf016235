"""Sources: one module per kind of input, registered here by name.

Each source yields model records, rejects and checkpoints and never touches
SQLite; :func:`phonotheque.ingest.ingest` runs one and writes what it yields.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from phonotheque.errors import InputError, UnsupportedInput, wrap_os_error
from phonotheque.sources._base import (
    MAX_LINE,
    STAGE,
    CorruptStream,
    Input,
    ReadOptions,
    Source,
    bounded_lines,
    compressed_suffix,
    disk_position,
    open_at,
    open_input,
    open_tar_on_disk,
    open_tar_stream,
    printable,
    unreadable,
    utf8_path,
    without_compression,
)


def _discover() -> dict[str, Source]:
    """Every module of this package that defines ``SOURCE``, by its kind.

    A new kind of input is one new module here: it is registered, detected
    (by its ``score``) and ordered in ``phono build`` without touching another file.
    """
    found: dict[str, Source] = {}
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            source = getattr(importlib.import_module(f"{__name__}.{mod.name}"), "SOURCE", None)
            if source is not None:
                found[source.kind] = source
    return found


# name -> reader; `phono ingest <name>` looks sources up here (registry, not a chain).
SOURCES: dict[str, Source] = _discover()


# Bytes of a file's start passed to every ``Source.score``.
HEADER_BYTES = 65536


def detect(path: Path) -> Source:
    """The source that scores ``path`` highest (see :meth:`Source.score`).

    Raises InputError when no source recognises it.
    """
    header = b""
    if path.is_file():
        try:
            # decompressed if the name says compressed, so content markers are seen
            with open_input(path) as f:
                header = f.read(HEADER_BYTES)
        except CorruptStream:
            header = b""  # the name still decides; the reader reports the damage
        except OSError as exc:
            raise wrap_os_error(exc, path) from exc
    score, best = max((s.score(path, header), s.kind) for s in SOURCES.values())
    if score <= 0:
        raise InputError(path, "cannot tell what kind of source this is; prefix it with kind: "
                               f"({', '.join(f'{k}:' for k in SOURCES)})")
    return SOURCES[best]


def get(kind: str) -> Source:
    """The source registered as ``kind``; raise UnsupportedInput if there is none."""
    try:
        return SOURCES[kind]
    except KeyError:
        raise UnsupportedInput(kind, f"unknown source (known: {', '.join(sorted(SOURCES))})") from None


__all__ = ["MAX_LINE", "SOURCES", "STAGE", "CorruptStream", "Input", "ReadOptions", "Source",
           "bounded_lines", "compressed_suffix", "detect", "disk_position", "get", "open_at",
           "open_input", "open_tar_on_disk", "open_tar_stream", "printable", "unreadable",
           "utf8_path",
           "without_compression"]
