"""The album-art step of ``phono pack``: choose art per packed release, tar, torrent."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from phonotheque.atomic import write_bytes
from phonotheque.catalogue import art as art_tables
from phonotheque.catalogue import torrents
from phonotheque.catalogue.store import Store
from phonotheque.pack import art as art_mod
from phonotheque.pack.aac import aac_time, art_file_name
from phonotheque.pack.layout import EPOCH, iso, next_second
from phonotheque.pack.options import PackOptions, PackReport, Progress
from phonotheque.pack.steps_common import (
    built,
    drop_obsolete_payloads,
    last_timestamp,
    sha256_file,
    torrent_options,
)
from phonotheque.torrent import TorrentInfo, create_torrent
from phonotheque.workspace import Workspace


def pack_art(
    ws: Workspace, store: Store, options: PackOptions, report: PackReport, progress: Progress | None
) -> None:
    """Find art for newly packed releases (all with ``rescan_art``); rebuild the tar if it changed."""
    conn = store.conn
    _mark_packed_releases(conn)
    releases = _releases_to_scan(conn, options.rescan_art)
    found, rejects = art_mod.find_art(releases, ws.root, options.art_dir)
    report.rejects.extend(rejects)
    scanned = {r.release_id for r in releases}
    arts = sorted(_kept_art(conn, scanned) + found, key=lambda a: a.release_id)
    # Releases no longer packed lose their art and will be looked at again if they return.
    art_tables.record_art_scan(store, "temp.packed_release", scanned, [
        art_tables.ChosenArt(a.release_id, a.image.sha256, a.image.size, a.image.mime,
                             a.image.member, a.origin, a.image.path) for a in found])
    signature = art_mod.art_signature(arts)
    current = conn.execute(
        "SELECT * FROM torrent WHERE kind = 'art' AND obsolete = 0 AND built = 1"
    ).fetchone()
    if current is not None and store.get_meta(f"art.signature:{current['name']}") == signature:
        return
    if current is None and not arts:
        return
    tar = _write_art_torrent(ws, store, options, arts, report) if arts else None
    with store.transaction():
        new_id = _record_art_torrent(store, tar, signature) if tar is not None else None
        if current is not None:
            torrents.mark_obsolete(store, current["id"], new_id)
    drop_obsolete_payloads(ws, store)


def _mark_packed_releases(conn: sqlite3.Connection) -> None:
    """temp.packed_release: releases with a track in a current, built data torrent."""
    conn.execute("DROP TABLE IF EXISTS temp.packed_release")
    conn.execute(
        """CREATE TEMP TABLE packed_release AS
           SELECT DISTINCT tr.release_id AS id FROM torrent t
           JOIN torrent_file tf ON tf.torrent_id = t.id AND tf.role = 'audio'
           JOIN audio_file a ON a.id = tf.audio_file_id
           JOIN track tr ON tr.id = a.track_id
           WHERE t.kind = 'data' AND t.obsolete = 0 AND t.built = 1
             AND tr.release_id IS NOT NULL"""
    )


def _releases_to_scan(conn: sqlite3.Connection, rescan: bool) -> list[art_mod.ReleaseSources]:
    """Packed releases to look for art (not scanned before, unless ``rescan``), by id."""
    scan_sql = "SELECT r.id, r.mbid, r.art_path FROM release r JOIN temp.packed_release p " \
               "ON p.id = r.id"
    if not rescan:
        scan_sql += " WHERE r.id NOT IN (SELECT release_id FROM art_scan)"
    releases = []
    for r in conn.execute(scan_sql + " ORDER BY r.id").fetchall():
        audio = tuple(
            x[0] for x in conn.execute(
                """SELECT s.path FROM source_audio s JOIN track t ON t.id = s.track_id
                   WHERE t.release_id = ? ORDER BY s.path LIMIT 4""", (r["id"],)
            )
        )
        releases.append(art_mod.ReleaseSources(r["id"], r["mbid"], r["art_path"], audio))
    return releases


def _kept_art(conn: sqlite3.Connection, scanned: set[int]) -> list[art_mod.ReleaseArt]:
    """Art chosen by earlier runs for packed releases not scanned this time."""
    return [
        art_mod.ReleaseArt(
            r["release_id"], r["mbid"],
            art_mod.Image(r["sha256"], r["mime"], r["size"], r["source"],
                          r["origin"] == "embedded"),
            r["origin"],
        )
        for r in conn.execute(
            """SELECT ra.*, rel.mbid FROM release_art ra JOIN release rel ON rel.id = ra.release_id
               JOIN temp.packed_release p ON p.id = ra.release_id ORDER BY ra.release_id"""
        )
        if r["release_id"] not in scanned
    ]


@dataclass(frozen=True)
class _ArtTar:
    """An art tar written under torrents/, with its torrent."""

    name: str
    ts: datetime
    stamp: str
    info: TorrentInfo
    sha256: str


def _write_art_torrent(ws: Workspace, store: Store, options: PackOptions,
                       arts: list[art_mod.ReleaseArt], report: PackReport) -> _ArtTar:
    """Write the art tar and its .torrent, named after the next AAC timestamp."""
    last = last_timestamp(store)
    candidates = [t for t in (options.not_before,) if t is not None]
    if last is not None:
        candidates.append(next_second(last))
    ts = max(candidates) if candidates else EPOCH
    stamp = aac_time(ts)
    name = art_file_name(options.prefix, stamp)
    out = ws.torrents / name
    report.art_images = art_mod.write_art_tar(arts, out)
    info = create_torrent(out, torrent_options(options, name, ts))
    write_bytes(ws.torrents / f"{name}.torrent", info.metainfo)
    digest = sha256_file(out, None)
    report.art_torrent = name
    return _ArtTar(name, ts, stamp, info, digest)


def _record_art_torrent(store: Store, tar: _ArtTar, signature: str) -> int:
    """Add the art torrent to the catalogue (inside the caller's transaction); its id."""
    f = tar.info.data_files[0]
    new_id = torrents.add_torrent(
        store,
        torrents.NewTorrent(
            kind="art", role="art", name=tar.name, torrent_path=f"torrents/{tar.name}.torrent",
            data_path=f"torrents/{tar.name}", size=0, files=1, created_at=iso(tar.ts),
            aac_from=tar.stamp, aac_to=tar.stamp),
        [torrents.Member(f.path, f.size, "art", sha256=tar.sha256,
                         pieces_root=f.pieces_root.hex() if f.pieces_root else None)],
        built(tar.info))
    store.set_meta(f"art.signature:{tar.name}", signature)
    return new_id
