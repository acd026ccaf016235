"""``phono pack``: archived files -> data folders by popularity band -> one torrent each.

What goes in: every track whose audio file is finished (ledger ``success``),
selected and not excluded. Folders hold one band each (most popular band
first), in rank order, capped by file count and bytes (:mod:`.bands`); each
becomes a torrent (hybrid v1+v2 by default) plus, in the AAC layout, an AAC
metadata file with its own torrent. Album art goes into one tar with its own
torrent (:mod:`.art`).

Folders are immutable once built. A later run
* puts newly finished files into new folders;
* *rebuilds* a folder when one of its files is no longer eligible (an exclusion
  was added, the track was deselected or re-encoded): the remaining files go
  into a new folder, the old torrent is marked ``obsolete`` (``superseded_by``
  the new one) and its payload is deleted.

Every run that creates folders is a *generation* with its own timestamps, which
only ever grow (AAC). Nothing depends on the wall clock: a generation's time is
the newest ``audio_file.created_at`` of its files (or the newest exclusion for a
rebuild), at least one second after everything packed before; folder *k* of a
generation gets that time + *k* seconds. So the same catalogue packs to the same
bytes.

Crash safety: a run first records its whole plan (folder names, timestamps,
members) in one transaction, then builds folder after folder (payload built
under a temporary name and renamed, ``.torrent`` written atomically, catalogue
row marked ``built`` last). An interrupted run resumes the recorded plan, so it
ends with exactly the bytes an uninterrupted run would have produced.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from phonotheque.atomic import atomic_path, sweep_temporaries
from phonotheque.catalogue.store import Store
from phonotheque.errors import InputError, wrap_os_error
from phonotheque.model import Reject
from phonotheque.pack import art as art_mod
from phonotheque.pack.bands import Caps, Member, plan_folders
from phonotheque.pack.layout import (
    EPOCH,
    ReadableEntry,
    aac_time,
    art_file_name,
    check_identifier,
    data_collection,
    data_folder_name,
    iso,
    make_aacid,
    meta_file_name,
    next_second,
    parse_aac_time,
    parse_iso,
    readable_layout,
)
from phonotheque.pack.torrent import TorrentInfo, TorrentOptions, create_torrent, write_torrent
from phonotheque.workspace import Workspace

Progress = Callable[..., object]
Layout = Literal["aac", "readable"]
DEFAULT_PATCH_SUFFIX = ".zstdpatch"


@dataclass(frozen=True)
class PackOptions:
    """How to pack. ``layout``, ``prefix`` and ``collection`` are fixed once torrents exist."""

    max_files: int = 60_000
    max_bytes: int = 100 * 10**9
    layout: Layout = "aac"
    prefix: str = "phonotheque"
    collection: str = "music"
    piece_length: int | None = None
    version: Literal["1", "2", "hybrid"] = "hybrid"
    trackers: tuple[str, ...] = ()
    webseeds: tuple[str, ...] = ()
    art: bool = True
    art_dir: Path | None = None
    rescan_art: bool = False  # look for art of every packed release, not only new ones
    check_sha256: bool = True
    workers: int | None = None
    # Earliest timestamp for a new generation (UTC); None: derived from the catalogue.
    not_before: datetime | None = None

    def __post_init__(self) -> None:
        Caps(self.max_files, self.max_bytes)
        check_identifier(self.prefix, "prefix")
        check_identifier(self.collection, "collection")
        if self.layout not in ("aac", "readable"):
            raise InputError(self.layout, "layout must be 'aac' or 'readable'")

    def to_json(self) -> str:
        d = asdict(self)
        d["art_dir"] = str(self.art_dir) if self.art_dir else None
        d["not_before"] = iso(self.not_before) if self.not_before else None
        d["rescan_art"] = False  # a one-off request, not a setting later runs inherit
        return orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode()

    @classmethod
    def from_json(cls, text: str) -> PackOptions:
        d: dict[str, Any] = orjson.loads(text)
        d["art_dir"] = Path(d["art_dir"]) if d.get("art_dir") else None
        d["not_before"] = parse_iso(d.get("not_before"))
        d["trackers"] = tuple(d.get("trackers") or ())
        d["webseeds"] = tuple(d.get("webseeds") or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class PackReport:
    eligible: int = 0
    new_folders: list[str] = field(default_factory=list)
    rebuilt: list[tuple[str, str | None]] = field(default_factory=list)  # (old, new or None)
    tracks_packed: int = 0  # archived tracks put into folders by this run
    files_packed: int = 0  # files in those folders (tracks and their reconstruction patches)
    bytes_packed: int = 0
    copied: int = 0  # files copied because hard links were not possible
    rejects: list[Reject] = field(default_factory=list)
    art_torrent: str | None = None
    art_images: int = 0
    generation: int | None = None
    resumed: bool = False
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.new_folders or self.rebuilt or self.art_torrent)


# Tracks that may be packed. TEMP: lives only in this connection.
_ELIGIBLE = """
CREATE TEMP VIEW IF NOT EXISTS eligible AS
SELECT a.id AS audio_file_id, a.track_id, a.path, a.size, a.sha256, a.patch_path,
       a.created_at, s.band, s.rank
