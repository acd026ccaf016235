"""The one libtorrent session wrapper: open a session, add torrents, read their state, close.

``phono seed`` (:class:`phonotheque.serve.seeder.Seeder`) runs on it, and so do
the real-client tests (their download helpers live in ``tests/``). Everything
that reaches beyond the listen address is a choice made in
:class:`SessionOptions`; nothing here writes to disk (no resume data, no DHT
state). Library code: no printing; errors become PhonoErrors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libtorrent as lt

from phonotheque import __version__
from phonotheque.errors import InputError, TorrentError
from phonotheque.torrent import TorrentInfo

Session = lt.session
Handle = lt.torrent_handle

# Started, and not queued by libtorrent's auto-manager (default_flags has both).
_ACTIVE = lt.torrent_flags.default_flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused

_STATES = {
    lt.torrent_status.states.checking_files: "checking",
    lt.torrent_status.states.checking_resume_data: "checking",
    lt.torrent_status.states.downloading_metadata: "metadata",
    lt.torrent_status.states.downloading: "missing data",
    lt.torrent_status.states.finished: "finished",
    lt.torrent_status.states.seeding: "seeding",
}


@dataclass(frozen=True)
class SessionOptions:
    """How a session talks to the network. The defaults reach nothing but ``listen``."""

    listen: str = "127.0.0.1:0"  # libtorrent's form: host:port or [v6]:port; port 0 = any
    interface: str | None = None  # bind outgoing sockets to this device/address
    dht: bool = False
    lsd: bool = False
    pex: bool = True
    upnp: bool = False  # UPnP and NAT-PMP both: they change the user's router
    utp: bool = False  # TCP only keeps loopback transfers fast and predictable
    # Tuned for uploading to many peers (libtorrent's high_performance_seed, large buffers).
    seeding: bool = False
    # Storage alerts too: needed to wait for disk writes (downloads), not for seeding.
    storage_alerts: bool = False


def _settings(o: SessionOptions) -> dict[str, Any]:
    alerts = lt.alert_category.error | lt.alert_category.status
    if o.storage_alerts:
        alerts |= lt.alert_category.storage
    s: dict[str, Any] = dict(lt.high_performance_seed()) if o.seeding else {}
    s.update(
        {
            "listen_interfaces": o.listen,
            "outgoing_interfaces": o.interface or "",
            "enable_dht": o.dht,
            "enable_lsd": o.lsd,
            "enable_upnp": o.upnp,
            "enable_natpmp": o.upnp,
            "enable_incoming_utp": o.utp,
            "enable_outgoing_utp": o.utp,
            "user_agent": f"Phonotheque/{__version__} libtorrent/{lt.__version__}",
            # many downloaders can share one address (NAT, or a test on loopback)
            "allow_multiple_connections_per_ip": True,
            # a taken port is an error (open_session), not a quiet move to port+1
            "max_retry_port_bind": 0,
            "alert_mask": alerts,
        }
    )
    if o.seeding:
        s.update(
            {
                # larger socket buffers: one fast peer on a LAN/loopback is disk-speed bound
                "send_socket_buffer_size": 4 * 1024 * 1024,
                "send_buffer_watermark": 16 * 1024 * 1024,
                "send_buffer_low_watermark": 4 * 1024 * 1024,
                "max_queued_disk_bytes": 64 * 1024 * 1024,
                # seed mode hashes each piece when first sent (SHA-1 + SHA-256 for hybrid)
                "hashing_threads": max(2, min(8, os.cpu_count() or 2)),
            }
        )
    return s


def open_session(options: SessionOptions) -> Session:
    """Start a session listening on ``options.listen``.

    libtorrent binds while the session is constructed; when the port asked for is
    taken it would listen elsewhere (the next port, or any) where no peer or tracker
    looks for it, so that is refused here. Port 0 asks for any free port.
    """
    try:
        session = lt.session(_settings(options))  # type: ignore[call-overload]  # the bindings take a dict
    except RuntimeError as exc:
        raise InputError(options.listen, f"cannot start session: {exc}") from exc
    wanted = _port(options.listen)
    got = int(session.listen_port())
    if wanted and got != wanted:
        close_session(session)
        del session
        if got:
            raise InputError(options.listen, f"port {wanted} is already in use (another program, "
                             "or another phono seed, listens on it); stop it, or choose another "
                             "port (port 0: any free port)")
        raise InputError(options.listen, "cannot listen on this address (is it one of this "
                         "host's addresses?)")
    return session


def _port(listen: str) -> int:
    """The port of libtorrent's ``host:port`` (or ``[v6]:port``) form; 0 when absent."""
    tail = listen.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def add_torrent(
    session: Session,
    info: TorrentInfo,
    save_path: Path,
    options: SessionOptions,
    *,
    seed_mode: bool,
    subject: object = None,
) -> Handle:
    """Add ``info`` with its data in ``save_path`` (the folder holding its file or folder).

    ``seed_mode`` trusts the data is complete (libtorrent hashes each piece the
    first time it uploads it); without it the data is checked first and
    whatever is missing is downloaded. DHT, LSD and PEX follow ``options``.
    ``subject`` names the torrent in errors (default: its name).
    """
    try:
        atp = lt.load_torrent_buffer(info.metainfo)
    except RuntimeError as exc:
        raise TorrentError(subject or info.name, f"libtorrent refused it: {exc}") from exc
    atp.save_path = str(save_path)
    flags = _ACTIVE
    if seed_mode:
        flags |= lt.torrent_flags.seed_mode
    if not options.dht:
        flags |= lt.torrent_flags.disable_dht
    if not options.lsd:
        flags |= lt.torrent_flags.disable_lsd
    if not options.pex:
        flags |= lt.torrent_flags.disable_pex
    atp.flags = flags
    try:
        return session.add_torrent(atp)
    except RuntimeError as exc:
        raise TorrentError(subject or info.name, f"libtorrent refused it: {exc}") from exc


def remove_torrent(session: Session, handle: Handle) -> None:
    """Stop and drop one torrent; its data stays on disk (deleting is ``phono gc``'s job)."""
    session.remove_torrent(handle)  # no delete_files flag


@dataclass(frozen=True)
class TransferStatus:
    """A snapshot of one torrent in a session."""

    name: str
    state: str  # checking, metadata, missing data, finished, seeding, paused, error
    progress: float  # 0..1 of the data present and verified (or trusted in seed mode)
    peers: int
    upload_rate: int  # payload bytes/s
    uploaded: int  # payload bytes since the torrent was added
    downloaded: int  # bytes of the data present
    seeding: bool  # complete and checked
    error: str | None


def status(handle: Handle) -> TransferStatus:
    st = handle.status()
    error = st.errc.message() if st.errc.value() else None
    state = _STATES.get(st.state, str(st.state))
    if error:
        state = "error"
    elif st.flags & lt.torrent_flags.paused:
        state = "paused"
    return TransferStatus(
        name=st.name,
        state=state,
        progress=float(st.progress),
        peers=int(st.num_peers),
        upload_rate=int(st.upload_payload_rate),
        uploaded=int(st.total_payload_upload),
        downloaded=int(st.total_done),
        seeding=bool(st.is_seeding),
        error=error,
    )


def listen_port(session: Session) -> int:
    return int(session.listen_port())


def close_session(session: Session) -> None:
    """Pause and drop every torrent; the caller then drops the session object.

    Dropping the last reference closes the sockets and joins libtorrent's
    threads. Nothing is written: stopping at any moment leaves nothing half-done.
    """
    session.pause()
    for handle in session.get_torrents():
        session.remove_torrent(handle)
