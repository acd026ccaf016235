"""Sources: one module per kind of input, registered here by name.

Each source yields model records, rejects and checkpoints and never touches
SQLite; :func:`phonotheque.ingest.ingest` runs one and writes what it yields.
"""

from __future__ import annotations

from phonotheque.errors import UnsupportedInput
from phonotheque.sources import listens, mbdump, musicbrainz, tags
from phonotheque.sources._base import STAGE, Input, ReadOptions, Source, printable

# name -> reader; `phono ingest <name>` looks sources up here (registry, not a chain).
SOURCES: dict[str, Source] = {
    s.kind: s for s in (musicbrainz.SOURCE, mbdump.SOURCE, tags.SOURCE, listens.SOURCE)
}


def get(kind: str) -> Source:
    """The source registered as ``kind``; raise UnsupportedInput if there is none."""
    try:
        return SOURCES[kind]
    except KeyError:
        raise UnsupportedInput(kind, f"unknown source (known: {', '.join(sorted(SOURCES))})") from None


__all__ = ["SOURCES", "STAGE", "Input", "ReadOptions", "Source", "get", "printable"]
