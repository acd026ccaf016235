"""``phono publish``: write ``publish/`` from the catalogue.

```
publish/
  metadata.sqlite            the published database (dbschema.py), plain sqlite3
  parquet/<table>.parquet    the same tables, zstd
  aac/<prefix>_meta__aacid__<collection>__<from>--<to>.jsonl.seekable.zst
  torrents/<name>.torrent    every public torrent (data, AAC metadata, art, database)
  torrents/<name>.v1.torrent its v1 companion when it is hybrid (for aria2c and other
                             clients that cannot read hybrid torrents)
  torrents.json              the index (see index.py)
  magnets.txt                magnet links of current torrents
```

Plus a *database torrent* (``<prefix>_metadata__<time>``) over ``metadata.sqlite``
and ``parquet/``; its payload folder lives in ``torrents/`` like every other.

Deterministic: every timestamp written comes from the catalogue (``built_at`` is
the newest time recorded there: torrents, waves, exclusions, audio files, ledger,
ingest), so publishing the same catalogue twice gives identical files.

All of it changes at once: ``publish/`` is a link to a generation folder; a publish
writes the next generation and switches the link in one rename at the end
(:mod:`phonotheque.publish.generations`), so readers never see a mix and an
interrupted publish leaves the previous generation in place.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from phonotheque import interrupts
from phonotheque.atomic import (
    fsync_dir,
    move_into_place,
    place_file,
    sweep_temporaries,
    temporary_name,
    write_bytes,
)
from phonotheque.catalogue import torrents
from phonotheque.catalogue.store import Store
from phonotheque.pack.aac import aac_time, database_folder_name
from phonotheque.pack.layout import EPOCH_ISO, iso, parse_iso
from phonotheque.pack.packer import PackOptions, stored_options
from phonotheque.pack.steps_common import built
from phonotheque.progress import ProgressFn, meter
from phonotheque.publish import generations
from phonotheque.publish import index as index_mod
from phonotheque.publish.columnar_export import catalogue_times, export_columnar
from phonotheque.publish.export import ExportContext, export_parquet, export_sqlite
from phonotheque.publish.index import V1_SUFFIX
from phonotheque.sqlite_uri import file_uri
from phonotheque.torrent import TorrentOptions, create_torrent, read_torrent, v1_companion
from phonotheque.workspace import Workspace

Progress = Callable[..., object]

DATABASE = "metadata.sqlite"


@dataclass(frozen=True)
class PublishOptions:
    name: str = "Phonothèque"  # the archive's display name (info.name; the search page title)
    parquet: bool = True
    database_torrent: bool = True
    # Prefix and torrent settings; None: those of the workspace's last `phono pack`.
    pack: PackOptions | None = None
    # Draw the last selection's coverage chart into the generation (coverage.svg, shown
    # by the search page); otherwise the current generation's chart, if any, is kept.
    coverage_chart: bool = False
    # How many tracks text search indexes, most listened first (None: export.SEARCH_TRACKS_AUTO).
    search_tracks: int | None = None
    # A columnar workspace's DuckDB: memory limit in bytes and threads (None: from the
    # machine, see catalogue/columnar.py).
    memory_bytes: int | None = None
    threads: int | None = None


@dataclass
class PublishReport:
    built_at: str = ""
    tables: dict[str, int] = field(default_factory=dict)
    listed: int = 0  # entries in torrents.json
    current: int = 0
    obsolete: int = 0
    unreleased: int = 0  # built data torrents not yet in a wave
    database_torrent: str | None = None
    files: list[str] = field(default_factory=list)  # what publish/ holds, relative
    seconds: float = 0.0


def built_at(store: Store, more: Sequence[str | None] = ()) -> str:
    """The newest time the catalogue records; the published files carry no other clock.

    ``more``: times recorded outside catalogue.sqlite (a columnar catalogue's)."""
    candidates = [*more,
        store.scalar("SELECT max(created_at) FROM torrent WHERE built = 1 AND role != 'database'"),
        torrents.last_wave_time(store),
        store.last_exclusion_time(),
        store.scalar("SELECT max(created_at) FROM audio_file"),
        store.scalar("SELECT max(updated_at) FROM ledger"),
        store.scalar("SELECT max(finished_at) FROM select_run"),
        store.scalar("SELECT max(updated_at) FROM ingest_checkpoint"),
    ]
    times = [t for t in (parse_iso(c) for c in candidates) if t is not None]
    return iso(max(times)) if times else EPOCH_ISO


def publish(
    ws: Workspace, options: PublishOptions | None = None, progress: ProgressFn | None = None
) -> PublishReport:
    """Write publish/ from the catalogue; progress in rows exported."""
    return _publish(ws, options or PublishOptions(), meter(progress, "publish", "rows"))


def _publish(ws: Workspace, options: PublishOptions, progress: Progress | None) -> PublishReport:
    pack_opts = options.pack or stored_options(ws) or PackOptions()
    t0 = time.monotonic()
    report = PublishReport()
    out = generations.begin(ws)  # the next generation; publish/ is switched to it at the end
    sweep_temporaries(out, recursive=True)
    sweep_temporaries(ws.torrents)
    with ws.store() as store:
        report.built_at = built_at(
            store, catalogue_times(ws.root) if ws.engine == "duckdb" else ())
        ctx = ExportContext(report.built_at, options.name, pack_opts.prefix, pack_opts.layout,
                            options.search_tracks)
        if progress is not None:
            progress(0, total=None, step="metadata.sqlite")
        tracks = None  # where withdrawn_sql reads tracks' excluded flags: the catalogue's
        if ws.engine == "duckdb":
            report.tables = export_columnar(
                ws.root, out / DATABASE, out / "parquet" if options.parquet else None, ctx,
                progress, memory_bytes=options.memory_bytes, threads=options.threads)
            tracks = _excluded_tracks(store, out / DATABASE)
        else:
            report.tables = export_sqlite(ws.catalogue, out / DATABASE, ctx)
            if options.parquet:
                if progress is not None:
                    progress(0, total=sum(report.tables.values()), step="parquet")
                export_parquet(out / DATABASE, out / "parquet", progress)
        if options.database_torrent:
            report.database_torrent = _database_torrent(ws, out, store, pack_opts,
                                                        report.built_at)
        companions = _copy_public_files(ws, out, store, tracks)
        if options.coverage_chart:
            _coverage_chart(store, out)
        sizes = {p.name.removesuffix(".torrent"): p.stat().st_size
                 for p in (out / "torrents").glob("*.torrent")}
        entries = index_mod.index_entries(store.conn, sizes, companions, tracks)
        write_bytes(out / "torrents.json", index_mod.torrents_json(entries), skip_if_same=True)
        write_bytes(out / "magnets.txt", index_mod.magnets_txt(entries), skip_if_same=True)
        report.listed = len(entries)
        report.current = sum(not e["obsolete"] for e in entries)
        report.obsolete = report.listed - report.current
        report.unreleased = torrents.unreleased_totals(store)[0]
    generations.cleanup(ws, previous=generations.switch(ws, out))
    report.files = sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()
    )
    report.seconds = time.monotonic() - t0
    return report