FROM audio_file a
JOIN selection s ON s.track_id = a.track_id
JOIN ledger l ON l.track_id = a.track_id AND l.status = 'success'
JOIN track t ON t.id = a.track_id AND t.excluded = 0
"""

_SETTINGS_KEYS = ("layout", "prefix", "collection")


def pack(
    ws: Workspace, options: PackOptions | None = None, progress: Progress | None = None
) -> PackReport:
    """Pack every eligible file not yet in a current torrent; rebuild folders that lost files."""
    options = options or PackOptions()
    t0 = time.monotonic()
    report = PackReport()
    sweep_temporaries(ws.torrents)
    with ws.store() as store:
        _check_settings(store, options)
        conn = store.conn
        conn.execute(_ELIGIBLE)
        report.eligible = int(store.scalar("SELECT count(*) FROM eligible"))
        planned = store.scalar("SELECT count(*) FROM torrent WHERE kind = 'data' AND built = 0")
        if planned:
            report.resumed = True
        else:
            _plan(ws, store, options, report)
        _build_planned(ws, store, options, report, progress)
        _ensure_meta_files(ws, store, options, progress)
        _drop_obsolete_payloads(ws, store)
        if options.art:
            _pack_art(ws, store, options, report, progress)
        if report.rejects:
            store.add_rejects(report.rejects)
        with store.transaction():
            store.set_meta("pack.options", options.to_json())
    report.seconds = time.monotonic() - t0
    return report


def stored_options(ws: Workspace) -> PackOptions | None:
    """The options of the last ``phono pack`` in this workspace (release reuses them)."""
    with ws.store(readonly=True) as store:
        text = store.get_meta("pack.options")
    return PackOptions.from_json(text) if text else None


# -- settings -----------------------------------------------------------------


def _check_settings(store: Store, options: PackOptions) -> None:
    text = store.get_meta("pack.settings")
    mine = {k: getattr(options, k) for k in _SETTINGS_KEYS}
    active = store.scalar(
        "SELECT count(*) FROM torrent WHERE kind = 'data' AND obsolete = 0"
    )
    if text and active:
        old = orjson.loads(text)
        for k in _SETTINGS_KEYS:
            if old.get(k) != mine[k]:
                raise InputError(
                    f"--{k} {mine[k]}",
                    f"this workspace was packed with {k} {old.get(k)!r}; "
                    "folders are immutable, so every pack of one archive must use the same "
                    f"{k}",
                )
    with store.transaction():
        store.set_meta("pack.settings", orjson.dumps(mine, option=orjson.OPT_SORT_KEYS).decode())


# -- planning -----------------------------------------------------------------


@dataclass
class _Planned:
    band: int
    members: list[Member]
    replaces: int | None = None  # torrent id of the folder this rebuilds


def _member(ws: Workspace, r: sqlite3.Row) -> Member:
    nfiles, nbytes = 1, int(r["size"])
    if r["patch_path"]:
        try:
            nbytes += (ws.root / r["patch_path"]).stat().st_size
            nfiles = 2
        except OSError:
            pass  # reported when the folder is built
    return Member(r["audio_file_id"], r["track_id"], r["band"], r["rank"], nfiles, nbytes)


def _last_timestamp(conn: sqlite3.Connection) -> datetime | None:
    row = conn.execute("SELECT max(aac_to) FROM torrent WHERE aac_to IS NOT NULL").fetchone()
    return parse_aac_time(row[0]) if row and row[0] else None


def _plan(ws: Workspace, store: Store, options: PackOptions, report: PackReport) -> None:
    conn = store.conn
    caps = Caps(options.max_files, options.max_bytes)
    folders: list[_Planned] = []
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
        folders.append(_Planned(d["band"], [_member(ws, r) for r in rows], d["id"]))
    fresh = (
        _member(ws, r)
        for r in conn.execute(
            """SELECT e.* FROM eligible e WHERE NOT EXISTS (
                 SELECT 1 FROM torrent_file tf JOIN torrent t ON t.id = tf.torrent_id
                 WHERE tf.audio_file_id = e.audio_file_id AND tf.sha256 = e.sha256
                   AND tf.role = 'audio' AND t.kind = 'data' AND t.obsolete = 0)
               ORDER BY e.band, e.rank, e.track_id"""
        )
    )
    folders.extend(_Planned(band, members) for band, members in plan_folders(fresh, caps))
    if not folders:
        return
    # Most popular band first; within a band, rebuilt folders before new ones.
    folders.sort(key=lambda f: (f.band, f.replaces is None))

    ids = [m.audio_file_id for f in folders for m in f.members]
    newest = _max_created_at(conn, ids)
    candidates = [t for t in (newest, options.not_before) if t is not None]
    if dirty:
        ex = parse_iso(store.scalar("SELECT max(added_at) FROM exclusion"))
        if ex:
            candidates.append(ex)
    last = _last_timestamp(conn)
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
                new_id = _insert_planned(ws, conn, options, f, ts, generation)
            if f.replaces is not None:
                _obsolete(conn, f.replaces, new_id)
                if new_id is None:
                    gone = conn.execute("SELECT name FROM torrent WHERE id = ?", (f.replaces,))
                    report.rebuilt.append((gone.fetchone()[0], None))


def _max_created_at(conn: sqlite3.Connection, ids: list[int]) -> datetime | None:
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


def _obsolete(conn: sqlite3.Connection, torrent_id: int, superseded_by: int | None) -> None:
    conn.execute(
        "UPDATE torrent SET obsolete = 1, superseded_by = ? WHERE id = ? OR describes = ?",
        (superseded_by, torrent_id, torrent_id),
    )


def _readable_paths(conn: sqlite3.Connection, members: list[Member]) -> dict[int, str]:
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
    by_track = readable_layout(entries)
    return {m.audio_file_id: by_track[m.track_id] for m in members}


def _insert_planned(
    ws: Workspace,
    conn: sqlite3.Connection,
    options: PackOptions,
    f: _Planned,
    ts: datetime,
    generation: int,
) -> int:
    collection = data_collection(options.collection, f.band)
    stamp = aac_time(ts)
    aac = options.layout == "aac"
    name = data_folder_name(options.prefix, collection, stamp, stamp, aac)
    readable = None if aac else _readable_paths(conn, f.members)
    files: list[tuple[Any, ...]] = []
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
        files.append((path, m.audio_file_id, r["size"], r["sha256"], "audio", aacid))
        total += r["size"]
        if r["patch_path"]:
            suffix = Path(r["patch_path"]).suffix or DEFAULT_PATCH_SUFFIX
            psize = m.nbytes - r["size"] if m.nfiles == 2 else 0
            files.append((path + suffix, m.audio_file_id, psize, None, "patch", aacid))
            total += psize
    cur = conn.execute(
        """INSERT INTO torrent(kind, role, band, name, torrent_path, data_path, size, files,
               created_at, layout, collection, aac_from, aac_to, generation, built)
           VALUES ('data', 'audio', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)""",
        (f.band, name, f"torrents/{name}.torrent", f"torrents/{name}", total, len(files),
         iso(ts), options.layout, collection, stamp, stamp, generation),
    )
    tid = int(cur.lastrowid or 0)
    conn.executemany(
        """INSERT INTO torrent_file(torrent_id, path, audio_file_id, size, sha256, role, aacid)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        [(tid, *row) for row in files],
    )
    return tid


