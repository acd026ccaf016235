"""``phono release``: publish the next wave of torrents, most popular bands first.

A wave is the set of torrents that go public together. ``release`` first runs
``pack`` (so folders that lost files to an exclusion are rebuilt and their old
torrents marked obsolete), then takes unreleased data folders in band order
(then by time) until the wave is full — ``wave_bands`` bands and/or
``wave_bytes`` bytes, at least one folder — together with their AAC metadata
torrents and the current album-art torrent, numbers them with the next wave,
and publishes (metadata, ``torrents.json``, magnets).

A wave's time is the newest creation time of its torrents (never before the
previous wave's), so waves, like AAC timestamps, derive from the catalogue.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace

import orjson

from phonotheque.catalogue import torrents
from phonotheque.errors import InputError
from phonotheque.executors import Executor
from phonotheque.pack.packer import PackOptions, PackReport, pack, stored_options
from phonotheque.progress import ProgressFn
from phonotheque.publish.publisher import PublishOptions, PublishReport, publish
from phonotheque.workspace import Workspace

PENDING = "release.pending_publish"  # meta key: a wave recorded but not yet published


@dataclass(frozen=True)
class ReleaseOptions:
    wave_bytes: int | None = None  # None: no byte limit
    wave_bands: int | None = None  # None: no band limit
    pack: bool = True  # run `pack` first (rebuilds folders hit by exclusions)
    pack_options: PackOptions | None = None  # None: the workspace's last pack options
    publish: PublishOptions = field(default_factory=PublishOptions)

    def __post_init__(self) -> None:
        if self.wave_bytes is not None and self.wave_bytes < 1:
            raise InputError(self.wave_bytes, "--wave-bytes must be positive")
        if self.wave_bands is not None and self.wave_bands < 1:
            raise InputError(self.wave_bands, "--wave-bands must be at least 1")


@dataclass
class ReleaseReport:
    wave: int | None = None
    released: list[str] = field(default_factory=list)  # data torrents in this wave
    bands: list[int] = field(default_factory=list)
    bytes: int = 0
    remaining: int = 0  # data torrents still unreleased
    remaining_bytes: int = 0
    obsoleted: list[str] = field(default_factory=list)  # released torrents now obsolete
    pack: PackReport | None = None
    publish: PublishReport | None = None
    resumed: bool = False  # finished publishing a wave an interrupted release had recorded


def release(
    ws: Workspace,
    options: ReleaseOptions | None = None,
    progress: ProgressFn | None = None,
    executor: Executor | None = None,
) -> ReleaseReport:
    """Pack (folders built by ``executor``'s workers if given), then release the next wave."""
    options = options or ReleaseOptions()
    report = ReleaseReport()
    pack_opts = options.pack_options or stored_options(ws) or PackOptions()
    with ws.store(readonly=True) as store:
        pending = store.get_meta(PENDING)
    if pending:
        # The previous release recorded its wave but was interrupted before its
        # publish finished: finish that one instead of releasing another.
        report.wave, report.resumed = int(pending), True
        report.publish = _publish(ws, options, pack_opts, progress)
        return report
    if options.pack:
        report.pack = pack(ws, pack_opts, progress, executor)
    with ws.store() as store:
        conn = store.conn
        candidates = torrents.unreleased(store)
        chosen: list[sqlite3.Row] = []
        bands: list[int] = []
        total = 0
        for c in candidates:
            if c["band"] not in bands and options.wave_bands and len(bands) >= options.wave_bands:
                break
            if chosen and options.wave_bytes and total + c["size"] > options.wave_bytes:
                break
            chosen.append(c)
            total += c["size"]
            if c["band"] not in bands:
                bands.append(c["band"])
        art = conn.execute(
            "SELECT id, created_at FROM torrent WHERE kind = 'art' AND built = 1 "
            "AND obsolete = 0 AND wave IS NULL"
        ).fetchall()
        if chosen or art:
            times = [c["created_at"] for c in chosen] + [a["created_at"] for a in art]
            previous = torrents.last_wave_time(store)
            released_at = max([*times, previous] if previous else times)
            ids = [c["id"] for c in chosen] + [a["id"] for a in art]
            with store.transaction():
                wave = torrents.add_wave(
                    store, released_at, ids, len(chosen), total, orjson.dumps({
                        "wave_bytes": options.wave_bytes, "wave_bands": options.wave_bands,
                    }, option=orjson.OPT_SORT_KEYS).decode())
                store.set_meta(PENDING, str(wave))
            report.wave = wave
            report.released = [c["name"] for c in chosen]
            report.bands = bands
            report.bytes = total
        report.remaining, report.remaining_bytes = torrents.unreleased_totals(store)
        if report.pack is not None:
            gone = {old for old, _new in report.pack.rebuilt}
            report.obsoleted = [
                r["name"] for r in conn.execute(
                    "SELECT name FROM torrent WHERE obsolete = 1 AND wave IS NOT NULL "
                    "AND kind = 'data' ORDER BY id")
                if r["name"] in gone
            ]
    report.publish = _publish(ws, options, pack_opts, progress)
    return report


def _publish(
    ws: Workspace, options: ReleaseOptions, pack_opts: PackOptions, progress: ProgressFn | None
) -> PublishReport:
    publish_opts = options.publish
    if publish_opts.pack is None:
        publish_opts = replace(publish_opts, pack=pack_opts)
    result = publish(ws, publish_opts, progress)
    with ws.store() as store, store.transaction():
        store.delete_meta(PENDING)
    return result
