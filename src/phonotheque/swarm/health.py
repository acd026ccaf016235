"""``phono health``: scrape every public torrent's trackers and record the swarm counts.

Torrents are grouped by tracker, so each tracker is asked once for all of its
torrents, many info-hashes per request (see :mod:`.scrape`). Trackers are asked in
parallel; one that is unreachable, slow or answers garbage costs at most its own
deadline, is reported on its own line, and the other trackers' answers are still
recorded.

Which info-hash a tracker knows a torrent by: a v1 torrent by its v1 hash; a
v2-only torrent by its v2 hash truncated to 20 bytes (BEP 52); a hybrid torrent by
both, since v2-capable clients (libtorrent 2) announce it under each hash. For a
hybrid torrent we keep, per count, the larger of its two swarms: a v2 client is in
both, so adding them would count it twice.

No DHT: torrents without a tracker are listed as untracked, not sampled. A DHT
``get_peers`` answers with peer addresses only (no seeder/leecher split: BEP 33's
scrape extension is not exposed by libtorrent's Python bindings), needs a
bootstrapped routing table on the public internet, and takes tens of seconds per
hash; its numbers would not be comparable with a tracker's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from phonotheque.catalogue import swarm as swarm_table
from phonotheque.catalogue.store import Store, now_iso
from phonotheque.catalogue.swarm import ScrapeTarget, SwarmRow
from phonotheque.progress import ProgressFn, meter
from phonotheque.publish.index import refresh_health
from phonotheque.swarm.scrape import Counts, ScrapeError, ScrapeOptions, scrape, scrape_url
from phonotheque.workspace import Workspace

MAX_PARALLEL_TRACKERS = 16
Progress = Callable[..., object]


@dataclass(frozen=True)
class HealthOptions:
    # Ask these trackers for every torrent instead of the trackers each torrent names.
    trackers: tuple[str, ...] = ()
    scrape: ScrapeOptions = field(default_factory=ScrapeOptions)


@dataclass(frozen=True)
class TrackerResult:
    """How one tracker answered."""

    url: str
    torrents: int  # torrents asked about
    answered: int  # torrents it gave counts for
    seconds: float
    error: str | None = None  # None: it answered


@dataclass
class HealthReport:
    torrents: int = 0  # public torrents
    scraped: int = 0  # torrents at least one tracker answered for
    untracked: list[str] = field(default_factory=list)  # names of torrents with no tracker
    trackers: list[TrackerResult] = field(default_factory=list)
    scraped_at: str = ""
    hashes: int = 0  # info-hashes asked about, over all trackers
    index_updated: int = 0  # entries of publish/torrents.json whose health changed
    seconds: float = 0.0


def publish_health(ws: Workspace, store: Store, publish: Path | None = None) -> int:
    """Copy the catalogue's swarm health into ``torrents.json`` (if published); entries changed."""
    index = Path(publish or ws.publish) / "torrents.json"
    if not index.is_file():
        return 0
    names = {t.torrent_id: t.name for t in swarm_table.scrape_targets(store)}
    by_id = swarm_table.health(store.conn)
    return refresh_health(index, {names[i]: h for i, h in by_id.items() if i in names})


def trackers_of(target: ScrapeTarget) -> list[str]:
    """The trackers a torrent names (its magnet's ``tr`` parameters), in order."""
    if not target.magnet:
        return []
    return parse_qs(urlsplit(target.magnet).query).get("tr", [])


def info_hashes(target: ScrapeTarget) -> list[bytes]:
    """The 20-byte hashes trackers know the torrent by: v1, and v2 truncated (BEP 52)."""
    out = []
    for h in (target.infohash_v1, (target.infohash_v2 or "")[:40] or None):
        if h:
            out.append(bytes.fromhex(h))
    return out


def check(
    ws: Workspace, options: HealthOptions | None = None, progress: ProgressFn | None = None,
) -> HealthReport:
    """Scrape every public torrent of ``ws`` and record the answers in the catalogue."""
    return _check(ws, options or HealthOptions(), meter(progress, "health", "hashes"))


def _check(ws: Workspace, options: HealthOptions, progress: Progress | None) -> HealthReport:
    t0 = time.monotonic()
    report = HealthReport()
    with ws.store() as store:
        targets = swarm_table.scrape_targets(store)
    report.torrents = len(targets)
    by_tracker: dict[str, list[ScrapeTarget]] = {}
    for t in targets:
        urls = list(options.trackers) or trackers_of(t)
        if not urls:
            report.untracked.append(t.name)
        for url in dict.fromkeys(urls):
            by_tracker.setdefault(url, []).append(t)
    report.hashes = sum(len(info_hashes(t)) for ts in by_tracker.values() for t in ts)
    if progress is not None:
        progress(0, total=report.hashes)
    rows: list[SwarmRow] = []
    answered: set[int] = set()
    if by_tracker:
        with ThreadPoolExecutor(min(MAX_PARALLEL_TRACKERS, len(by_tracker))) as pool:
            at = now_iso()  # one time per run: the newest run's answers are the health
            futures = [pool.submit(_one_tracker, url, ts, options.scrape, at, progress)
                       for url, ts in by_tracker.items()]
            for f in futures:
                result, tracker_rows = f.result()
                report.trackers.append(result)
                rows.extend(tracker_rows)
                answered.update(r.torrent_id for r in tracker_rows)
    with ws.store() as store:
        swarm_table.record_scrapes(store, rows)
        report.index_updated = publish_health(ws, store)
    report.scraped = len(answered)
    report.scraped_at = max((r.scraped_at for r in rows), default="")
    report.seconds = time.monotonic() - t0
    return report


def _one_tracker(
    url: str, targets: Sequence[ScrapeTarget], options: ScrapeOptions, at: str,
    progress: Progress | None,
) -> tuple[TrackerResult, list[SwarmRow]]:
    t0 = time.monotonic()
    owners: dict[bytes, list[int]] = {}
    for t in targets:
        for h in info_hashes(t):
            owners.setdefault(h, []).append(t.torrent_id)
    if scrape_url(url) is None:
        return TrackerResult(url, len(targets), 0, 0.0,
                             "cannot scrape (not udp://, or an HTTP path not ending in /announce)"), []
    try:
        counts = scrape(url, list(owners), options,
                        on_batch=progress)
    except ScrapeError as exc:
        return TrackerResult(url, len(targets), 0, time.monotonic() - t0, exc.problem), []
    merged: dict[int, Counts] = {}
    for h, c in counts.items():
        for tid in owners.get(h, ()):
            prev = merged.get(tid)
            merged[tid] = c if prev is None else Counts(
                max(prev.seeders, c.seeders), max(prev.leechers, c.leechers),
                max(prev.completed, c.completed))
    rows = [SwarmRow(tid, url, c.seeders, c.leechers, c.completed, at)
            for tid, c in sorted(merged.items())]
    return TrackerResult(url, len(targets), len(rows), time.monotonic() - t0), rows
