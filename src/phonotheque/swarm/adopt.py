"""``phono adopt``: "I can spare N TB — which torrents need me most?"

Works on the public index (``torrents.json`` entries), so the command, the web
form and ``/api/adopt`` give the same answer from the same file. Candidates are the
current torrents (never obsolete ones, never embargoed or known-broken ones), at
most ``max_seeders`` seeders if given. They are ranked by fewest seeders first; among
equals, the most listened band first (band 1 before band 2; torrents without a band —
metadata, art — after the bands), then by name. Walking that order, a torrent is
taken when it still fits the budget and skipped otherwise, so a smaller torrent
further down can use the space a large one could not.

A torrent never scraped (``seeders`` null) ranks as having none: nobody has counted
anyone seeding it.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phonotheque.atomic import write_bytes
from phonotheque.errors import InputError, wrap_os_error

Entry = Mapping[str, Any]
FORMATS = ("magnets", "torrents", "zip")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same choice gives the same zip


@dataclass(frozen=True)
class AdoptOptions:
    budget: int  # bytes of payload the volunteer can hold
    max_seeders: int | None = None  # only torrents with at most this many seeders

    def __post_init__(self) -> None:
        if self.budget < 0:
            raise InputError(self.budget, "budget must not be negative")
        if self.max_seeders is not None and self.max_seeders < 0:
            raise InputError(self.max_seeders, "--max-seeders must not be negative")


@dataclass
class Adoption:
    """The torrents chosen, in priority order."""

    budget: int
    chosen: list[dict[str, Any]] = field(default_factory=list)
    candidates: int = 0  # current torrents within max_seeders
    skipped: int = 0  # candidates that did not fit the budget

    @property
    def total_size(self) -> int:
        return sum(int(e["data_size"]) for e in self.chosen)

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget, "total_size": self.total_size, "count": len(self.chosen),
            "candidates": self.candidates, "skipped": self.skipped,
            "torrents": [{k: e.get(k) for k in _PUBLIC_KEYS} for e in self.chosen],
        }  # fmt: skip


_PUBLIC_KEYS = (
    "display_name", "btih", "infohash_v2", "magnet_link", "torrent", "data_size", "band", "kind",
    "seeders", "leechers", "stats_scraped_at",
)  # fmt: skip


def _count(v: object) -> int:
    """A seeder count as ranked: anything but a non-negative integer (null: never
    scraped) ranks as none."""
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def _rank(e: Entry) -> tuple[int, float, str]:
    band = e.get("band")
    band_key = float(band) if isinstance(band, int) and not isinstance(band, bool) else float("inf")
    return (_count(e.get("seeders")), band_key, str(e.get("display_name")))


def choose(entries: Iterable[Entry], options: AdoptOptions) -> Adoption:
    """The current torrents that most need seeders and fit ``options.budget``."""
    candidates = [
        dict(e) for e in entries
        if not e.get("obsolete") and not e.get("embargo") and not e.get("partially_broken")
        and isinstance(e.get("data_size"), int) and e["data_size"] >= 0
        and (options.max_seeders is None or _count(e.get("seeders")) <= options.max_seeders)
    ]
    candidates.sort(key=_rank)
    out = Adoption(options.budget, candidates=len(candidates))
    room = options.budget
    for e in candidates:
        if e["data_size"] <= room:
            out.chosen.append(e)
            room -= e["data_size"]
        else:
            out.skipped += 1
    return out


def magnets(adoption: Adoption) -> bytes:
    return "".join(f"{e['magnet_link']}\n" for e in adoption.chosen if e.get("magnet_link")).encode()


def torrent_files(adoption: Adoption, publish: Path) -> list[tuple[str, Path]]:
    """(file name, path) of each chosen torrent's .torrent file under ``publish``."""
    out = []
    for e in adoption.chosen:
        rel = str(e.get("torrent") or "")
        path = (Path(publish) / rel).resolve()
        if not rel or Path(publish).resolve() not in path.parents or not path.is_file():
            raise InputError(Path(publish) / rel, f"{e['display_name']}: .torrent file missing")
        out.append((path.name, path))
    return out


def zip_bytes(adoption: Adoption, publish: Path) -> bytes:
    """A zip of the chosen .torrent files plus magnets.txt (fixed timestamps)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, path in torrent_files(adoption, publish):
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise wrap_os_error(exc, path) from exc
            z.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data)
        z.writestr(zipfile.ZipInfo("magnets.txt", _ZIP_TIME), magnets(adoption))
    return buf.getvalue()


def write(adoption: Adoption, publish: Path, fmt: str, out: Path) -> list[Path]:
    """Write the choice as ``fmt`` to ``out`` (a file; a folder for ``torrents``)."""
    if fmt not in FORMATS:
        raise InputError(fmt, f"unknown format (one of {', '.join(FORMATS)})")
    if fmt == "magnets":
        write_bytes(out, magnets(adoption))
        return [out]
    if fmt == "zip":
        write_bytes(out, zip_bytes(adoption, publish))
        return [out]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise wrap_os_error(exc, out, writing=True) from exc
    written = []
    for name, path in torrent_files(adoption, publish):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise wrap_os_error(exc, path) from exc
        write_bytes(out / name, data)
        written.append(out / name)
    return written