# -- building -----------------------------------------------------------------


def _torrent_options(options: PackOptions, name: str, ts: datetime) -> TorrentOptions:
    return TorrentOptions(
        version=options.version,
        piece_length=options.piece_length,
        name=name,
        trackers=options.trackers,
        webseeds=options.webseeds,
        creation_date=int(ts.timestamp()),
        workers=options.workers,
    )


def _link(src: Path, dst: Path) -> bool:
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


def _sha256_file(path: Path, progress: Progress | None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 2**20):
            h.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return h.hexdigest()


def _build_planned(
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
        _build_one(ws, store, options, t, report, progress)


def _build_one(
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
                was_copied = _link(src, dst)
            except OSError as exc:
                raise wrap_os_error(exc, dst) from exc
            if options.check_sha256 or m["role"] == "patch":
                digest = _sha256_file(dst, progress if m["role"] == "audio" else None)
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
                tmp, _torrent_options(options, name, ts),
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
        _mark_built(conn, t["id"], info)
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


def _mark_built(conn: sqlite3.Connection, torrent_id: int, info: TorrentInfo) -> None:
    conn.execute(
        """UPDATE torrent SET built = 1, infohash_v1 = ?, infohash_v2 = ?, piece_length = ?,
               size = ?, files = ?, magnet = ? WHERE id = ?""",
        (info.infohash_v1, info.infohash_v2, info.piece_length, info.total_size,
         len(info.data_files), info.magnet(), torrent_id),
    )


# -- AAC metadata files ---------------------------------------------------------


def _ensure_meta_files(
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
        info = create_torrent(out, _torrent_options(options, name, ts))
        write_torrent(info, ws.torrents / f"{name}.torrent")
        digest = _sha256_file(out, None)
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
            _mark_built(conn, mid, info)


# -- obsolete payloads ----------------------------------------------------------


def _drop_obsolete_payloads(ws: Workspace, store: Store) -> None:
    """Delete the payload of obsolete torrents (it may hold excluded files); keep the .torrent."""
    for r in store.query("SELECT data_path FROM torrent WHERE obsolete = 1"):
        p = ws.root / r["data_path"]
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
        except OSError as exc:
            raise wrap_os_error(exc, p) from exc


# -- album art ------------------------------------------------------------------


def _pack_art(
    ws: Workspace, store: Store, options: PackOptions, report: PackReport, progress: Progress | None
) -> None:
    """Find art for newly packed releases (all with ``rescan_art``); rebuild the tar if it changed."""
    conn = store.conn
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
    scan_sql = "SELECT r.id, r.mbid, r.art_path FROM release r JOIN temp.packed_release p " \
               "ON p.id = r.id"
    if not options.rescan_art:
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
    found, rejects = art_mod.find_art(releases, ws.root, options.art_dir)
    report.rejects.extend(rejects)
    scanned = {r.release_id for r in releases}
    kept = [
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
    arts = sorted(kept + found, key=lambda a: a.release_id)
    with store.transaction():
        # Releases no longer packed lose their art and will be looked at again if they return.
        gone = "SELECT release_id FROM {t} WHERE release_id NOT IN (SELECT id FROM temp.packed_release)"
        conn.execute(f"DELETE FROM art_scan WHERE release_id IN ({gone.format(t='art_scan')})")
        conn.execute(f"DELETE FROM release_art WHERE release_id IN ({gone.format(t='release_art')})")
        found_ids = {a.release_id for a in found}
        conn.executemany(
            "INSERT OR REPLACE INTO art_scan(release_id, found) VALUES (?, ?)",
            [(i, int(i in found_ids)) for i in sorted(scanned)],
        )
        conn.executemany("DELETE FROM release_art WHERE release_id = ?",
                         [(i,) for i in sorted(scanned)])
        conn.executemany(
            "INSERT INTO release_art(release_id, sha256, size, mime, member, origin, source) "
            "VALUES (?,?,?,?,?,?,?)",
            [(a.release_id, a.image.sha256, a.image.size, a.image.mime, a.image.member, a.origin,
              a.image.path) for a in found],
        )
    signature = art_mod.art_signature(arts)
    current = conn.execute(
        "SELECT * FROM torrent WHERE kind = 'art' AND obsolete = 0 AND built = 1"
    ).fetchone()
    if current is not None and store.get_meta(f"art.signature:{current['name']}") == signature:
        return
    if current is None and not arts:
        return
    new_id = None
    if arts:
        last = _last_timestamp(conn)
        candidates = [t for t in (options.not_before,) if t is not None]
        if last is not None:
            candidates.append(next_second(last))
        ts = max(candidates) if candidates else EPOCH
        stamp = aac_time(ts)
        name = art_file_name(options.prefix, stamp)
        out = ws.torrents / name
        report.art_images = art_mod.write_art_tar(arts, out)
        info = create_torrent(out, _torrent_options(options, name, ts))
        write_torrent(info, ws.torrents / f"{name}.torrent")
        digest = _sha256_file(out, None)
        report.art_torrent = name
    with store.transaction():
        if arts:
            cur = conn.execute(
                """INSERT INTO torrent(kind, role, name, torrent_path, data_path, size, files,
                       created_at, aac_from, aac_to, built)
                   VALUES ('art', 'art', ?, ?, ?, 0, 1, ?, ?, ?, 0)""",
                (name, f"torrents/{name}.torrent", f"torrents/{name}", iso(ts), stamp, stamp),
            )
            new_id = int(cur.lastrowid or 0)
            f = info.data_files[0]
            conn.execute(
                """INSERT INTO torrent_file(torrent_id, path, size, sha256, pieces_root, role)
                   VALUES (?, ?, ?, ?, ?, 'art')""",
                (new_id, f.path, f.size, digest, f.pieces_root.hex() if f.pieces_root else None),
            )
            _mark_built(conn, new_id, info)
            store.set_meta(f"art.signature:{name}", signature)
        if current is not None:
            _obsolete(conn, current["id"], new_id)
    _drop_obsolete_payloads(ws, store)
