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

Distribution: building a folder is a pure job (:mod:`.folder_job`), so with an
executor the folders are built by workers (on a Dask cluster, next to the
storage) while this process only plans and records.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import orjson

from phonotheque.atomic import sweep_temporaries
from phonotheque.catalogue import held, torrents
from phonotheque.catalogue.store import Store
from phonotheque.errors import InputError
from phonotheque.executors import Executor, make_executor
from phonotheque.pack.art_step import pack_art
from phonotheque.pack.folders import build_planned, ensure_meta_files
from phonotheque.pack.options import Layout, PackOptions, PackReport, Progress
from phonotheque.pack.planner import plan, refresh_planned_paths
from phonotheque.pack.steps_common import drop_obsolete_payloads
from phonotheque.progress import ProgressFn, meter
from phonotheque.workspace import Workspace

__all__ = ["Layout", "PackOptions", "PackReport", "Progress", "folder_executor", "pack",
           "resolve_options", "run_pack", "stored_options"]

# Tracks that may be packed. TEMP: lives only in this connection.
ELIGIBLE = """
CREATE TEMP VIEW IF NOT EXISTS eligible AS
SELECT a.id AS audio_file_id, a.track_id, a.path, a.size, a.sha256, a.patch_path,
       a.created_at, s.band, s.rank
FROM audio_file a
JOIN selection s ON s.track_id = a.track_id
JOIN ledger l ON l.track_id = a.track_id AND l.status = 'success'
JOIN track t ON t.id = a.track_id AND t.excluded = 0
"""

SETTINGS_KEYS = ("layout", "prefix", "collection")


def pack(
    ws: Workspace,
    options: PackOptions | None = None,
    progress: ProgressFn | None = None,
    executor: Executor | None = None,
) -> PackReport:
    """Pack every eligible file not yet in a current torrent; rebuild folders that lost files.

    With ``executor`` (a local process pool or a Dask cluster, see
    :mod:`phonotheque.executors`) each data folder is linked, checked and hashed
    by a worker; this process plans and records. Without one, folders are built
    here. Both give the same bytes.
    """
    return _pack(ws, options or PackOptions(), meter(progress, "pack", "B"), executor)


def _pack(ws: Workspace, options: PackOptions, progress: Progress | None,
          executor: Executor | None) -> PackReport:
    t0 = time.monotonic()
    report = PackReport()
    sweep_temporaries(ws.torrents)
    # a columnar workspace: the held tracks' bulk rows read from catalogue.duckdb
    with ws.store() as store, held.mirror_if_columnar(ws.root, store):
        check_settings(store, options)
        conn = store.conn
        conn.execute(ELIGIBLE)
        report.eligible = int(store.scalar("SELECT count(*) FROM eligible"))
        planned = store.scalar("SELECT count(*) FROM torrent WHERE kind = 'data' AND built = 0")
        if planned:
            report.resumed = True
            refresh_planned_paths(store)
        else:
            plan(ws, store, options, report)
        build_planned(ws, store, options, report, progress, executor)
        ensure_meta_files(ws, store, options, progress)
        drop_obsolete_payloads(ws, store)
        if options.art:
            pack_art(ws, store, options, report, progress)
        if report.rejects:
            store.add_rejects(report.rejects)
        with store.transaction():
            store.set_meta("pack.options", options.to_json())
    report.seconds = time.monotonic() - t0
    return report


@contextlib.contextmanager
def folder_executor(processes: int | None, scheduler: str | None) -> Iterator[Executor | None]:
    """Where data folders are built: the one policy of `phono pack`, `release` and `build`.

    On a cluster (``scheduler``) each folder is linked, checked and hashed by a
    worker near the storage; ``processes`` builds that many folders at once in
    local processes. Otherwise here (None): a folder's hashing already uses every
    core, and a process pool would only add its start-up (2.9 s instead of 0.5 s
    for the demo).
    """
    if not scheduler and not processes:
        yield None
        return
    with make_executor(processes, scheduler) as executor:
        yield executor


def run_pack(ws: Workspace, options: PackOptions, *, processes: int | None = None,
             scheduler: str | None = None, progress: ProgressFn | None = None) -> PackReport:
    """The pack stage as `phono pack` and `phono build` run it (see :func:`folder_executor`)."""
    with folder_executor(processes, scheduler) as executor:
        return pack(ws, options, progress=progress, executor=executor)


def resolve_options(ws: Workspace, given: Mapping[str, Any] | None = None) -> PackOptions:
    """Options ``given`` (None values ignored) over those of the last pack, over the defaults."""
    base = stored_options(ws) or PackOptions()
    return replace(base, **{k: v for k, v in (given or {}).items() if v is not None})


def stored_options(ws: Workspace) -> PackOptions | None:
    """The options of the last ``phono pack`` in this workspace (release reuses them)."""
    with ws.store(readonly=True) as store:
        text = store.get_meta("pack.options")
    return PackOptions.from_json(text) if text else None


def check_settings(store: Store, options: PackOptions) -> None:
    text = store.get_meta("pack.settings")
    mine = {k: getattr(options, k) for k in SETTINGS_KEYS}
    active = store.scalar(
        "SELECT count(*) FROM torrent WHERE kind = 'data' AND obsolete = 0 AND built = 1"
    )
    old = orjson.loads(text) if text else {}
    changed = [k for k in SETTINGS_KEYS if text and old.get(k) != mine[k]]
    if changed and active:
        k = changed[0]
        raise InputError(
            f"--{k} {mine[k]}",
            f"this workspace was packed with {k} {old.get(k)!r}; "
            "folders are immutable, so every pack of one archive must use the same "
            f"{k}",
        )
    if changed:
        # Only plans under the old settings, nothing built from them (a run that
        # failed before its first folder): forget them and plan afresh.
        for (tid,) in store.conn.execute(
            "SELECT id FROM torrent WHERE kind = 'data' AND built = 0"
        ).fetchall():
            torrents.drop_planned(store, tid)
    with store.transaction():
        store.set_meta("pack.settings", orjson.dumps(mine, option=orjson.OPT_SORT_KEYS).decode())
