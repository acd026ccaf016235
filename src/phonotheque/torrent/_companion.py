"""The v1 companion of a hybrid torrent: the same payload for clients that cannot read hybrids.

aria2c 1.36 computes a wrong v1 infohash for every hybrid (v1+v2) torrent (BEP 52's
own test torrent included) and so never finds a peer. The companion is the hybrid's
v1 half alone: its info dictionary without ``meta version`` and ``file tree``, and
no ``piece layers``. It keeps the hybrid's pad files (BEP 47), so its pieces are
byte for byte the hybrid's v1 pieces: nothing is hashed again, and a seeder serves
both torrents from the same folder. Its infohash differs from the hybrid's v1
infohash (the info dictionary differs), so it is a swarm of its own.
"""

from __future__ import annotations

from phonotheque.torrent._bencode import decode, encode
from phonotheque.torrent._metainfo import TorrentInfo, read_torrent

_V2_INFO_KEYS = (b"meta version", b"file tree")


def v1_companion(info: TorrentInfo) -> TorrentInfo | None:
    """The v1-only torrent of ``info``'s payload, or None unless ``info`` is hybrid."""
    if info.version != "hybrid":
        return None
    top = decode(info.metainfo, info.name)
    assert isinstance(top, dict)
    inner = top[b"info"]
    assert isinstance(inner, dict)
    v1 = {k: v for k, v in top.items() if k not in (b"info", b"piece layers")}
    v1[b"info"] = {k: v for k, v in inner.items() if k not in _V2_INFO_KEYS}
    return read_torrent(encode(v1))
