"""Swarm health on the torrents page and API, and the volunteers' adopt form.

The counts come from ``publish/torrents.json`` (``phono health`` refreshes them there
without re-publishing), not from ``metadata.sqlite``, whose bytes are those of the
metadata torrent and must not change with every scrape. The index is re-read when its
modification time or size changes.

Risk bands, as on the reference's torrents page: 0–3 seeders red, 4–10 amber, more
green; a torrent never scraped is "unknown".
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phonotheque.errors import PhonoError
from phonotheque.publish.index import read_index
from phonotheque.serve.queries import BadQuery
from phonotheque.swarm.adopt import Adoption, AdoptOptions, choose
from phonotheque.units import parse_size

RED_MAX, AMBER_MAX = 3, 10
SORT_KEYS = ("seeders", "name", "band", "size", "added")
HEALTH_KEYS = ("seeders", "leechers", "completed", "stats_scraped_at", "currently_seeding")
MAX_BUDGET_TEXT = 32

Row = dict[str, Any]


def risk(seeders: int | None) -> str:
    if seeders is None:
        return "unknown"
    if seeders <= RED_MAX:
        return "red"
    return "amber" if seeders <= AMBER_MAX else "green"


class SwarmIndex:
    """``torrents.json`` of one published folder, re-read when it changes."""

    def __init__(self, publish: Path) -> None:
        self.path = Path(publish) / "torrents.json"
        self.publish = Path(publish)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._entries: list[dict[str, Any]] = []
        self._by_name: dict[str, dict[str, Any]] = {}

    def _load(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        try:
            st = self.path.stat()
        except OSError:
            return [], {}
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._entries = read_index(self.publish)
                except PhonoError:
                    self._entries = []  # a half-written or foreign file: no health shown
                self._by_name = {str(e.get("display_name")): e for e in self._entries}
                self._stamp = stamp
            return self._entries, self._by_name

    def entries(self) -> list[dict[str, Any]]:
        return self._load()[0]

    def by_name(self) -> dict[str, dict[str, Any]]:
        return self._load()[1]


def health_of(entry: dict[str, Any] | None) -> Row:
    e = entry or {}
    out: Row = {k: e.get(k) for k in HEALTH_KEYS}
    for k in ("seeders", "leechers", "completed"):  # a mirror's file may hold anything
        if not isinstance(out[k], int) or isinstance(out[k], bool) or out[k] < 0:
            out[k] = None
    if not isinstance(out["stats_scraped_at"], str):
        out["stats_scraped_at"] = None
    out["currently_seeding"] = out["currently_seeding"] is True
    out["risk"] = risk(out["seeders"])
    return out


def v1_magnet(entry: dict[str, Any] | None) -> str | None:
    """The magnet link of the entry's v1 companion (for clients that cannot read hybrid
    torrents), when torrents.json lists one."""
    m = (entry or {}).get("magnet_link_v1")
    return m if isinstance(m, str) and m.startswith("magnet:?") else None


def with_health(rows: Iterable[Row], index: SwarmIndex) -> list[Row]:
    by_name = index.by_name()  # one look at the file per request, not per row
    out = []
    for r in rows:
        entry = by_name.get(str(r["name"]))
        out.append({**r, **health_of(entry), "magnet_v1": v1_magnet(entry) if r["magnet"] else None})
    return out


def sort_rows(rows: list[Row], key: str | None, order: str | None) -> list[Row]:
    """Rows sorted by ``key`` (None: as given); unknown seeder counts sort as the fewest."""
    if key is None or key == "":
        return rows
    if key not in SORT_KEYS:
        raise BadQuery("sort", f"one of {', '.join(SORT_KEYS)}, got {key[:40]!r}", "bad_sort")
    if order not in (None, "", "asc", "desc"):
        raise BadQuery("order", f"asc or desc, got {order[:40]!r}", "bad_order")
    column = {"added": "added_at"}.get(key, key)

    def k(r: Row) -> tuple[Any, ...]:
        v = r.get(column)
        if column in ("seeders", "band"):
            return (-1 if v is None else v, r["name"])
        return (v if v is not None else "", r["name"])

    return sorted(rows, key=k, reverse=order == "desc")


@dataclass(frozen=True)
class BandTotal:
    band: int | None  # None: torrents without a band (metadata, art)
    torrents: int
    at_risk: int  # fewer than RED_MAX + 1 seeders
    unknown: int  # never scraped
    seeders: int

    def as_dict(self) -> Row:
        return {"band": self.band, "torrents": self.torrents, "at_risk": self.at_risk,
                "never_scraped": self.unknown, "seeders": self.seeders}


def band_totals(rows: Iterable[Row]) -> list[BandTotal]:
    """Per band (current torrents only): how many torrents, how many under 4 seeders."""
    acc: dict[int | None, list[int]] = {}
    for r in rows:
        if r.get("obsolete"):
            continue
        t = acc.setdefault(r.get("band"), [0, 0, 0, 0])
        t[0] += 1
        s = r.get("seeders")
        t[1] += s is not None and s <= RED_MAX
        t[2] += s is None
        t[3] += s or 0
    order = sorted(acc, key=lambda b: (b is None, b or 0))
    return [BandTotal(b, *acc[b]) for b in order]


def parse_adopt(budget: str | None, max_seeders: str | None) -> AdoptOptions:
    if not budget:
        raise BadQuery("budget", "required, e.g. 2TB or 500GB", "missing_budget")
    if len(budget) > MAX_BUDGET_TEXT:
        raise BadQuery("budget", f"too long ({len(budget)} characters)", "bad_budget")
    try:
        size = parse_size(budget)
    except PhonoError as exc:
        raise BadQuery("budget", exc.problem, "bad_budget") from exc
    cap = None
    if max_seeders not in (None, ""):
        assert max_seeders is not None
        if len(max_seeders) > 9 or not max_seeders.isascii() or not max_seeders.isdigit():
            raise BadQuery("max_seeders", f"must be a non-negative integer, got "
                                          f"{max_seeders[:40]!r}", "bad_max_seeders")
        cap = int(max_seeders)
    return AdoptOptions(size, cap)


def adopt(index: SwarmIndex, options: AdoptOptions) -> Adoption:
    return choose(index.entries(), options)