def _coverage_chart(store: Store, out: Path) -> None:
    from phonotheque.select.chart import last_run, render_coverage

    run = last_run(store)
    if run is not None:
        render_coverage(run[0], run[1], out / "coverage.svg")


def _excluded_tracks(store: Store, database: Path) -> str:
    """A temporary table of the store's connection listing the excluded tracks, as the
    just published ``database`` says (a columnar workspace's tracks are not in
    catalogue.sqlite); its name, for :func:`index_mod.withdrawn_sql`."""
    conn = interrupts.sqlite_connect(file_uri(database, mode="ro"), uri=True)  # Ctrl-C stops it
    try:
        ids = conn.execute("SELECT id FROM track WHERE status = 'excluded' ORDER BY id").fetchall()
    finally:
        conn.close()
    store.conn.execute("DROP TABLE IF EXISTS temp.published_excluded")
    store.conn.execute("CREATE TEMP TABLE published_excluded(id INTEGER PRIMARY KEY, "
                       "excluded INTEGER NOT NULL DEFAULT 1)")
    store.conn.executemany("INSERT INTO temp.published_excluded(id) VALUES (?)", ids)
    return "temp.published_excluded"


def _copy_public_files(ws: Workspace, out: Path, store: Store,
                       tracks: str | None = None) -> dict[str, str]:
    """.torrent files of public torrents into torrents/, AAC metadata files into aac/ of
    the generation ``out``; return the magnet link of each hybrid's v1 companion by name.

    Each hybrid torrent gets a v1 companion, ``<name>.v1.torrent`` (see
    :func:`phonotheque.torrent.v1_companion`: same payload and pieces, nothing hashed
    again) for clients that cannot read hybrid torrents (aria2c 1.36)."""
    torrents_dir = out / "torrents"
    aac_dir = out / "aac"
    want_torrents: set[str] = set()
    want_aac: set[str] = set()
    companions: dict[str, str] = {}
    for r in store.query(f"SELECT * FROM torrent t WHERE {index_mod.PUBLIC} "
                         f"AND NOT {index_mod.withdrawn_sql(tracks=tracks)} ORDER BY id"):
        src = ws.root / r["torrent_path"]
        name = f"{r['name']}.torrent"
        if src.is_file():
            place_file(src, torrents_dir / name)
            want_torrents.add(name)
            companion = v1_companion(read_torrent(src))
            if companion is not None:
                write_bytes(torrents_dir / f"{r['name']}{V1_SUFFIX}", companion.metainfo,
                            skip_if_same=True)
                want_torrents.add(f"{r['name']}{V1_SUFFIX}")
                companions[str(r["name"])] = companion.magnet()
        payload = ws.root / r["data_path"]
        if r["role"] == "aac_meta" and not r["obsolete"] and payload.is_file():
            place_file(payload, aac_dir / r["name"])
            want_aac.add(r["name"])
    for folder, want in ((torrents_dir, want_torrents), (aac_dir, want_aac)):
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name not in want:
                    p.unlink()
            fsync_dir(folder)
    return companions


