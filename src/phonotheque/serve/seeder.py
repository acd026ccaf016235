"""Seed the published torrents with one libtorrent session.

The library part: :class:`Seeder` (``start``, ``status``, ``stop``) over a list of
:class:`SeedItem` (a .torrent file and the folder holding its payload), and
:func:`find_published` that lists what a workspace publishes. It never prints;
``phono seed`` draws the live table and handles Ctrl-C.

Torrents are added in *seed mode* by default: libtorrent trusts that the payload
is complete and hashes each piece the first time a peer asks for it, so a large
archive starts seeding at once instead of re-reading terabytes (``recheck=True``
reads everything first). Nothing is written to disk by the seeder: no resume
data, no DHT state, so stopping at any moment leaves nothing half-written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from phonotheque.errors import InputError, PhonoError, TorrentError
from phonotheque.publish.index import V1_SUFFIX, read_index
from phonotheque.torrent import TorrentInfo, content_root, read_torrent
from phonotheque.torrent.session import (
    SessionOptions,
    add_torrent,
    close_session,
    open_session,
    remove_torrent,
)
from phonotheque.torrent.session import status as session_status

_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\s\[\]]+)):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class SeedOptions:
    """How the seeding session talks to the network."""

    listen: str = "0.0.0.0:6881"  # host:port, [v6]:port; port 0 picks a free port
    interface: str | None = None  # bind listening and outgoing sockets to this device/address
    dht: bool = True
    lsd: bool = True
    pex: bool = True
    upnp: bool = False  # port mapping changes the user's router: opt-in
    utp: bool = True
    recheck: bool = False  # hash all payload before seeding instead of on demand
    fetch: bool = False  # download what is missing first (`seed --adopt`), then seed
    trackers: tuple[str, ...] = ()  # announce to these as well as to each torrent's own


@dataclass(frozen=True)
class SeedItem:
    """One torrent to seed: its .torrent file and the folder that holds its payload."""

    torrent: Path
    save_path: Path

    @property
    def companion(self) -> bool:
        """A hybrid's v1 companion (``<name>.v1.torrent``), seeded from the same payload."""
        return self.torrent.name.endswith(V1_SUFFIX)


@dataclass(frozen=True)
class MissingPayload:
    """A torrent :meth:`Seeder.start` skipped because its payload is not where expected."""

    item: SeedItem
    expected: Path


@dataclass(frozen=True)
class SeedChange:
    """One change :meth:`Seeder.follow` made to what is seeded, for the caller to report."""

    kind: Literal["added", "removed", "missing", "unusable"]
    name: str  # the torrent's name (its .torrent file's, without the suffix)
    detail: str = ""  # missing: where the payload was expected; unusable: why


@dataclass(frozen=True)
class TorrentStatus:
    """A snapshot of one seeded torrent."""

    name: str
    infohash: str  # v1 hex, or v2 (truncated to 40 hex) for v2-only torrents
    state: str  # checking, seeding, missing data, error, paused, ...
    progress: float  # 0..1 of the payload present and verified (or trusted in seed mode)
    peers: int
    upload_rate: int  # payload bytes/s
    uploaded: int  # payload bytes since start
    error: str | None = None


def parse_listen(listen: str, interface: str | None = None) -> tuple[str, int]:
    """``host:port`` → (host, port); with ``interface`` the host is replaced by it."""
    m = _LISTEN.match(listen.strip())
    if not m:
        raise InputError(listen, "expected host:port, e.g. 0.0.0.0:6881 or [::]:6881")
    port = int(m["port"])
    if port > 65535:
        raise InputError(listen, f"port {port} out of range")
    host = m["v6"] or m["host"]
    if interface is not None:
        if not re.fullmatch(r"[\w.:%-]{1,64}", interface):
            raise InputError(interface, "not an interface name or address")
        host = interface
    return host, port


