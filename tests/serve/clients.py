"""Real BitTorrent downloaders for the seeder tests and bench: libtorrent and aria2c."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import libtorrent as lt


def libtorrent_download(torrent: Path, dest: Path, peer: tuple[str, int], timeout: float) -> float:
    """Download ``torrent`` into ``dest`` from ``peer`` only; returns seconds taken."""
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "recv_socket_buffer_size": 4 * 1024 * 1024,
        "max_out_request_queue": 1500,
        "max_queued_disk_bytes": 64 * 1024 * 1024,
        "alert_mask": 0,
    }
    ses = lt.session(settings)  # type: ignore[call-overload]
    atp = lt.load_torrent_file(str(torrent))
    atp.save_path = str(dest)
    atp.flags = (atp.flags | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
                 | lt.torrent_flags.disable_pex) & ~lt.torrent_flags.auto_managed \
        & ~lt.torrent_flags.paused  # fmt: skip
    handle = ses.add_torrent(atp)
    start = time.monotonic()
    deadline = start + timeout
    connected = 0.0
    try:
        while True:
            st = handle.status()
            if st.is_seeding:
                return time.monotonic() - start
            if time.monotonic() > deadline:
                raise TimeoutError(f"libtorrent download: {st.progress:.0%} after {timeout} s")
            if st.num_peers == 0 and time.monotonic() - connected > 1.0:
                handle.connect_peer(peer)
                connected = time.monotonic()
            time.sleep(0.02)
    finally:
        ses.pause()
        ses.remove_torrent(handle)
        del ses


def aria2c_download(torrent: Path | Sequence[Path], dest: Path, tracker_url: str,
                    timeout: float) -> float:
    """Download with aria2c, finding peers only through ``tracker_url``. Several torrents
    are downloaded side by side by one aria2c: each run costs about 3 s of aria2c's own
    one-second timers (connect, then the last announce) whatever it downloads."""
    torrents = [torrent] if isinstance(torrent, Path) else list(torrent)
    start = time.monotonic()
    subprocess.run(
        [
            "aria2c", f"--dir={dest}", "--enable-dht=false", "--enable-dht6=false",
            "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--seed-time=0",
            f"--bt-tracker={tracker_url}", "--bt-tracker-connect-timeout=5",
            "--bt-tracker-timeout=5", "--bt-tracker-interval=1",
            "--summary-interval=0", "--console-log-level=warn", "--file-allocation=none",
            "--follow-torrent=false", "--allow-overwrite=true", "--auto-save-interval=0",
            f"--max-concurrent-downloads={len(torrents)}",
            f"--bt-stop-timeout={int(timeout)}", "--quiet=true", *map(str, torrents),
        ],
        check=True,
        timeout=timeout + 5,
    )  # fmt: skip
    return time.monotonic() - start
