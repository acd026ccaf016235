"""Cutting the archive into data folders: by popularity band, capped by files and bytes.

Pure functions over plain records, so the plan is easy to test and depends only
on the catalogue. Folders are immutable once packed: new files always open new
folders, and a folder only changes by being rebuilt (see :mod:`.packer`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from phonotheque.errors import InputError


@dataclass(frozen=True, slots=True)
class Caps:
    max_files: int = 60_000
    max_bytes: int = 100 * 10**9

    def __post_init__(self) -> None:
        if self.max_files < 1:
            raise InputError(self.max_files, "--max-files must be at least 1")
        if self.max_bytes < 1:
            raise InputError(self.max_bytes, "--max-bytes must be at least 1")


@dataclass(frozen=True, slots=True)
class Member:
    """One archived track as the planner sees it: a file, maybe with its patch."""

    audio_file_id: int
    track_id: int
    band: int
    rank: int
    nfiles: int  # 1, or 2 with a reconstruction patch
    nbytes: int


def chunk_band(members: Iterable[Member], caps: Caps) -> Iterator[list[Member]]:
    """Consecutive runs of ``members`` (already in rank order) that fit ``caps``.

    A single member bigger than ``max_bytes`` gets a folder of its own rather
    than being refused: the cap is a target for downloaders, not a hard limit.
    """
    current: list[Member] = []
    files = size = 0
    for m in members:
        if current and (files + m.nfiles > caps.max_files or size + m.nbytes > caps.max_bytes):
            yield current
            current, files, size = [], 0, 0
        current.append(m)
        files += m.nfiles
        size += m.nbytes
    if current:
        yield current


def plan_folders(members: Iterable[Member], caps: Caps) -> list[tuple[int, list[Member]]]:
    """Group ``members`` (sorted by band, rank) into ``(band, members)`` folders, most popular first."""
    out: list[tuple[int, list[Member]]] = []
    band: int | None = None
    run: list[Member] = []
    for m in members:
        if band is not None and m.band != band:
            out.extend((band, c) for c in chunk_band(run, caps))
            run = []
        if band is not None and m.band < band:
            raise InputError(m.track_id, "pack: members are not sorted by band")
        band = m.band
        run.append(m)
    if band is not None:
        out.extend((band, c) for c in chunk_band(run, caps))
    return out

