"""The catalogue store: one SQLite file in WAL mode, written in batches.

Every write goes through :meth:`Store.write`, which takes any iterable of model
records, groups them into batches of ``batch_size`` and writes each batch in one
transaction, resolving natural keys to row ids in SQL. Memory therefore stays
flat whatever the size of the input: at most one batch is held at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phonotheque import clock, interrupts
from phonotheque.catalogue.schema import MIGRATIONS, migrate
from phonotheque.errors import (
    DamagedCatalogue,
    InputError,
    WorkspaceError,
    wrap_os_error,
    wrap_sqlite_error,
)
from phonotheque.model import (
    Artist,
    Checkpoint,
    Exclusion,
    Listen,
    Provenance,
    Record,
    Reject,
    Release,
    SourceAudio,
    Track,
    TrackISRC,
    WriteCounts,
)
from phonotheque.sqlite_uri import file_uri

BatchCallback = Callable[[WriteCounts], None]

_CHUNK = 500  # host parameters per IN (...) query, well under SQLite's limit


def now_iso() -> str:
    """The time records are stamped with (see :mod:`phonotheque.clock`)."""
    return clock.now_iso()


def _prov(p: Provenance | None) -> tuple[str | None, str | None, str | None]:
    if p is None:
        return (None, None, None)
    return (p.source, p.locator, p.licence)


# -- merging duplicates within one batch ----------------------------------------
# A key seen twice in one batch must end up as if the two records had been written
# one after the other, so the result does not depend on where batches happen to
# split (a resumed ingest splits them elsewhere). Each merge mirrors its upsert.


def _merge_artists(items: list[Artist]) -> dict[str, Artist]:
    out: dict[str, Artist] = {}
    for a in items:
        prev = out.get(a.key)
        if prev is None:
            out[a.key] = a
        elif (a.name, a.mbid, a.sort_name) != (prev.name, prev.mbid, prev.sort_name):
            # name: last; mbid, sort name: last known; provenance: first
            out[a.key] = Artist(a.key, a.name, mbid=a.mbid or prev.mbid,
                                sort_name=a.sort_name or prev.sort_name,
                                prov=prev.prov or a.prov)
    return out


def _merge_releases(items: list[Release]) -> dict[str, Release]:
    out: dict[str, Release] = {}
    for r in items:
        prev = out.get(r.key)
        if prev is None:
            out[r.key] = r
        else:  # title and provenance: last; the rest: last known
            out[r.key] = Release(
                r.key, r.title, mbid=r.mbid or prev.mbid, date=r.date or prev.date,
                label=r.label or prev.label, barcode=r.barcode or prev.barcode,
                artist_credit=r.artist_credit or prev.artist_credit,
                art_path=r.art_path or prev.art_path, prov=r.prov or prev.prov,
            )
    return out


def _merge_tracks(items: list[Track]) -> dict[str, Track]:
    out: dict[str, Track] = {}
    for t in items:
        prev = out.get(t.key)
        if prev is None:
            out[t.key] = t
        else:
            # placement: the first release seen; title: last; provenance: first
            placed = prev if prev.release_key is not None else t
            out[t.key] = Track(
                t.key, t.title, mbid=t.mbid or prev.mbid,
                artist_credit=t.artist_credit or prev.artist_credit,
                artist_keys=t.artist_keys or prev.artist_keys,
                release_key=placed.release_key, disc=placed.disc, position=placed.position,
                duration_ms=t.duration_ms or prev.duration_ms, prov=prev.prov or t.prov,
            )
    return out


@dataclass(frozen=True, slots=True)
class ExclusionRow:
    kind: str
    value: str
    reason: str
    added_at: str


@dataclass(frozen=True, slots=True)
class RejectRow:
    stage: str
    source: str
    locator: str
    reason: str
    created_at: str


class Store:
    """Read/write access to one ``catalogue.sqlite``."""

    def __init__(
        self,
        path: Path,
        *,
        create: bool = False,
        readonly: bool = False,
        migrations: Sequence[str] = MIGRATIONS,
    ) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise WorkspaceError(self.path, "catalogue not found (run `phono init` first)")
        try:
            if readonly:
                uri = file_uri(self.path, mode="ro")
                self.conn = interrupts.sqlite_connect(uri, uri=True, isolation_level=None)
            else:
                self.conn = interrupts.sqlite_connect(self.path, isolation_level=None,
                                                     timeout=60)
        except sqlite3.Error as exc:
            raise WorkspaceError(self.path, f"cannot open catalogue: {exc}") from exc
        except OSError as exc:
            raise wrap_os_error(exc, self.path, writing=not readonly) from exc
        self.conn.row_factory = sqlite3.Row
        try:
            if not readonly:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=OFF")
            self.conn.execute("PRAGMA cache_size=-65536")
            self.conn.execute("PRAGMA temp_store=FILE")
            if readonly:
                from phonotheque.catalogue.schema import schema_version

                version = schema_version(self.conn)
                if version > len(migrations):
                    migrate(self.conn, self.path, migrations)  # raises SchemaTooNew
                if version == 0 and not self.conn.execute(
                        "SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
                    # an empty file (cut to nothing): SQLite reads it as a new database
                    self.conn.close()
                    raise DamagedCatalogue(self.path, "not a readable SQLite catalogue: an "
                                           "empty database (no tables); restore it from a "
                                           "backup, or `phono init` a new workspace")
            else:
                migrate(self.conn, self.path, migrations)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            storage = wrap_sqlite_error(exc, self.path)
            if storage is not None:
                raise storage from exc
            raise DamagedCatalogue(self.path, f"not a readable SQLite catalogue: {exc}") from exc

    # -- plumbing -----------------------------------------------------------

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back if the body raises.

        A full disk or a read-only destination becomes a :class:`StorageError`
        naming the catalogue; SQLite has rolled the transaction back, so
        nothing half-written remains.

        Inside an open transaction the body joins it, so a stage can group the
        writes of several owner functions (audio_file row, ledger status, reject)
        into one commit: ``with store.transaction(): ...``.
        """
        if self.conn.in_transaction:
            yield self.conn
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            storage = wrap_sqlite_error(exc, self.path)
            if storage is None:
                raise
            raise storage from exc

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def get_meta(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM meta WHERE key = ?", (key,))

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def delete_meta(self, key: str) -> None:
        self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    # -- batched writes -----------------------------------------------------

    def write(
        self,
        records: Iterable[Record],
        *,
        batch_size: int = 5000,
        on_batch: BatchCallback | None = None,
    ) -> WriteCounts:
        """Write ``records`` in batches of ``batch_size``, one transaction each.

        Records may come in any mix of kinds; within a batch they are written in
        dependency order (artists, releases, tracks, ISRCs, audio, listens), so a
        source must yield a record's dependencies before or with it.
        ``on_batch`` receives the counts of each committed batch.
        """
        total = WriteCounts()
        batch: list[Record] = []
        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                total.merge(self._flush(batch, on_batch))
                batch = []
        if batch:
            total.merge(self._flush(batch, on_batch))
        self.resolve_listens()
        return total

    def _flush(self, batch: list[Record], on_batch: BatchCallback | None) -> WriteCounts:
        counts = WriteCounts()
        groups: dict[type, list[Any]] = {}
        for r in batch:
            groups.setdefault(type(r), []).append(r)
        counts.read = sum(len(v) for t, v in groups.items() if t is not Checkpoint)
        with self.transaction():
            self._artists(groups.get(Artist, []), counts)
            self._releases(groups.get(Release, []), counts)
            self._tracks(groups.get(Track, []), counts)
            self._isrcs(groups.get(TrackISRC, []), counts)
            self._audio(groups.get(SourceAudio, []), counts)
            self._listens(groups.get(Listen, []), counts)
            self._rejects(groups.get(Reject, []), counts)
            cps: dict[str, Checkpoint] = {c.source: c for c in groups.get(Checkpoint, [])}
            for cp in cps.values():
                self._checkpoint(cp)
        if on_batch is not None:
            on_batch(counts)
        return counts

    def _existing(self, table: str, column: str, keys: Sequence[Any]) -> set[Any]:
        found: set[Any] = set()
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in self.conn.execute(
                    f"SELECT {column} FROM {table} WHERE {column} IN ({marks})", chunk
                )
            )
        return found

    def _upsert(
        self,
        kind: str,
        table: str,
        sql: str,
        rows: list[tuple[Any, ...]],
        counts: WriteCounts,
    ) -> None:
        if not rows:
            return
        # New rows get ids above the current maximum (INTEGER PRIMARY KEY without
        # AUTOINCREMENT takes max(id) + 1), so one range count tells how many rows were
        # added; looking every key up beforehand cost more than the insert itself.
        top = self.conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
        before = self.conn.total_changes
        self.conn.executemany(sql, rows)
        changed = self.conn.total_changes - before
        added = self.conn.execute(f"SELECT count(*) FROM {table} WHERE id > ?", (top,)).fetchone()[0]
        updated = max(changed - added, 0)
        counts.add(kind, added, updated, len(rows) - added - updated)

    def _artists(self, items: list[Artist], counts: WriteCounts) -> None:
        # An artist appears on every line that credits it: keep the provenance of
        # the first sighting (as tracks do), so seeing it again changes nothing.
        uniq = _merge_artists(items)
        rows = [(a.key, a.mbid, a.name, a.sort_name, *_prov(a.prov)) for a in uniq.values()]
        self._upsert(
            "artist",
            "artist",
            """INSERT INTO artist(key, mbid, name, sort_name, source, locator, licence)
               VALUES (?,?,?,?,?,?,?)
               ON CONFLICT(key) DO UPDATE SET
                 mbid = coalesce(excluded.mbid, mbid),
                 name = excluded.name,
                 sort_name = coalesce(excluded.sort_name, sort_name),
                 source = coalesce(source, excluded.source),
                 locator = coalesce(locator, excluded.locator),
                 licence = coalesce(licence, excluded.licence)
               WHERE (artist.mbid, artist.name, artist.sort_name)
                 IS NOT (coalesce(excluded.mbid, artist.mbid), excluded.name,
                      coalesce(excluded.sort_name, artist.sort_name))""",
            rows,
            counts,
        )

    def _releases(self, items: list[Release], counts: WriteCounts) -> None:
        uniq = _merge_releases(items)
        rows = [
            (r.key, r.mbid, r.title, r.date, r.label, r.barcode, r.artist_credit, r.art_path,
             *_prov(r.prov))
            for r in uniq.values()
        ]
        self._upsert(
            "release",
            "release",
            """INSERT INTO release(key, mbid, title, date, label, barcode, artist_credit,
                                   art_path, source, locator, licence)
               VALUES (?,?,?,?,?,?,?,?,?,?,?)
               ON CONFLICT(key) DO UPDATE SET
                 mbid = coalesce(excluded.mbid, mbid), title = excluded.title,
                 date = coalesce(excluded.date, date), label = coalesce(excluded.label, label),
                 barcode = coalesce(excluded.barcode, barcode),
                 artist_credit = coalesce(excluded.artist_credit, artist_credit),
                 art_path = coalesce(excluded.art_path, art_path),
                 source = excluded.source, locator = excluded.locator,
                 licence = coalesce(excluded.licence, licence)
               WHERE (release.mbid, release.title, release.date, release.label,
                      release.barcode, release.artist_credit, release.art_path,
                      release.source, release.locator, release.licence)
                 IS NOT (coalesce(excluded.mbid, release.mbid), excluded.title,
                      coalesce(excluded.date, release.date),
                      coalesce(excluded.label, release.label),
                      coalesce(excluded.barcode, release.barcode),
                      coalesce(excluded.artist_credit, release.artist_credit),
                      coalesce(excluded.art_path, release.art_path),
                      excluded.source, excluded.locator,
                      coalesce(excluded.licence, release.licence))""",
            rows,
            counts,
        )

    def _tracks(self, items: list[Track], counts: WriteCounts) -> None:
        uniq = _merge_tracks(items)
        rows = [
            (t.key, t.mbid, t.title, t.artist_credit, t.release_key, t.disc, t.position,
             t.duration_ms, *_prov(t.prov))
            for t in uniq.values()
        ]
        # A recording keeps the first release it was seen on, so re-ingesting
        # other releases does not move it around.
        self._upsert(
            "track",
            "track",
            """INSERT INTO track(key, mbid, title, artist_credit, release_id, disc, position,
                                 duration_ms, source, locator, licence)
               VALUES (?,?,?,?,(SELECT id FROM release WHERE key = ?),?,?,?,?,?,?)
               ON CONFLICT(key) DO UPDATE SET
                 mbid = coalesce(excluded.mbid, mbid), title = excluded.title,
                 artist_credit = coalesce(excluded.artist_credit, artist_credit),
                 release_id = coalesce(release_id, excluded.release_id),
                 disc = CASE WHEN release_id IS NULL THEN excluded.disc ELSE disc END,
                 position = CASE WHEN release_id IS NULL THEN excluded.position ELSE position END,
                 duration_ms = coalesce(excluded.duration_ms, duration_ms),
                 source = coalesce(source, excluded.source),
                 locator = coalesce(locator, excluded.locator),
                 licence = coalesce(licence, excluded.licence)
               WHERE (track.mbid, track.title, track.artist_credit, track.release_id,
                      track.duration_ms)
                 IS NOT (coalesce(excluded.mbid, track.mbid), excluded.title,
                      coalesce(excluded.artist_credit, track.artist_credit),
                      coalesce(track.release_id, excluded.release_id),
                      coalesce(excluded.duration_ms, track.duration_ms))""",
            rows,
            counts,
        )
        links = [
            (t.key, pos, akey)
            for t in uniq.values()
            for pos, akey in enumerate(t.artist_keys)
        ]
        if links:
            self.conn.executemany(
                """INSERT OR REPLACE INTO track_artist(track_id, position, artist_id)
                   SELECT t.id, ?, a.id FROM track t, artist a WHERE t.key = ? AND a.key = ?""",
                [(pos, tkey, akey) for tkey, pos, akey in links],
            )

    def _isrcs(self, items: list[TrackISRC], counts: WriteCounts) -> None:
        uniq: dict[tuple[str, str], TrackISRC] = {}
        for i in items:
            uniq.setdefault((i.track_key, i.isrc), i)  # INSERT OR IGNORE: the first one stays
        if not uniq:
            return
        before = self.conn.total_changes
        self.conn.executemany(
            """INSERT OR IGNORE INTO track_isrc(track_id, isrc, known_country, source, locator,
                                                licence)
               SELECT id, ?, ?, ?, ?, ? FROM track WHERE key = ?""",
            [(i.isrc, int(i.known_country), *_prov(i.prov), i.track_key) for i in uniq.values()],
        )
        added = self.conn.total_changes - before
        counts.add("isrc", added, 0, len(uniq) - added)

    def _match_track(self, audio: SourceAudio) -> tuple[int | None, str]:
        if audio.mbid:
            tid = self.scalar("SELECT id FROM track WHERE mbid = ? ORDER BY id LIMIT 1", (audio.mbid,))
            if tid is not None:
                return tid, "mbid"
        for code in audio.isrcs:
            tid = self.scalar(
                "SELECT track_id FROM track_isrc WHERE isrc = ? ORDER BY track_id LIMIT 1", (code,)
            )
            if tid is not None:
                return tid, "isrc"
        return None, "created"

    def _audio(self, items: list[SourceAudio], counts: WriteCounts) -> None:
        uniq = {a.path: a for a in items}
        if not uniq:
            return
        existing = self._existing("source_audio", "path", list(uniq))
        added = updated = 0
        for audio in uniq.values():
            tid, how = self._match_track(audio)
            if tid is None:
                fb = audio.fallback
                self._artists([r for r in fb if isinstance(r, Artist)], counts)
                self._releases([r for r in fb if isinstance(r, Release)], counts)
                tracks = [r for r in fb if isinstance(r, Track)]
                self._tracks(tracks, counts)
                self._isrcs([r for r in fb if isinstance(r, TrackISRC)], counts)
                if not tracks:
                    raise InputError(audio.path, "no track matched and no fallback track given")
                tid = self.scalar("SELECT id FROM track WHERE key = ?", (tracks[0].key,))
            changed = self._source_audio(audio, tid, how)
            if audio.path not in existing:
                added += 1
            elif changed:
                updated += 1
        counts.add("audio", added, updated, len(uniq) - added - updated)

    def _source_audio(self, audio: SourceAudio, tid: int, how: str) -> bool:
        """Upsert the ``source_audio`` row of ``audio``, attached to track ``tid``
        (matched ``how``); True if it changed."""
        before = self.conn.total_changes
        self.conn.execute(
            """INSERT INTO source_audio(path, track_id, size, mtime_ns, codec, container,
                   bitrate, duration_ms, sample_rate, channels, match, source, locator,
                   licence)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
               ON CONFLICT(path) DO UPDATE SET
                 track_id = excluded.track_id, size = excluded.size,
                 mtime_ns = excluded.mtime_ns, codec = excluded.codec,
                 container = excluded.container, bitrate = excluded.bitrate,
                 duration_ms = excluded.duration_ms, sample_rate = excluded.sample_rate,
                 channels = excluded.channels, match = excluded.match,
                 source = excluded.source, locator = excluded.locator,
                 licence = excluded.licence
               WHERE (source_audio.track_id, source_audio.size, source_audio.mtime_ns)
                 IS NOT (excluded.track_id, excluded.size, excluded.mtime_ns)""",
            (audio.path, tid, audio.size, audio.mtime_ns, audio.codec, audio.container,
             audio.bitrate, audio.duration_ms, audio.sample_rate, audio.channels, how,
             *_prov(audio.prov)),
        )
        return self.conn.total_changes > before

    def write_source_audio(self, matched: Sequence[tuple[SourceAudio, int, str]],
                           rejects: Sequence[Reject] = ()) -> WriteCounts:
        """Attach held files to tracks already matched elsewhere: ``(file, track id,
        how it matched)``, with the batch's ``rejects``, in one transaction. A columnar
        workspace matches its files in catalogue.duckdb (:mod:`phonotheque.columnar_tags`);
        the rows are those :meth:`write` gives a SQLite workspace."""
        counts = WriteCounts()
        with self.transaction():
            existing = self._existing("source_audio", "path", [a.path for a, _, _ in matched])
            added = updated = 0
            for audio, tid, how in matched:
                changed = self._source_audio(audio, tid, how)
                if audio.path not in existing:
                    added += 1
                elif changed:
                    updated += 1
            if matched:
                counts.add("audio", added, updated, len(matched) - added - updated)
            self._rejects(list(rejects), counts)
        return counts

    def _listens(self, items: list[Listen], counts: WriteCounts) -> None:
        uniq = {(x.dataset, x.key_kind, x.key): x for x in items}
        if not uniq:
            return
        # Count the rows that exist already, per (dataset, key kind): an IN list on
        # the last column of the unique index is an index look-up per key (a row-value
        # IN (VALUES ...) was a table scan per chunk: quadratic at 10 M listens).
        groups: dict[tuple[str, str], list[str]] = {}
        for dataset, kind, key in uniq:
            groups.setdefault((dataset, kind), []).append(key)
        existing = 0
        for (dataset, kind), keys in groups.items():
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                existing += self.scalar(
                    f"SELECT count(*) FROM listens WHERE dataset = ? AND key_kind = ? "
                    f"AND key IN ({marks})",
                    [dataset, kind, *chunk],
                )
        before = self.conn.total_changes
        self.conn.executemany(
            """INSERT INTO listens(dataset, key_kind, key, count, users, source, locator, licence)
               VALUES (?,?,?,?,?,?,?,?)
               ON CONFLICT(dataset, key_kind, key) DO UPDATE SET
                 count = excluded.count, users = excluded.users,
                 source = excluded.source, locator = excluded.locator,
                 licence = excluded.licence
               WHERE (listens.count, listens.users) IS NOT (excluded.count, excluded.users)""",
            [(x.dataset, x.key_kind, x.key, x.count, x.users, *_prov(x.prov)) for x in uniq.values()],
        )
        changed = self.conn.total_changes - before
        added = len(uniq) - existing
        counts.add("listens", added, max(changed - added, 0), existing - max(changed - added, 0))

    def _rejects(self, items: list[Reject], counts: WriteCounts) -> None:
        if not items:
            return
        counts.rejected += len(items)
        stamp = now_iso()
        sql = """INSERT OR IGNORE INTO reject(stage, source, locator, reason, created_at)
                 VALUES (?,?,?,?,?)"""
        kept = [r for r in items if r.kept]
        refused = [r for r in items if not r.kept]
        counts.kept += len(kept)
        self.conn.executemany(sql, [(r.stage, r.source, r.locator, r.reason[:2000], stamp)
                                    for r in kept])
        # A refusal an earlier run recorded already (a re-run over the same bad file)
        # is not news: only new ones make the run exit 10.
        before = self.conn.total_changes
        self.conn.executemany(sql, [(r.stage, r.source, r.locator, r.reason[:2000], stamp)
                                    for r in refused])
        counts.new_refused += self.conn.total_changes - before

    def _checkpoint(self, cp: Checkpoint) -> None:
        self.conn.execute(
            """INSERT INTO ingest_checkpoint(source, kind, size, mtime_ns, offset, line, done,
                                             updated_at)
               VALUES (?,?,?,?,?,?,?,?)
               ON CONFLICT(source) DO UPDATE SET kind = excluded.kind, size = excluded.size,
                 mtime_ns = excluded.mtime_ns, offset = excluded.offset, line = excluded.line,
                 done = excluded.done, updated_at = excluded.updated_at
               -- a re-read that ends where the last one did is not news: keep its time
               WHERE (ingest_checkpoint.kind, ingest_checkpoint.size,
                      ingest_checkpoint.mtime_ns, ingest_checkpoint.offset,
                      ingest_checkpoint.line, ingest_checkpoint.done)
                 IS NOT (excluded.kind, excluded.size, excluded.mtime_ns, excluded.offset,
                         excluded.line, excluded.done)""",
            (cp.source, cp.kind, cp.size, cp.mtime_ns, cp.offset, cp.line, int(cp.done),
             now_iso()),
        )

    def checkpoint(self, source: str) -> Checkpoint | None:
        row = self.conn.execute(
            "SELECT * FROM ingest_checkpoint WHERE source = ?", (source,)
        ).fetchone()
        if row is None:
            return None
        return Checkpoint(
            source=row["source"], kind=row["kind"], offset=row["offset"], done=bool(row["done"]),
            size=row["size"], mtime_ns=row["mtime_ns"], line=row["line"],
        )

    def resolve_listens(self) -> int:
        """Attach listen rows to tracks by the key they carry; return how many are attached.

        An ISRC shared by several tracks credits its listens to the lowest track id;
        selection later treats all tracks of one ISRC as one work anyway.
        """
        with self.transaction():
            before = self.conn.total_changes
            self.conn.execute(
                """UPDATE listens SET track_id = CASE key_kind
                     WHEN 'mbid' THEN (SELECT min(id) FROM track WHERE mbid = listens.key)
                     WHEN 'isrc' THEN (SELECT min(track_id) FROM track_isrc
                                        WHERE isrc = listens.key)
                     WHEN 'track_id' THEN (SELECT id FROM track
                                           WHERE id = CAST(listens.key AS INTEGER))
                     WHEN 'key' THEN (SELECT id FROM track WHERE key = listens.key)
                   END
                   WHERE track_id IS NULL"""
            )
            return self.conn.total_changes - before

    # -- exclusions -----------------------------------------------------------

    def add_exclusion(self, ex: Exclusion) -> bool:
        """Record an exclusion (idempotent) and flag the tracks it covers."""
        with self.transaction():
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO exclusion(kind, value, reason, added_at) VALUES (?,?,?,?)",
                (ex.kind, ex.value, ex.reason, now_iso()),
            )
            added = cur.rowcount > 0
        self.refresh_exclusions()
        return added

    def remove_exclusion(self, kind: str, value: str) -> bool:
        with self.transaction():
            cur = self.conn.execute(
                "DELETE FROM exclusion WHERE kind = ? AND value = ?", (kind, value)
            )
        self.refresh_exclusions()
        return cur.rowcount > 0

    def last_exclusion_time(self) -> str | None:
        """When the newest exclusion was added (what is packed changes then)."""
        value = self.scalar("SELECT max(added_at) FROM exclusion")
        return None if value is None else str(value)

    def exclusions(self) -> list[ExclusionRow]:
        return [
            ExclusionRow(r["kind"], r["value"], r["reason"], r["added_at"])
            for r in self.query("SELECT * FROM exclusion ORDER BY id")
        ]

    def refresh_exclusions(self) -> int:
        """Recompute ``track.excluded`` from the exclusion list; return excluded track count.

        An MBID exclusion covers a recording, a release (all its tracks) or an
        artist (all tracks credited to them); a path exclusion covers the track a
        source file is attached to, and every file under a excluded folder.
        """
        with self.transaction():
            self.conn.execute("UPDATE track SET excluded = 0 WHERE excluded = 1")
            self.conn.execute(
                """UPDATE track SET excluded = 1 WHERE id IN (
                     SELECT t.id FROM track t JOIN exclusion e
                       ON e.kind = 'mbid' AND e.value = t.mbid
                     UNION SELECT t.id FROM track t JOIN release r ON r.id = t.release_id
                       JOIN exclusion e ON e.kind = 'mbid' AND e.value = r.mbid
                     UNION SELECT ta.track_id FROM track_artist ta
                       JOIN artist a ON a.id = ta.artist_id
                       JOIN exclusion e ON e.kind = 'mbid' AND e.value = a.mbid
                     UNION SELECT ti.track_id FROM track_isrc ti
                       JOIN exclusion e ON e.kind = 'isrc' AND e.value = ti.isrc
                     UNION SELECT s.track_id FROM source_audio s
                       JOIN exclusion e ON e.kind = 'path'
                        AND (s.path = e.value OR substr(s.path, 1, length(e.value) + 1)
                             = rtrim(e.value, '/') || '/'))"""
            )
        return int(self.scalar("SELECT count(*) FROM track WHERE excluded = 1"))

    # -- rejects --------------------------------------------------------------

    def add_rejects(self, rejects: Iterable[Reject]) -> int:
        counts = WriteCounts()
        with self.transaction():
            self._rejects(list(rejects), counts)
        return counts.rejected

    def record_rejects(self, rejects: Sequence[Reject]) -> WriteCounts:
        """Record ``rejects`` (idempotent); the counts say how many were refusals no
        earlier run recorded (``new_refused``) and how many dropped values (``kept``)."""
        counts = WriteCounts()
        if rejects:
            with self.transaction():
                self._rejects(list(rejects), counts)
        return counts

    def reject_count(self, stage: str | None = None) -> int:
        if stage:
            return int(self.scalar("SELECT count(*) FROM reject WHERE stage = ?", (stage,)))
        return int(self.scalar("SELECT count(*) FROM reject"))

    def rejects(self, stage: str | None = None, limit: int | None = None) -> list[RejectRow]:
        sql = "SELECT * FROM reject"
        params: list[Any] = []
        if stage:
            sql += " WHERE stage = ?"
            params.append(stage)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            RejectRow(r["stage"], r["source"], r["locator"], r["reason"], r["created_at"])
            for r in self.query(sql, params)
        ]