def find_published(torrents_dir: Path, publish_dir: Path | None = None) -> list[SeedItem]:
    """Every current published torrent, with the folder that should hold its payload.

    The .torrent files are the ones ``publish/torrents.json`` names (its ``torrent``
    entries, relative to the publish folder, the workspace or ``torrents_dir``),
    leaving out obsolete and withdrawn entries (their payload is gone by design),
    or when there is no index, every ``*.torrent`` under ``torrents_dir``. Payloads
    are looked up in ``torrents_dir`` (the workspace's ``torrents/``, where pack
    lays them out), else next to the .torrent file; when neither holds one the
    item still names ``torrents_dir`` and :meth:`Seeder.start` reports it missing.
    """
    torrents_dir = Path(torrents_dir)
    paths: list[Path] = []
    index = Path(publish_dir) / "torrents.json" if publish_dir else None
    if index is not None and index.is_file():
        for name in _torrent_names(read_index(index.parent)):
            for base in (index.parent, torrents_dir.parent, torrents_dir):
                if (base / name).is_file():
                    paths.append(base / name)
                    break
            else:
                raise InputError(index, f"lists {name}, which is not under {torrents_dir}")
    if not paths:
        if not torrents_dir.is_dir():
            raise InputError(torrents_dir, "no such folder")
        paths = sorted(torrents_dir.rglob("*.torrent"))
    items: list[SeedItem] = []
    seen: set[Path] = set()
    for p in paths:
        p = p.resolve()
        if p in seen:
            continue
        seen.add(p)
        info = read_torrent(p)
        save = torrents_dir
        if not content_root(info, torrents_dir).exists() and content_root(info, p.parent).exists():
            save = p.parent
        items.append(SeedItem(p, save.resolve()))
    return items


def _torrent_names(doc: Any) -> Iterable[str]:
    """Relative .torrent paths of the current torrents the index lists.

    An entry (an object with a ``torrent``) marked ``obsolete`` or ``withdrawn`` is
    skipped; elsewhere any relative ``*.torrent`` string counts (the layout may grow).
    """
    if isinstance(doc, str):
        if doc.endswith(".torrent") and "://" not in doc and not doc.startswith("/"):
            yield doc
    elif isinstance(doc, list):
        for v in doc:
            yield from _torrent_names(v)
    elif isinstance(doc, dict):
        if "torrent" in doc and (doc.get("obsolete") or doc.get("withdrawn")):
            return
        for v in doc.values():
            yield from _torrent_names(v)


def _key(info: TorrentInfo) -> str:
    """How a torrent is known here and in ``TorrentStatus.infohash``."""
    return info.infohash_v1 or (info.infohash_v2 or "")[:40]


