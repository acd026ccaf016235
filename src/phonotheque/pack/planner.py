"""Planning a pack run: which folders to build (new and rebuilt), their names and members.

The plan is recorded in the catalogue (``torrent`` rows with ``built = 0`` and their
``torrent_file`` rows) in one transaction before anything is hashed, so an
interrupted run resumes exactly this plan.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from phonotheque.catalogue import torrents
from phonotheque.catalogue.store import Store
from phonotheque.pack.aac import aac_time, data_collection, data_folder_name, make_aacid
from phonotheque.pack.bands import Caps, Member, plan_folders
from phonotheque.pack.layout import (
    EPOCH,
    ReadableEntry,
    iso,
    next_second,
    parse_iso,
    readable_layout,
)
from phonotheque.pack.options import PackOptions, PackReport
from phonotheque.pack.steps_common import last_timestamp
from phonotheque.workspace import Workspace

DEFAULT_PATCH_SUFFIX = ".zstdpatch"


@dataclass
class Planned:
    band: int
    members: list[Member]
    replaces: int | None = None  # torrent id of the folder this rebuilds


def member(ws: Workspace, r: sqlite3.Row) -> Member:
    nfiles, nbytes = 1, int(r["size"])
    if r["patch_path"]:
        try:
            nbytes += (ws.root / r["patch_path"]).stat().st_size
            nfiles = 2
        except OSError:
            pass  # reported when the folder is built
    return Member(r["audio_file_id"], r["track_id"], r["band"], r["rank"], nfiles, nbytes)


def plan(ws: Workspace, store: Store, options: PackOptions, report: PackReport) -> None:
    conn = store.conn
    caps = Caps(options.max_files, options.max_bytes)
    folders: list[Planned] = []
    dirty = conn.execute(
        """SELECT t.id, t.name, t.band FROM torrent t
           WHERE t.kind = 'data' AND t.obsolete = 0 AND t.built = 1 AND EXISTS (
             SELECT 1 FROM torrent_file tf WHERE tf.torrent_id = t.id AND tf.role = 'audio'
               AND NOT EXISTS (SELECT 1 FROM eligible e
                               WHERE e.audio_file_id = tf.audio_file_id AND e.sha256 = tf.sha256))
           ORDER BY t.band, t.aac_from, t.id"""
    ).fetchall()
    for d in dirty:
        rows = conn.execute(
            """SELECT e.* FROM torrent_file tf
               JOIN eligible e ON e.audio_file_id = tf.audio_file_id AND e.sha256 = tf.sha256
               WHERE tf.torrent_id = ? AND tf.role = 'audio'
               ORDER BY e.band, e.rank, e.track_id""",
            (d["id"],),
        ).fetchall()
        folders.append(Planned(d["band"], [member(ws, r) for r in rows], d["id"]))
    fresh = (
        member(ws, r)
        for r in conn.execute(
            """SELECT e.* FROM eligible e WHERE NOT EXISTS (
                 SELECT 1 FROM torrent_file tf JOIN torrent t ON t.id = tf.torrent_id
                 WHERE tf.audio_file_id = e.audio_file_id AND tf.sha256 = e.sha256
                   AND tf.role = 'audio' AND t.kind = 'data' AND t.obsolete = 0)
               ORDER BY e.band, e.rank, e.track_id"""
        )
    )
    folders.extend(Planned(band, members) for band, members in plan_folders(fresh, caps))
    if not folders:
        return
    # Most popular band first; within a band, rebuilt folders before new ones.
    folders.sort(key=lambda f: (f.band, f.replaces is None))

    ids = [m.audio_file_id for f in folders for m in f.members]
    newest = max_created_at(conn, ids)
    candidates = [t for t in (newest, options.not_before) if t is not None]
    if dirty:
        ex = parse_iso(store.last_exclusion_time())
        if ex:
            candidates.append(ex)
    last = last_timestamp(store)
    if last is not None:
        candidates.append(next_second(last))
    base = max(candidates) if candidates else EPOCH
    generation = int(store.scalar("SELECT coalesce(max(generation), 0) FROM torrent")) + 1
    report.generation = generation

    with store.transaction():
        k = 0
        for f in folders:
            new_id = None
            if f.members:
                ts = base + timedelta(seconds=k)
                k += 1
                new_id = insert_planned(ws, store, options, f, ts, generation)
            if f.replaces is not None:
                torrents.mark_obsolete(store, f.replaces, new_id)
                if new_id is None:
                    gone = conn.execute("SELECT name FROM torrent WHERE id = ?", (f.replaces,))
                    report.rebuilt.append((gone.fetchone()[0], None))


def refresh_planned_paths(store: Store) -> int:
    """Re-derive the readable paths of planned, unbuilt folders; return how many files moved.

    A plan is recorded before anything is built, and an interrupted run resumes
    it as recorded. A plan whose names cannot be built (names planned by an older
    phono that did not budget for sidecar suffixes: "File name too long") would
    then fail on every run; deriving its names again with the current rules lets
    a re-run recover, and changes nothing for a plan that was fine.
    """
    conn = store.conn
    moved = 0
    for t in conn.execute(
        "SELECT id, name FROM torrent WHERE kind = 'data' AND built = 0 AND layout = 'readable' "
        "ORDER BY id"
    ).fetchall():
        rows = conn.execute(
            """SELECT tf.path, tf.audio_file_id, a.track_id FROM torrent_file tf
               JOIN audio_file a ON a.id = tf.audio_file_id
               LEFT JOIN selection s ON s.track_id = a.track_id
               WHERE tf.torrent_id = ? AND tf.role = 'audio'
               ORDER BY s.band, s.rank, a.track_id""",
            (t["id"],),
        ).fetchall()
        members = [Member(r["audio_file_id"], r["track_id"], 0, 0, 1, 0) for r in rows]
        paths = readable_paths(conn, members, t["name"])
        renames: dict[str, str] = {}
        for r in rows:
            old, new = r["path"], paths[r["audio_file_id"]]
            if old == new:
                continue
            renames[old] = new
            for (sidecar,) in conn.execute(
                "SELECT path FROM torrent_file WHERE torrent_id = ? AND audio_file_id = ? "
                "AND role != 'audio'", (t["id"], r["audio_file_id"]),
            ).fetchall():
                if sidecar.startswith(old):
                    renames[sidecar] = new + sidecar[len(old):]
        torrents.rename_members(store, t["id"], renames)
        moved += len(renames)
    return moved


def max_created_at(conn: sqlite3.Connection, ids: list[int]) -> datetime | None:
    newest: datetime | None = None
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        value = conn.execute(
            f"SELECT max(created_at) FROM audio_file WHERE id IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchone()[0]
        ts = parse_iso(value)
        if ts is not None and (newest is None or ts > newest):
            newest = ts
    return newest


def readable_paths(conn: sqlite3.Connection, members: list[Member],
                   folder: str = "") -> dict[int, str]:
    ids = [m.audio_file_id for m in members]
    info: dict[int, sqlite3.Row] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for r in conn.execute(
            f"""SELECT a.id, a.track_id, a.path, a.container, t.title, t.disc, t.position,
                       coalesce(r.artist_credit, t.artist_credit) AS artist, r.title AS release,
                       (SELECT max(disc) FROM track t2 WHERE t2.release_id = t.release_id)
                         AS max_disc
                FROM audio_file a JOIN track t ON t.id = a.track_id
                LEFT JOIN release r ON r.id = t.release_id
                WHERE a.id IN ({','.join('?' * len(chunk))})""",
            chunk,
        ):
            info[r["id"]] = r
    entries = []
    for m in members:
        r = info[m.audio_file_id]
        ext = Path(r["path"]).suffix or (f".{r['container']}" if r["container"] else "")
        entries.append(
            ReadableEntry(
                track_id=r["track_id"], artist=r["artist"], release=r["release"],
                title=r["title"], disc=r["disc"], position=r["position"],
                multi_disc=(r["max_disc"] or 1) > 1, ext=ext,
            )
        )
    by_track = readable_layout(entries, folder)
    return {m.audio_file_id: by_track[m.track_id] for m in members}


def insert_planned(
    ws: Workspace,
    store: Store,
    options: PackOptions,
    f: Planned,
    ts: datetime,
    generation: int,
) -> int:
    collection = data_collection(options.collection, f.band)
    stamp = aac_time(ts)
    aac = options.layout == "aac"
    name = data_folder_name(options.prefix, collection, stamp, stamp, aac)
    conn = store.conn
    readable = None if aac else readable_paths(conn, f.members, name)
    files: list[torrents.Member] = []
    total = 0
    ids = [m.audio_file_id for m in f.members]
    rows: dict[int, sqlite3.Row] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for r in conn.execute(
            "SELECT id, track_id, size, sha256, patch_path FROM audio_file "
            f"WHERE id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            rows[r["id"]] = r
    for m in f.members:
        r = rows[m.audio_file_id]
        aacid = str(make_aacid(collection, stamp, str(r["track_id"]), bytes.fromhex(r["sha256"])))
        path = aacid if readable is None else readable[m.audio_file_id]
        files.append(torrents.Member(path, r["size"], "audio", m.audio_file_id, r["sha256"],
                                     aacid=aacid))
        total += r["size"]
        if r["patch_path"]:
            suffix = Path(r["patch_path"]).suffix or DEFAULT_PATCH_SUFFIX
            psize = m.nbytes - r["size"] if m.nfiles == 2 else 0
            files.append(torrents.Member(path + suffix, psize, "patch", m.audio_file_id,
                                         aacid=aacid))
            total += psize
    return torrents.add_torrent(store, torrents.NewTorrent(
        kind="data", role="audio", band=f.band, name=name, torrent_path=f"torrents/{name}.torrent",
        data_path=f"torrents/{name}", size=total, files=len(files), created_at=iso(ts),
        layout=options.layout, collection=collection, aac_from=stamp, aac_to=stamp,
        generation=generation), files)
