"""Helpers the pack steps share: torrent options, catalogue updates, payload files."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from datetime import datetime
from pathlib import Path

from phonotheque.catalogue import torrents
from phonotheque.catalogue.store import Store
from phonotheque.errors import wrap_os_error
from phonotheque.pack.aac import parse_aac_time
from phonotheque.pack.options import PackOptions, Progress
from phonotheque.torrent import TorrentInfo, TorrentOptions
from phonotheque.workspace import Workspace


def last_timestamp(store: Store) -> datetime | None:
    value = torrents.last_aac_time(store)
    return parse_aac_time(value) if value else None


def torrent_options(options: PackOptions, name: str, ts: datetime) -> TorrentOptions:
    return TorrentOptions(
        version=options.version,
        piece_length=options.piece_length,
        name=name,
        trackers=options.trackers,
        webseeds=options.webseeds,
        creation_date=int(ts.timestamp()),
        workers=options.workers,
    )


def link(src: Path, dst: Path) -> bool:
    """Hard-link ``src`` to ``dst``; copy when linking is impossible. True if copied."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return False
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
    shutil.copyfile(src, dst)
    return True


def sha256_file(path: Path, progress: Progress | None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 2**20):
            h.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return h.hexdigest()


def built(info: TorrentInfo) -> torrents.Built:
    """What the catalogue keeps of a created torrent."""
    return torrents.Built(
        infohash_v1=info.infohash_v1, infohash_v2=info.infohash_v2,
        piece_length=info.piece_length, size=info.total_size, files=len(info.data_files),
        magnet=info.magnet(),
    )


def drop_obsolete_payloads(ws: Workspace, store: Store) -> None:
    """Delete the payload of obsolete torrents (it may hold excluded files); keep the .torrent."""
    for r in store.query("SELECT data_path FROM torrent WHERE obsolete = 1"):
        p = ws.root / r["data_path"]
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
        except OSError as exc:
            raise wrap_os_error(exc, p, writing=True) from exc
