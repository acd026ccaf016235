"""The options of ``phono build`` that a workspace keeps.

An archive is built again and again (new files, new listens, a crash): the
selection and packing options given once must hold for every later build, or a
re-run without them silently restores the defaults and, say, de-selects a whole
collection archived with ``--all``. So the options given to a build are merged
over those the workspace kept (``meta`` key ``build.options``), kept again, and
every change is reported.

Only options given explicitly are kept; an option never given stays at its
default (and follows the default if that changes).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import orjson

from phonotheque.pack.options import PackOptions
from phonotheque.select.options import SelectOptions
from phonotheque.workspace import Workspace

__all__ = ["META_KEY", "BuildSettings", "Change", "ResolvedSettings", "resolve"]

META_KEY = "build.options"

# Setting -> field of SelectOptions / PackOptions it sets.
_SELECT = {"take_all": "take_all", "coverage": "coverage",
           "priority_threshold": "priority_threshold", "original_share": "original_share",
           "tail_threshold": "tail_threshold", "budget_bytes": "budget_bytes"}
_PACK = {"layout": "layout", "torrent_version": "version", "trackers": "trackers",
         "webseeds": "webseeds", "max_files": "max_files", "max_bytes": "max_bytes"}


@dataclass(frozen=True, slots=True)
class BuildSettings:
    """Selection and packing options of a build; ``None``: not given (the default)."""

    take_all: bool | None = None
    coverage: float | None = None
    priority_threshold: float | None = None
    original_share: float | None = None
    tail_threshold: int | None = None
    budget_bytes: int | None = None
    layout: str | None = None
    torrent_version: str | None = None
    trackers: tuple[str, ...] | None = None
    webseeds: tuple[str, ...] | None = None
    max_files: int | None = None
    max_bytes: int | None = None

    def given(self) -> dict[str, Any]:
        """The options that are set, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def to_json(self) -> str:
        return orjson.dumps(self.given(), option=orjson.OPT_SORT_KEYS).decode()

    @classmethod
    def from_json(cls, text: str | None) -> BuildSettings:
        if not text:
            return cls()
        d: dict[str, Any] = orjson.loads(text)
        known = {f.name for f in fields(cls)}
        for k in ("trackers", "webseeds"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**{k: v for k, v in d.items() if k in known})

    def merged(self, given: BuildSettings) -> BuildSettings:
        """These settings with ``given``'s set options over them.

        ``original_share`` and ``tail_threshold`` are two ways to draw the tier
        line: giving one alone drops a kept value of the other.
        """
        new = given.given()
        if "original_share" in new and "tail_threshold" not in new:
            new["tail_threshold"] = None
        if "tail_threshold" in new and "original_share" not in new:
            new["original_share"] = None
        return replace(self, **new)

    def select_options(self) -> SelectOptions:
        return SelectOptions(**{_SELECT[k]: v for k, v in self.given().items() if k in _SELECT})

    def pack_options(self, base: PackOptions) -> PackOptions | None:
        """``base`` (the last pack's options) with these settings over it; None if none set."""
        over = {_PACK[k]: v for k, v in self.given().items() if k in _PACK}
        return replace(base, **over) if over else None


@dataclass(frozen=True, slots=True)
class Change:
    """One kept option a build changed: ``None`` means "the default"."""

    name: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class ResolvedSettings:
    settings: BuildSettings  # what this build uses (and the workspace now keeps)
    kept: dict[str, Any]  # options taken from earlier builds (not given this time)
    changes: list[Change]  # options given this time that differ from the kept ones


def resolve(ws: Workspace, given: BuildSettings) -> ResolvedSettings:
    """Merge ``given`` over the workspace's kept options, check them, keep the result."""
    with ws.store(readonly=True) as store:
        stored = BuildSettings.from_json(store.get_meta(META_KEY))
    settings = stored.merged(given)
    # Check before keeping: a bad value must not stick to every later build.
    settings.select_options()
    settings.pack_options(PackOptions())
    old, new = stored.given(), settings.given()
    changes = [Change(k, old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
               if old.get(k) != new.get(k)]
    kept = {k: v for k, v in old.items() if k in new and k not in given.given()}
    if changes:
        with ws.store() as store, store.transaction():
            store.set_meta(META_KEY, settings.to_json())
    return ResolvedSettings(settings, kept, changes)
