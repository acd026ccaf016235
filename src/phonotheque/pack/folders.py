"""Building planned data folders (links, checks, torrent) and their AAC metadata files."""

from __future__ import annotations

import os
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from phonotheque.atomic import atomic_path
from phonotheque.catalogue.store import Store
from phonotheque.errors import wrap_os_error
from phonotheque.model import Reject
from phonotheque.pack.layout import EPOCH, meta_file_name, parse_iso
from phonotheque.pack.options import PackOptions, PackReport, Progress
from phonotheque.pack.steps_common import link, mark_built, sha256_file, torrent_options
from phonotheque.pack.torrent import create_torrent, write_torrent
from phonotheque.workspace import Workspace


def build_planned(
    ws: Workspace,
    store: Store,
    options: PackOptions,
    report: PackReport,
    progress: Progress | None,
) -> None:
    conn = store.conn
    planned = conn.execute(
        "SELECT * FROM torrent WHERE kind = 'data' AND built = 0 ORDER BY id"
    ).fetchall()
    if not planned:
        return
    total = sum(t["size"] for t in planned) * (2 if options.check_sha256 else 1)
    if progress is not None:
        progress(0, total=total)
    for t in planned:
        build_one(ws, store, options, t, report, progress)


def build_one(
    ws: Workspace,
    store: Store,
    options: PackOptions,
    t: sqlite3.Row,
    report: PackReport,
    progress: Progress | None,
) -> None:
    conn = store.conn
    name = t["name"]
    members = conn.execute(
        """SELECT tf.path, tf.role, tf.size, tf.sha256, tf.audio_file_id,
                  a.path AS src, a.patch_path
           FROM torrent_file tf JOIN audio_file a ON a.id = tf.audio_file_id
           WHERE tf.torrent_id = ? ORDER BY tf.path""",
        (t["id"],),
    ).fetchall()
    dropped: set[int] = set()  # audio_file ids left out (missing or changed files)
    patch_hash: dict[str, tuple[str, int]] = {}
    copied = 0
    final = ws.root / t["data_path"]
    ts = parse_iso(t["created_at"]) or EPOCH
    with atomic_path(final) as tmp:
        tmp.mkdir()

        def place(m: sqlite3.Row) -> tuple[sqlite3.Row, str | None, bool]:
            rel = m["src"] if m["role"] == "audio" else m["patch_path"]
            parts = Path(rel).parts
            if Path(rel).is_absolute() or ".." in parts or not parts:
                # The catalogue says files live under the workspace; anything else
                # would put a file from elsewhere on the machine into a torrent.
                return m, "path is not inside the workspace", False
            src = ws.root / rel
            try:
                size = src.stat().st_size
            except OSError as exc:
                return m, f"{m['role']} file unreadable: {exc.strerror or exc}", False
            if m["role"] == "audio" and size != m["size"]:
                return m, f"size {size} differs from the catalogue's {m['size']}", False
            dst = tmp.joinpath(*m["path"].split("/"))
            try:
                was_copied = link(src, dst)
            except OSError as exc:
                raise wrap_os_error(exc, dst) from exc
            if options.check_sha256 or m["role"] == "patch":
                digest = sha256_file(dst, progress if m["role"] == "audio" else None)
                if m["role"] == "audio" and digest != m["sha256"]:
                    dst.unlink()
                    return m, "content differs from the catalogue's sha256 (changed after the audio stage)", False
                if m["role"] == "patch":
                    patch_hash[m["path"]] = (digest, size)
            return m, None, was_copied

        with ThreadPoolExecutor(max_workers=options.workers or min(8, os.cpu_count() or 1)) as pool:
            for m, problem, was_copied in pool.map(place, members):
                copied += was_copied
                if problem is not None:
                    rel = m["src"] if m["role"] == "audio" else m["patch_path"]
                    # locator: the archive file, stable across runs (the folder is not)
                    report.rejects.append(
                        Reject("pack", rel, f"audio_file {m['audio_file_id']}", problem))
                    dropped.add(m["audio_file_id"])
        # A file and its patch travel together: drop both when either is bad.
        for m in members:
            if m["audio_file_id"] in dropped:
                tmp.joinpath(*m["path"].split("/")).unlink(missing_ok=True)
        kept = [m for m in members if m["audio_file_id"] not in dropped]
        if not kept:
            info = None
        else:
            info = create_torrent(
                tmp, torrent_options(options, name, ts),
                progress=(lambda n: progress(n)) if progress is not None else None,
            )
            write_torrent(info, ws.root / t["torrent_path"])
    if info is None:
        shutil.rmtree(final, ignore_errors=True)
        with store.transaction():
            conn.execute("DELETE FROM torrent_file WHERE torrent_id = ?", (t["id"],))
            conn.execute("UPDATE torrent SET superseded_by = NULL WHERE superseded_by = ?", (t["id"],))
            conn.execute("DELETE FROM torrent WHERE id = ?", (t["id"],))
        return
    roots = {f.path: f.pieces_root.hex() if f.pieces_root else None for f in info.data_files}
    with store.transaction():
        if dropped:
            conn.executemany(
                "DELETE FROM torrent_file WHERE torrent_id = ? AND audio_file_id = ?",
                [(t["id"], i) for i in sorted(dropped)],
            )
        for m in kept:
            root = roots.get(m["path"])
            if m["role"] == "patch":
                digest, size = patch_hash[m["path"]]
                conn.execute(
                    "UPDATE torrent_file SET pieces_root = ?, sha256 = ?, size = ? "
                    "WHERE torrent_id = ? AND path = ?",
                    (root, digest, size, t["id"], m["path"]),
                )
            else:
                conn.execute(
                    "UPDATE torrent_file SET pieces_root = ? WHERE torrent_id = ? AND path = ?",
                    (root, t["id"], m["path"]),
                )
                conn.execute(
                    "UPDATE audio_file SET btv2_root = ? WHERE id = ?", (root, m["audio_file_id"])
                )
        mark_built(conn, t["id"], info)
    old = conn.execute("SELECT name FROM torrent WHERE superseded_by = ? AND kind = 'data'",
                       (t["id"],)).fetchone()
    if old is not None:
        report.rebuilt.append((old["name"], name))
    else:
        report.new_folders.append(name)
    report.tracks_packed += sum(m["role"] == "audio" for m in kept)
    report.files_packed += len(kept)
    report.bytes_packed += info.total_size
    report.copied += copied


