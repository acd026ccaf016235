"""A libtorrent session for seeding (and test downloads) that stays where it is told.

Shared by ``phono seed`` and the real-client tests. Everything that reaches
beyond the listen address is off unless asked for: DHT, local service
discovery, UPnP, NAT-PMP and uTP (TCP only keeps loopback transfers fast and
predictable). Library code: no printing; errors become PhonoErrors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

from phonotheque import __version__
from phonotheque.errors import IntegrityError, PhonoError, TorrentError
from phonotheque.torrent import TorrentInfo, read_torrent

Session = lt.session
Handle = lt.torrent_handle

# Started, and not queued by libtorrent's auto-manager (default_flags has both).
_ACTIVE = lt.torrent_flags.default_flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused


class SessionError(PhonoError):
    """The BitTorrent session could not start or a torrent in it failed."""

    exit_code = 7


def start_session(
    listen: str = "127.0.0.1:0",
    *,
    dht: bool = False,
    lsd: bool = False,
    utp: bool = False,
    upnp: bool = False,
    natpmp: bool = False,
    upload_rate: int = 0,
    download_rate: int = 0,
) -> Session:
    """Start a session listening on ``listen`` (``host:port``; port 0 = any free port).

    Rates are bytes/s, 0 = unlimited.
    """
    settings = {
        "listen_interfaces": listen,
        "enable_dht": dht,
        "enable_lsd": lsd,
        "enable_upnp": upnp,
        "enable_natpmp": natpmp,
        "enable_incoming_utp": utp,
        "enable_outgoing_utp": utp,
        # Several local clients connect from 127.0.0.1 in tests and on one host.
        "allow_multiple_connections_per_ip": True,
        "user_agent": f"phonotheque/{__version__} libtorrent/{lt.__version__}",
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.storage_notification,
        "upload_rate_limit": upload_rate,
        "download_rate_limit": download_rate,
        "listen_system_port_fallback": False,
    }
    try:
        session = lt.session(settings)  # type: ignore[call-overload]  # the bindings take a dict
    except RuntimeError as exc:
        raise SessionError(listen, f"cannot start a BitTorrent session: {exc}") from exc
    deadline = time.monotonic() + 5
    while session.listen_port() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    if session.listen_port() == 0:
        raise SessionError(listen, "the session did not start listening")
    return session


def listen_port(session: Session) -> int:
    return int(session.listen_port())


def _torrent_info(torrent: Path | TorrentInfo) -> tuple[TorrentInfo, lt.torrent_info]:
    info = torrent if isinstance(torrent, TorrentInfo) else read_torrent(torrent)
    try:
        return info, lt.torrent_info(info.metainfo)
    except RuntimeError as exc:
        raise TorrentError(info.name, f"libtorrent refuses it: {exc}") from exc


def add_seed(
    session: Session, torrent: Path | TorrentInfo, data_dir: Path, *, check: bool = False
) -> Handle:
    """Seed ``torrent`` from ``data_dir`` (the folder holding its file or folder).

    Without ``check`` the data is trusted (libtorrent's seed mode: pieces are
    hashed as they are first uploaded); with it every piece is checked first.
    """
    _info, ti = _torrent_info(torrent)
    params = lt.add_torrent_params()
    params.ti = ti
    params.save_path = str(Path(data_dir).resolve())
    flags = _ACTIVE
    if not check:
        flags |= lt.torrent_flags.seed_mode
    params.flags = flags
    return session.add_torrent(params)


def add_download(
    session: Session,
    torrent: Path | TorrentInfo,
    save_dir: Path,
    peers: Iterable[tuple[str, int]] = (),
) -> Handle:
    """Download ``torrent`` into ``save_dir``, connecting directly to ``peers``."""
    _info, ti = _torrent_info(torrent)
    params = lt.add_torrent_params()
    params.ti = ti
    params.save_path = str(Path(save_dir).resolve())
    params.flags = _ACTIVE
    handle = session.add_torrent(params)
    peers = list(peers)
    if peers:
        # Peers given while the torrent is still being checked are dropped.
        deadline = time.monotonic() + 10
        checking = (
            lt.torrent_status.states.checking_files,
            lt.torrent_status.states.checking_resume_data,
        )
        while handle.status().state in checking and time.monotonic() < deadline:
            time.sleep(0.02)
        for host, port in peers:
            handle.connect_peer((host, port))
    return handle


@dataclass(frozen=True)
class TransferStatus:
    name: str
    progress: float  # 0..1
    downloaded: int
    uploaded: int
    peers: int
    seeding: bool
    error: str | None


def status(handle: Handle) -> TransferStatus:
    s = handle.status()
    err = s.errc.message() if s.errc.value() else None
    return TransferStatus(
        name=s.name,
        progress=float(s.progress),
        downloaded=int(s.total_done),
        uploaded=int(s.all_time_upload),
        peers=int(s.num_peers),
        seeding=bool(s.is_seeding),
        error=err,
    )


def wait_finished(
    handles: Sequence[Handle],
    timeout: float,
    *,
    poll: float = 0.1,
    on_poll: Callable[[list[TransferStatus]], object] | None = None,
) -> list[TransferStatus]:
    """Wait until every handle is seeding (download complete and checked).

    Raises :class:`IntegrityError` when time runs out and :class:`SessionError`
    when a torrent reports an error (a failed hash check included).
    """
    deadline = time.monotonic() + timeout
    while True:
        states = [status(h) for h in handles]
        if on_poll is not None:
            on_poll(states)
        for st in states:
            if st.error:
                raise SessionError(st.name, st.error)
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
        raise SessionError("session", f"disk writes not finished after {timeout:.0f} s")


def stop_session(session: Session, timeout: float = 10.0) -> None:
    """Flush, remove every torrent and stop (the object can then be dropped)."""
    flush(session, timeout)
    handles = session.get_torrents()
    for h in handles:
        session.remove_torrent(h)
    deadline = time.monotonic() + timeout
    while session.get_torrents() and time.monotonic() < deadline:
        session.wait_for_alert(100)
        session.pop_alerts()
    session.pause()
