"""Test helpers over phonotheque.torrent.session: a seeding and a downloading session on loopback.

The library only seeds (``phono seed``); downloading is for tests that prove a
real client gets our torrents. TCP only, no DHT/LSD/UPnP, everything bounded in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import libtorrent as lt

from phonotheque.errors import IntegrityError
from phonotheque.torrent import TorrentInfo, read_torrent
from phonotheque.torrent.session import (
    Handle,
    Session,
    SessionOptions,
    TransferStatus,
    add_torrent,
    close_session,
    listen_port,
    open_session,
    status,
)

__all__ = ["add_download", "add_seed", "listen_port", "start_session", "stop_session",
           "wait_finished"]

_OPTIONS = SessionOptions(listen="127.0.0.1:0", storage_alerts=True)


def start_session(listen: str = "127.0.0.1:0") -> Session:
    """A session on ``listen`` (port 0: any free port), once it is listening."""
    session = open_session(SessionOptions(listen=listen, storage_alerts=True))
    deadline = time.monotonic() + 5
    while session.listen_port() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    if session.listen_port() == 0:
        raise IntegrityError(listen, "the session did not start listening")
    return session


def _info(torrent: Path | TorrentInfo) -> TorrentInfo:
    return torrent if isinstance(torrent, TorrentInfo) else read_torrent(torrent)


def add_seed(
    session: Session, torrent: Path | TorrentInfo, data_dir: Path, *, check: bool = False
) -> Handle:
    """Seed ``torrent`` from ``data_dir``; with ``check`` every piece is hashed first."""
    return add_torrent(session, _info(torrent), Path(data_dir).resolve(), _OPTIONS,
                       seed_mode=not check)


def add_download(
    session: Session,
    torrent: Path | TorrentInfo,
    save_dir: Path,
    peers: Iterable[tuple[str, int]] = (),
) -> Handle:
    """Download ``torrent`` into ``save_dir``, connecting directly to ``peers``."""
    handle = add_torrent(session, _info(torrent), Path(save_dir).resolve(), _OPTIONS,
                         seed_mode=False)
    peers = list(peers)
    if peers:
        # Peers given while the torrent is still being checked are dropped.
        deadline = time.monotonic() + 10
        while status(handle).state == "checking" and time.monotonic() < deadline:
            time.sleep(0.02)
        for host, port in peers:
            handle.connect_peer((host, port))
    return handle


def wait_finished(
    handles: Sequence[Handle],
    timeout: float,
    *,
    poll: float = 0.1,
    on_poll: Callable[[list[TransferStatus]], object] | None = None,
) -> list[TransferStatus]:
    """Wait until every handle is seeding (download complete and checked).

    Raises :class:`IntegrityError` when time runs out or a torrent reports an
    error (a failed hash check included).
    """
    deadline = time.monotonic() + timeout
    while True:
        states = [status(h) for h in handles]
        if on_poll is not None:
            on_poll(states)
        for st in states:
            if st.error:
                raise IntegrityError(st.name, st.error)
        if all(st.seeding for st in states):
            return states
        if time.monotonic() > deadline:
            late = ", ".join(f"{st.name} {st.progress:.0%}" for st in states if not st.seeding)
            raise IntegrityError("download", f"not finished after {timeout:.0f} s: {late}")
        time.sleep(poll)


def flush(session: Session, timeout: float = 10.0) -> None:
    """Write every torrent's pending blocks to disk and wait until it is done.

    A torrent reports "seeding" once its pieces pass their hash checks, which
    can be before the last ones reach the files.
    """
    handles = session.get_torrents()
    pending = {h.info_hashes() for h in handles}
    for h in handles:
        h.flush_cache()
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        session.wait_for_alert(100)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.cache_flushed_alert):
                pending.discard(alert.handle.info_hashes())
    if pending:
        raise IntegrityError("session", f"disk writes not finished after {timeout:.0f} s")


def stop_session(session: Session, timeout: float = 10.0) -> None:
    """Flush, remove every torrent and stop (the object can then be dropped)."""
    flush(session, timeout)
    close_session(session)
    deadline = time.monotonic() + timeout
    while session.get_torrents() and time.monotonic() < deadline:
        session.wait_for_alert(100)
        session.pop_alerts()
