"""What our own seeder does, recorded: ``currently_seeding`` and per-torrent upload totals.

``phono seed`` on a workspace marks the torrents it holds as being seeded, adds
what it uploaded of each to the catalogue's running totals every so often and when
it stops (so totals survive restarts), and refreshes the health fields of
``publish/torrents.json`` when it starts and stops, so the index and the torrents
page say at once which torrents the archive itself seeds.

Also ``phono seed --adopt``: the volunteer's side, where the chosen torrents are
downloaded into a folder and then seeded (:func:`adopted_items`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from phonotheque.catalogue import swarm as swarm_table
from phonotheque.serve.seeder import SeedItem, TorrentStatus
from phonotheque.swarm.adopt import Adoption, torrent_files
from phonotheque.swarm.health import publish_health
from phonotheque.workspace import Workspace

RECORD_EVERY = 30.0  # seconds between two upload records while seeding


class SeedingLog:
    """Records one seeding run of a workspace's torrents in its catalogue."""

    def __init__(self, ws: Workspace, publish: Path | None = None) -> None:
        self.ws = ws
        self.publish = publish
        self._ids: dict[str, int] = {}  # infohash key (as the seeder reports it) -> torrent id
        self._recorded: dict[int, int] = {}  # bytes uploaded this run, already recorded

    def start(self, statuses: Iterable[TorrentStatus]) -> int:
        """Mark the seeded torrents as currently seeding; returns how many are ours."""
        with self.ws.store() as store:
            known = swarm_table.torrent_ids_by_infohash(store)
            self._ids = {s.infohash: known[s.infohash.lower()] for s in statuses
                         if s.infohash.lower() in known}
            self._recorded = dict.fromkeys(self._ids.values(), 0)
            swarm_table.start_seeding(store, self._ids.values())
            publish_health(self.ws, store, self.publish)
        return len(self._ids)

    def follow(self, before: Iterable[TorrentStatus], after: Iterable[TorrentStatus]) -> int:
        """The seeder changed what it seeds (a new publish): record what was uploaded up to
        the change (``before`` it, dropped torrents included), then mark exactly the
        torrents seeded ``after`` it as currently seeding; returns how many are ours."""
        self.record(before)
        with self.ws.store() as store:
            known = swarm_table.torrent_ids_by_infohash(store)
            self._ids = {s.infohash: known[s.infohash.lower()] for s in after
                         if s.infohash.lower() in known}
            self._recorded = {tid: self._recorded.get(tid, 0) for tid in self._ids.values()}
            swarm_table.start_seeding(store, self._ids.values())
            publish_health(self.ws, store, self.publish)
        return len(self._ids)

    def record(self, statuses: Iterable[TorrentStatus], *, stopped: bool = False) -> int:
        """Add what was uploaded since the last record; ``stopped``: the run is over."""
        delta: dict[int, int] = {}
        for s in statuses:
            tid = self._ids.get(s.infohash)
            if tid is not None and s.uploaded > self._recorded[tid]:
                delta[tid] = s.uploaded - self._recorded[tid]
                self._recorded[tid] = s.uploaded
        with self.ws.store() as store:
            swarm_table.add_uploads(store, delta, stopped=stopped)
            if stopped:
                publish_health(self.ws, store, self.publish)
        return sum(delta.values())


def adopted_items(adoption: Adoption, publish: Path, data: Path) -> list[SeedItem]:
    """The chosen torrents as seeder items downloading into ``data``."""
    return [SeedItem(path, Path(data).resolve()) for _, path in torrent_files(adoption, publish)]
