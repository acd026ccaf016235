"""Real libtorrent peers on 127.0.0.1 that find each other through a tracker only."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import libtorrent as lt


class Peer:
    """One libtorrent session holding one torrent; closes with the block."""

    def __init__(self, torrent: Path, save: Path, *, upload_mode: bool = False) -> None:
        self.session: Any = lt.session({  # type: ignore[call-overload]
            "listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
            "enable_upnp": False, "enable_natpmp": False, "enable_incoming_utp": False,
            "enable_outgoing_utp": False, "allow_multiple_connections_per_ip": True,
            "alert_mask": 0, "announce_to_all_trackers": True,
        })  # fmt: skip
        atp = lt.load_torrent_file(str(torrent))
        atp.save_path = str(save)
        flags = (atp.flags | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
                 | lt.torrent_flags.disable_pex) & ~lt.torrent_flags.auto_managed \
            & ~lt.torrent_flags.paused  # fmt: skip
        if upload_mode:  # never downloads: stays a leecher with nothing
            flags |= lt.torrent_flags.upload_mode
        atp.flags = flags
        self.handle = self.session.add_torrent(atp)

    def wait_seeding(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.handle.status().is_seeding:
            if time.monotonic() > deadline:
                st = self.handle.status()
                raise TimeoutError(f"download {st.progress:.0%} after {timeout} s "
                                   f"({st.num_peers} peers, tracker: {st.current_tracker!r})")
            time.sleep(0.05)

    def close(self) -> None:
        self.session.pause()
        self.session.remove_torrent(self.handle)
        del self.session

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
