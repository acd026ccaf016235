"""Building planned data folders (links, checks, torrent) and their AAC metadata files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field

from phonotheque.atomic import write_bytes
from phonotheque.catalogue import audio_files, torrents
from phonotheque.catalogue.store import Store
from phonotheque.executors import Executor
from phonotheque.model import Reject
from phonotheque.pack.aac import item_records, meta_file_name, write_records
from phonotheque.pack.folder_job import (
    FolderJob,
    FolderResult,
    Member,
    build_folder,
    run_folder_job,
)
from phonotheque.pack.layout import EPOCH, parse_iso
from phonotheque.pack.options import PackOptions, PackReport, Progress
from phonotheque.pack.steps_common import built, sha256_file, torrent_options
from phonotheque.torrent import create_torrent, read_torrent
from phonotheque.workspace import Workspace


def build_planned(
    ws: Workspace,
    store: Store,
    options: PackOptions,
    report: PackReport,
    progress: Progress | None,
    executor: Executor | None = None,
) -> None:
    """Build every planned-but-unbuilt data folder; record each as it finishes.

    Without ``executor`` folders are built here, one after the other, with
    byte-level progress. With one, every folder is a :class:`FolderJob` run by
    a worker (a local process or a Dask worker near the storage), and this
    process only records the results (progress then moves a folder at a time).
    Either way the catalogue ends up the same: each folder is recorded in its
    own transaction, and the report lists folders and rejects in plan order.
    """
    conn = store.conn
    planned = conn.execute(
        "SELECT * FROM torrent WHERE kind = 'data' AND built = 0 ORDER BY id"
    ).fetchall()
    if not planned:
        return
    factor = 2 if options.check_sha256 else 1
    total = sum(t["size"] for t in planned) * factor
    if progress is not None:
        progress(0, total=total)
    rows = {t["id"]: t for t in planned}
    outcomes: dict[int, _Outcome] = {}
    try:
        if executor is None:
            for t in planned:
                job = folder_job(ws, store, options, t)
                outcomes[t["id"]] = record(store, t, job, build_folder(job, progress))
        else:
            jobs = (folder_job(ws, store, options, t) for t in planned)
            # the executor yields results only; keep the jobs to know their members
            sent: dict[int, FolderJob] = {}

            def remember(jobs: Iterator[FolderJob]) -> Iterator[FolderJob]:
                for job in jobs:
                    sent[job.torrent_id] = job
                    yield job

            for result in executor.map_unordered(run_folder_job, remember(jobs)):
                job = sent.pop(result.torrent_id)
                outcomes[result.torrent_id] = record(store, rows[result.torrent_id], job, result)
                if progress is not None:
                    progress(rows[result.torrent_id]["size"] * factor)
    finally:
        # in plan order, whatever order the folders finished in
        for tid in sorted(outcomes):
            outcomes[tid].apply(report)


def folder_job(ws: Workspace, store: Store, options: PackOptions, t: sqlite3.Row) -> FolderJob:
    """What a worker needs to build planned folder ``t`` (absolute root, members, options)."""
    members = store.conn.execute(
        """SELECT tf.path, tf.role, tf.size, tf.sha256, tf.audio_file_id,
                  a.path AS src, a.patch_path
           FROM torrent_file tf JOIN audio_file a ON a.id = tf.audio_file_id
           WHERE tf.torrent_id = ? ORDER BY tf.path""",
        (t["id"],),
    ).fetchall()
    ts = parse_iso(t["created_at"]) or EPOCH
    return FolderJob(
        torrent_id=t["id"],
        root=str(ws.root.absolute()),
        data_path=t["data_path"],
        torrent_path=t["torrent_path"],
        members=tuple(
            Member(m["audio_file_id"], (m["src"] if m["role"] == "audio" else m["patch_path"]) or "",
                   m["path"], m["role"], m["size"], m["sha256"])
            for m in members
        ),
        torrent=torrent_options(options, t["name"], ts),
        check_sha256=options.check_sha256,
        workers=options.workers,
    )


@dataclass
class _Outcome:
    """What one recorded folder adds to the report."""

    name: str
    rejects: list[Reject] = field(default_factory=list)
    replaced: str | None = None  # the obsolete folder this one rebuilds
    built: bool = False
    tracks: int = 0
    files: int = 0
    bytes: int = 0
    copied: int = 0

    def apply(self, report: PackReport) -> None:
        report.rejects.extend(self.rejects)
        if not self.built:
            return
        report.copied += self.copied
        if self.replaced is not None:
            report.rebuilt.append((self.replaced, self.name))
        else:
            report.new_folders.append(self.name)
        report.tracks_packed += self.tracks
        report.files_packed += self.files
        report.bytes_packed += self.bytes


def record(store: Store, t: sqlite3.Row, job: FolderJob, result: FolderResult) -> _Outcome:
    """Write what a worker built for planned folder ``t`` into the catalogue (one transaction)."""
    result.raise_error()
    conn = store.conn
    out = _Outcome(t["name"], copied=result.copied)
    # locator: the archive file, stable across runs (the folder is not)
    out.rejects = [Reject("pack", d.src, f"audio_file {d.audio_file_id}", d.problem)
                   for d in result.dropped]
    dropped = result.dropped_ids
    if result.metainfo is None:
        torrents.drop_planned(store, t["id"])
        return out
    info = read_torrent(result.metainfo)
    kept = [m for m in job.members if m.audio_file_id not in dropped]
    roots = {f.path: f.pieces_root.hex() if f.pieces_root else None for f in info.data_files}
    with store.transaction():
        if dropped:
            torrents.drop_members(store, t["id"], sorted(dropped))
        btv2_roots: list[tuple[int, str | None]] = []
        for m in kept:
            root = roots.get(m.dst)
            if m.role == "patch":
                digest, size = result.patch_hashes[m.dst]
                torrents.set_member_roots(store, t["id"], m.dst, root, digest, size)
            else:
                torrents.set_member_roots(store, t["id"], m.dst, root)
                btv2_roots.append((m.audio_file_id, root))
        audio_files.set_btv2_roots(store, btv2_roots)
        torrents.mark_built(store, t["id"], built(info))
    old = conn.execute("SELECT name FROM torrent WHERE superseded_by = ? AND kind = 'data'",
                       (t["id"],)).fetchone()
    out.replaced = old["name"] if old is not None else None
    out.built = True
    out.tracks = sum(m.role == "audio" for m in kept)
    out.files = len(kept)
    out.bytes = info.total_size
    return out


def ensure_meta_files(
    ws: Workspace, store: Store, options: PackOptions, progress: Progress | None
) -> None:
    """Every built, current data folder gets its AAC metadata file and torrent (idempotent)."""
    conn = store.conn
    todo = conn.execute(
        """SELECT d.* FROM torrent d WHERE d.kind = 'data' AND d.built = 1 AND d.obsolete = 0
             AND NOT EXISTS (SELECT 1 FROM torrent m WHERE m.describes = d.id AND m.role = 'aac_meta')
           ORDER BY d.id"""
    ).fetchall()
    for d in todo:
        name = meta_file_name(options.prefix, d["collection"], d["aac_from"], d["aac_to"])
        rows = conn.execute(
            """SELECT a.audio_file_id, a.path, a.aacid, p.path AS patch
               FROM torrent_file a LEFT JOIN torrent_file p
                 ON p.torrent_id = a.torrent_id AND p.audio_file_id = a.audio_file_id
                AND p.role = 'patch'
               WHERE a.torrent_id = ? AND a.role = 'audio' ORDER BY a.aacid""",
            (d["id"],),
        ).fetchall()
        members = [(r["audio_file_id"], r["aacid"], r["path"], r["patch"]) for r in rows]
        out = ws.torrents / name
        write_records(item_records(conn, members, d["name"]), out)
        ts = parse_iso(d["created_at"]) or EPOCH
        info = create_torrent(out, torrent_options(options, name, ts))
        write_bytes(ws.torrents / f"{name}.torrent", info.metainfo)
        digest = sha256_file(out, None)
        f = info.data_files[0]
        torrents.add_torrent(
            store,
            torrents.NewTorrent(
                kind="meta", role="aac_meta", band=d["band"], name=name,
                torrent_path=f"torrents/{name}.torrent", data_path=f"torrents/{name}", size=0,
                files=1, created_at=d["created_at"], layout=d["layout"],
                collection=d["collection"], aac_from=d["aac_from"], aac_to=d["aac_to"],
                generation=d["generation"], describes=d["id"], wave=d["wave"]),
            [torrents.Member(f.path, f.size, "aac_meta", sha256=digest,
                             pieces_root=f.pieces_root.hex() if f.pieces_root else None)],
            built(info))