def _stage_database_payload(ws: Workspace, out: Path, base: str) -> Path:
    """A temporary folder next to the torrents holding (links to) the database files.

    Its final name depends on the infohash, known only once it is hashed; the caller
    moves it into place, and a crash leaves a temporary that the next run sweeps.
    """
    tmp = temporary_name(ws.torrents / base)
    try:
        place_file(out / DATABASE, tmp / DATABASE)
        parquet = out / "parquet"
        if parquet.is_dir():
            for p in sorted(parquet.glob("*.parquet")):
                place_file(p, tmp / "parquet" / p.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _restore_payload(staged: Path, final: Path) -> None:
    """Put back into the seeded payload ``final`` of an unchanged database torrent each
    file of ``staged`` (the same files, just made) it lacks or holds at another size: a
    deleted or cut file of it (parquet/track.parquet) stayed so, and the seeder offered
    an incomplete torrent. A file of the right size is not read (verify checks bytes)."""
    for src in sorted(staged.rglob("*")):
        if not src.is_file():
            continue
        dst = final / src.relative_to(staged)
        if dst.is_file() and dst.stat().st_size == src.stat().st_size:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        place_file(src, dst)


def _database_torrent(ws: Workspace, out: Path, store: Store, pack_opts: PackOptions,
                      stamp: str) -> str:
    """Make (or keep) the torrent over metadata.sqlite + parquet/ of the generation ``out``;
    return its name."""
    ts = parse_iso(stamp)
    assert ts is not None
    current = torrents.current_database(store)
    base = database_folder_name(pack_opts.prefix, aac_time(ts))
    tmp = _stage_database_payload(ws, out, base)
    topts = TorrentOptions(
        version=pack_opts.version, piece_length=pack_opts.piece_length, name=base,
        trackers=pack_opts.trackers, webseeds=pack_opts.webseeds,
        creation_date=int(ts.timestamp()), workers=pack_opts.workers,
    )
    if current is not None and str(current["name"]).startswith(f"{base}_"):
        # the current one got a suffix (a second database in the same second): the name
        # is hashed too, so compare under its name, or a re-run makes yet another one
        topts = TorrentOptions(**{**topts.__dict__, "name": str(current["name"])})
    info = create_torrent(tmp, topts)
    if current is not None and (current["infohash_v1"], current["infohash_v2"]) == (
        info.infohash_v1, info.infohash_v2
    ):
        final = ws.root / current["data_path"]
        if not final.is_dir():
            move_into_place(tmp, final)
        else:
            _restore_payload(tmp, final)
            shutil.rmtree(tmp, ignore_errors=True)
        return str(current["name"])
    # A new database: a new name (a second one at the same time gets a suffix).
    name, n = base, 1
    while torrents.name_taken(store, name):
        n += 1
        name = f"{base}_{n}"
    if name != topts.name:
        info = create_torrent(tmp, TorrentOptions(**{**topts.__dict__, "name": name}))
    move_into_place(tmp, ws.torrents / name)
    write_bytes(ws.torrents / f"{name}.torrent", info.metainfo)
    with store.transaction():
        new_id = torrents.add_torrent(
            store,
            torrents.NewTorrent(
                kind="meta", role="database", name=name, torrent_path=f"torrents/{name}.torrent",
                data_path=f"torrents/{name}", size=info.total_size, files=len(info.data_files),
                created_at=stamp),
            built=built(info))
        if current is not None:
            # (nothing describes the database torrent: only it becomes obsolete)
            torrents.mark_obsolete(store, current["id"], new_id)
    if current is not None:
        shutil.rmtree(ws.root / current["data_path"], ignore_errors=True)
    return name
