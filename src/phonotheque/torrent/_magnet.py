"""Magnet links (BEP 9, with BEP 52's ``urn:btmh`` for v2 infohashes)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote


def magnet_link(
    infohash_v1: str | None, infohash_v2: str | None, name: str, trackers: Iterable[str] = ()
) -> str:
    """``magnet:?xt=urn:btih:<sha1>&xt=urn:btmh:1220<sha256>&dn=<name>&tr=<url>...``.

    ``1220`` is the multihash prefix of a 32-byte SHA-256 digest; a hybrid
    torrent carries both ``xt`` so v1-only and v2 clients can join one swarm.
    """
    parts: list[str] = []
    if infohash_v1:
        parts.append(f"xt=urn:btih:{infohash_v1}")
    if infohash_v2:
        parts.append(f"xt=urn:btmh:1220{infohash_v2}")
    parts.append("dn=" + quote(name, safe=""))
    parts.extend("tr=" + quote(t, safe="") for t in trackers)
    return "magnet:?" + "&".join(parts)
