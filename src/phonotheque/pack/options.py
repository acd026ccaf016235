"""Options and report of ``phono pack`` (see :mod:`phonotheque.pack.packer`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from phonotheque.errors import InputError
from phonotheque.model import Reject
from phonotheque.pack.aac import check_identifier
from phonotheque.pack.bands import Caps
from phonotheque.pack.layout import iso, parse_iso

Progress = Callable[..., object]
Layout = Literal["aac", "readable"]


@dataclass(frozen=True)
class PackOptions:
    """How to pack. ``layout``, ``prefix`` and ``collection`` are fixed once torrents exist."""

    max_files: int = 60_000
    max_bytes: int = 100 * 10**9
    layout: Layout = "aac"
    prefix: str = "phonotheque"
    collection: str = "music"
    piece_length: int | None = None
    version: Literal["1", "2", "hybrid"] = "hybrid"
    trackers: tuple[str, ...] = ()
    webseeds: tuple[str, ...] = ()
    art: bool = True
    art_dir: Path | None = None
    rescan_art: bool = False  # look for art of every packed release, not only new ones
    check_sha256: bool = True
    workers: int | None = None
    # Earliest timestamp for a new generation (UTC); None: derived from the catalogue.
    not_before: datetime | None = None

    def __post_init__(self) -> None:
        Caps(self.max_files, self.max_bytes)
        check_identifier(self.prefix, "prefix")
        check_identifier(self.collection, "collection")
        if self.layout not in ("aac", "readable"):
            raise InputError(self.layout, "layout must be 'aac' or 'readable'")

    def to_json(self) -> str:
        d = asdict(self)
        d["art_dir"] = str(self.art_dir) if self.art_dir else None
        d["not_before"] = iso(self.not_before) if self.not_before else None
        d["rescan_art"] = False  # a one-off request, not a setting later runs inherit
        return orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode()

    @classmethod
    def from_json(cls, text: str) -> PackOptions:
        d: dict[str, Any] = orjson.loads(text)
        d["art_dir"] = Path(d["art_dir"]) if d.get("art_dir") else None
        d["not_before"] = parse_iso(d.get("not_before"))
        d["trackers"] = tuple(d.get("trackers") or ())
        d["webseeds"] = tuple(d.get("webseeds") or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class PackReport:
    eligible: int = 0
    new_folders: list[str] = field(default_factory=list)
    rebuilt: list[tuple[str, str | None]] = field(default_factory=list)  # (old, new or None)
    tracks_packed: int = 0  # archived tracks put into folders by this run
    files_packed: int = 0  # files in those folders (tracks and their reconstruction patches)
    bytes_packed: int = 0
    copied: int = 0  # files copied because hard links were not possible
    rejects: list[Reject] = field(default_factory=list)
    art_torrent: str | None = None
    art_images: int = 0
    generation: int | None = None
    resumed: bool = False
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.new_folders or self.rebuilt or self.art_torrent)