class Seeder:
    """A libtorrent session seeding ``items``; use as a context manager or start()/stop()."""

    def __init__(self, items: Iterable[SeedItem], options: SeedOptions | None = None) -> None:
        self.items = list(items)
        self.options = options or SeedOptions()
        self._session: Any = None
        self._handles: list[tuple[Any, str]] = []
        self._seeded: dict[str, SeedItem] = {}  # infohash key -> the item it was added from
        self.missing: list[MissingPayload] = []  # items skipped: no payload

    # -- lifecycle -----------------------------------------------------------------------
    def _session_options(self) -> SessionOptions:
        o = self.options
        host, port = parse_listen(o.listen, o.interface)
        listen = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
        return SessionOptions(
            listen=listen,
            interface=o.interface,
            dht=o.dht,
            lsd=o.lsd,
            pex=o.pex,
            upnp=o.upnp,
            utp=o.utp,
            seeding=True,
        )

    def start(self) -> None:
        """Open the session and add every torrent whose payload is present.

        Those without one are listed in ``missing``; raises if a .torrent is
        unusable or no payload at all is found.
        """
        if self._session is not None:
            return
        options = self._session_options()
        infos = []
        self.missing = []
        for item in self.items:
            info = read_torrent(item.torrent)  # validates: raises TorrentError naming the file
            root = content_root(info, item.save_path)
            if not root.exists() and not self.options.fetch:  # reported, not fatal
                self.missing.append(MissingPayload(item, root))
                continue
            infos.append((item, info))
        if self.items and not infos:
            raise InputError(self.missing[0].expected,
                             f"no payload found for any of the {len(self.items)} torrents")
        self._session = open_session(options)
        try:
            for item, info in infos:
                self._add(item, info)
        except TorrentError:
            self.stop()
            raise

    def _add(self, item: SeedItem, info: TorrentInfo) -> None:
        handle = add_torrent(self._session, info, item.save_path, self._session_options(),
                             seed_mode=not (self.options.recheck or self.options.fetch),
                             subject=item.torrent)
        for url in self.options.trackers:
            handle.add_tracker({"url": url})
        key = _key(info)
        self._handles.append((handle, key))
        self._seeded[key] = item

    def follow(self, items: Iterable[SeedItem]) -> list[SeedChange]:
        """Seed exactly ``items`` from now on (what a new publish lists); return the changes.

        Torrents no longer among them are dropped, their payload left on disk (``phono
        gc`` deletes it); new ones are added as :meth:`start` adds them; the others go on
        seeding untouched, not re-checked. A new torrent whose payload is missing, or
        whose .torrent is unusable, is reported and skipped, never fatal.
        """
        if self._session is None:
            raise PhonoError("seeder", "not started")
        changes: list[SeedChange] = []
        wanted: dict[str, tuple[SeedItem, TorrentInfo]] = {}
        for item in items:
            try:
                info = read_torrent(item.torrent)
            except PhonoError as exc:
                changes.append(SeedChange("unusable", item.torrent.stem, str(exc)))
                continue
            wanted.setdefault(_key(info), (item, info))
        kept = []
        for handle, key in self._handles:
            if key in wanted:
                kept.append((handle, key))
            else:
                remove_torrent(self._session, handle)
                changes.append(SeedChange("removed", self._seeded.pop(key).torrent.stem))
        self._handles = kept
        missing = {m.item.torrent.name for m in self.missing}
        self.missing = []
        for key, (item, info) in wanted.items():
            if key in self._seeded:
                continue
            root = content_root(info, item.save_path)
            if not root.exists() and not self.options.fetch:
                self.missing.append(MissingPayload(item, root))
                if item.torrent.name not in missing:  # said once, not at every publish
                    changes.append(SeedChange("missing", item.torrent.stem, str(root)))
                continue
            try:
                self._add(item, info)
            except TorrentError as exc:
                changes.append(SeedChange("unusable", item.torrent.stem, str(exc)))
                continue
            changes.append(SeedChange("added", item.torrent.stem))
        self.items = [item for item, _ in wanted.values()]
        return changes

    @property
    def listen_port(self) -> int:
        if self._session is None:
            raise PhonoError("seeder", "not started")
        return int(self._session.listen_port())

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until no torrent is still checking (only slow with ``recheck``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.state != "checking" for s in self.status()):
                return
            time.sleep(0.05)
        raise PhonoError("seeder", f"torrents still checking after {timeout:.0f} s")

    def status(self) -> list[TorrentStatus]:
        """One snapshot per torrent, in the order they were added."""
        out = []
        for handle, key in self._handles:
            st = session_status(handle)
            out.append(
                TorrentStatus(
                    name=st.name,
                    infohash=key,
                    state=st.state,
                    progress=st.progress,
                    peers=st.peers,
                    upload_rate=st.upload_rate,
                    uploaded=st.uploaded,
                    error=st.error,
                )
            )
        return out

    def stop(self) -> None:
        """Pause, drop every torrent and close the session; writes nothing."""
        if self._session is None:
            return
        ses, self._session = self._session, None
        close_session(ses)
        self._handles = []
        self._seeded = {}
        del ses  # the session's destructor closes sockets and joins its threads

    def __enter__(self) -> Seeder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