def ensure_meta_files(
    ws: Workspace, store: Store, options: PackOptions, progress: Progress | None
) -> None:
    """Every built, current data folder gets its AAC metadata file and torrent (idempotent)."""
    from phonotheque.publish.aac import item_records, write_records

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
        write_torrent(info, ws.torrents / f"{name}.torrent")
        digest = sha256_file(out, None)
        with store.transaction():
            cur = conn.execute(
                """INSERT INTO torrent(kind, role, band, name, torrent_path, data_path, size,
                       files, created_at, layout, collection, aac_from, aac_to, generation,
                       describes, wave, built)
                   VALUES ('meta', 'aac_meta', ?, ?, ?, ?, 0, 1, ?, ?, ?, ?, ?, ?, ?, ?, 0)""",
                (d["band"], name, f"torrents/{name}.torrent", f"torrents/{name}",
                 d["created_at"], d["layout"], d["collection"], d["aac_from"], d["aac_to"],
                 d["generation"], d["id"], d["wave"]),
            )
            mid = int(cur.lastrowid or 0)
            f = info.data_files[0]
            conn.execute(
                """INSERT INTO torrent_file(torrent_id, path, size, sha256, pieces_root, role)
                   VALUES (?, ?, ?, ?, ?, 'aac_meta')""",
                (mid, f.path, f.size, digest, f.pieces_root.hex() if f.pieces_root else None),
            )
            mark_built(conn, mid, info)
