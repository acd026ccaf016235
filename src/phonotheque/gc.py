"""``phono gc``: remove from the workspace what a takedown or a rebuild left behind.

Exclusions stop content from being packed and published, but the audio stage's
file (and its reconstruction patch) stays in ``audio/``, the .torrent files of
withdrawn torrents stay in ``torrents/`` (``publish/`` no longer has them), and a
pack interrupted between marking a torrent obsolete and deleting its payload
leaves that folder there. :func:`collect` lists them (``dry_run``) or deletes them.

The ``audio_file`` row of an excluded track is kept: it links the withdrawn
torrents to the takedown (see :func:`phonotheque.publish.index.withdrawn_sql`),
and should the exclusion be lifted the audio stage finds the file missing and
makes it again. The ledger notes the removal.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from phonotheque.catalogue import bulk, bulk_selection, columnar, held, ledger
from phonotheque.catalogue.store import Store
from phonotheque.errors import wrap_os_error
from phonotheque.publish.index import PUBLIC, withdrawn_sql
from phonotheque.workspace import Workspace


@dataclass(frozen=True)
class Garbage:
    """One file or folder to remove, relative to the workspace."""

    path: str
    size: int
    why: str
    track_id: int | None = None


@dataclass
class GcReport:
    items: list[Garbage] = field(default_factory=list)
    bytes: int = 0
    removed: bool = False  # False for a dry run


def _size(p: Path) -> int:
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


def _inside(ws: Workspace, rel: str, folder: Path) -> Path | None:
    """``rel`` as a path under ``folder`` of the workspace, or None if it points elsewhere."""
    p = (ws.root / rel).resolve()
    return p if p.is_relative_to(folder.resolve()) else None


def garbage(ws: Workspace, store: Store) -> Iterator[Garbage]:
    """What :func:`collect` would remove, in a stable order."""
    for r in store.query(
        """SELECT a.track_id, a.path, a.patch_path FROM audio_file a
           JOIN track t ON t.id = a.track_id WHERE t.excluded = 1 ORDER BY a.track_id"""
    ):
        for rel, what in ((r["path"], "audio"), (r["patch_path"], "patch")):
            p = _inside(ws, rel, ws.audio) if rel else None
            if p is not None and p.is_file():
                yield Garbage(rel, _size(p), f"{what} of excluded track {r['track_id']}",
                              int(r["track_id"]))
    for r in store.query(
        "SELECT name, data_path FROM torrent WHERE obsolete = 1 AND built = 1 ORDER BY id"
    ):
        p = _inside(ws, r["data_path"], ws.torrents) if r["data_path"] else None
        if p is not None and p.exists():
            yield Garbage(r["data_path"], _size(p), f"payload of obsolete torrent {r['name']}")
    for r in store.query(
        f"SELECT name, torrent_path FROM torrent t WHERE {PUBLIC} AND {withdrawn_sql()} "
        "ORDER BY id"
    ):
        p = _inside(ws, r["torrent_path"], ws.torrents) if r["torrent_path"] else None
        if p is not None and p.is_file():
            yield Garbage(r["torrent_path"], _size(p), f"withdrawn torrent {r['name']}")


def collect(ws: Workspace, dry_run: bool = False) -> GcReport:
    """List (``dry_run``) or remove the workspace's garbage; safe to re-run."""
    report = GcReport(removed=not dry_run)
    columnar_ws = bulk.path(ws.root).is_file()
    with ws.store() as store:
        # a columnar workspace: the held tracks' flags read from catalogue.duckdb
        with held.mirror_if_columnar(ws.root, store):
            report.items = list(garbage(ws, store))
        report.bytes = sum(g.size for g in report.items)
        if dry_run:
            return report
        for g in report.items:
            p = ws.root / g.path
            try:
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)
            except OSError as exc:
                raise wrap_os_error(exc, p, writing=True) from exc
        removed = sorted({g.track_id for g in report.items if g.track_id is not None})
        if columnar_ws:
            _note_columnar(ws, removed)
        else:
            ledger.note_audio_removed(store, removed)
    return report


def _note_columnar(ws: Workspace, track_ids: list[int]) -> None:
    """The ledger note of :func:`collect` in a columnar workspace's catalogue.duckdb."""
    if not track_ids:
        return
    con = bulk.open_bulk(ws.root)
    try:
        with columnar.transaction(con):
            bulk_selection.note_audio_removed(con, track_ids)
    except columnar.Error as exc:
        raise columnar.failed(ws.columnar, "noting removed audio in the ledger", exc) from exc
    finally:
        con.close()
