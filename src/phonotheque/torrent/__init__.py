"""A BitTorrent engine: create, read and verify v1, v2 and hybrid torrents; magnet links.

The public face is the names below (``bencode``/``bdecode`` too: trackers
speak it); the modules behind them (``_create``, ``_metainfo``, ``_verify``,
``_hashing``, ``_bencode``, ``_merkle``, ``_magnet``) are private and may
change. :mod:`phonotheque.torrent.session` (the one libtorrent session
wrapper, used by the seeder) is separate because it
needs libtorrent, which nothing here does.

The engine knows nothing of the rest of the project: it imports
:mod:`phonotheque.errors` and the version string, no stage, no catalogue. It
never writes files either: a :class:`TorrentInfo` carries its bytes
(``metainfo``), and callers write them with :mod:`phonotheque.atomic`.
"""

from phonotheque.torrent._bencode import decode as bdecode
from phonotheque.torrent._bencode import encode as bencode
from phonotheque.torrent._companion import v1_companion
from phonotheque.torrent._create import (
    TorrentOptions,
    auto_piece_length,
    content_size,
    create_torrent,
)
from phonotheque.torrent._magnet import magnet_link
from phonotheque.torrent._merkle import PiecesRoot
from phonotheque.torrent._metainfo import PAD_DIR, TorrentFile, TorrentInfo, Version, read_torrent
from phonotheque.torrent._verify import VerifyReport, content_root, verify_torrent

__all__ = [
    "PAD_DIR",
    "PiecesRoot",
    "TorrentFile",
    "TorrentInfo",
    "TorrentOptions",
    "VerifyReport",
    "Version",
    "auto_piece_length",
    "bdecode",
    "bencode",
    "content_root",
    "content_size",
    "create_torrent",
    "magnet_link",
    "read_torrent",
    "v1_companion",
    "verify_torrent",
]
