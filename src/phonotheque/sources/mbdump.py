"""MusicBrainz PostgreSQL dump tables (``mbdump/``, the canonical full export).

The tables are PostgreSQL ``COPY ... TO STDOUT`` text: one row per line,
tab-separated, ``\\N`` for NULL, backslash escapes (``\\t``, ``\\n``, ``\\\\``,
octal ``\\NNN``, hex ``\\xHH``). Column orders are those of MusicBrainz's
``admin/sql/CreateTables.sql``; only the columns we need are kept, and extra
trailing columns (a newer schema) are ignored.

Whole tables are never held in Python memory: each table is bulk-loaded into a
temporary SQLite database (in ``ReadOptions.tmp_dir`` or the system temp
folder), joined there with indexes, and the joined rows are streamed out:
artists, then releases, then recordings placed on their first release (lowest
release id, then medium and track position), then ISRCs.

Input: a folder holding ``mbdump/<table>`` files (as the unpacked dump), the
``mbdump`` folder itself, or an ``mbdump*.tar.bz2`` / ``.tar.xz`` / ``.tar``
archive read as a stream (a table member that is a link is read as the file it names in
the archive, in a second pass; one leading outside the archive is a reject, never
followed: :func:`archive_tables`, which both engines read; in a folder, a table that
is a link to nothing, a loop, a folder or a pipe is a reject: :func:`folder_tables`).
Release dates and labels live in other tables
(``release_country``, ``release_label``) that this reader does not load.

Not resumable mid-input (the join needs every table); an interrupted run reads
the dump again, which is safe because every write is an idempotent upsert.
"""

from __future__ import annotations

import errno
import lzma
import os
import re
import sqlite3
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from phonotheque import interrupts
from phonotheque import isrc as isrc_mod
from phonotheque.errors import InputError, InvalidISRC, wrap_os_error
from phonotheque.model import Artist, Provenance, Record, Reject, Release, Track, TrackISRC
from phonotheque.read_ahead import Stopped, stopping
from phonotheque.sources._base import (
    DiskPosition,
    Input,
    ReadOptions,
    archive_members,
    bounded_lines,
    checkpoint,
    printable,
    reject,
    too_long,
)

KIND = "mbdump"
LICENCE = "CC0-1.0"
_ARCHIVE = (".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar")

# table -> (columns kept: name and index in CreateTables.sql order, minimum columns).
TABLES: dict[str, tuple[tuple[tuple[str, int], ...], int]] = {
    "artist": ((("id", 0), ("gid", 1), ("name", 2), ("sort_name", 3)), 4),
    "artist_credit": ((("id", 0), ("name", 1)), 2),
    "artist_credit_name": ((("artist_credit", 0), ("position", 1), ("artist", 2)), 3),
    "recording": ((("id", 0), ("gid", 1), ("name", 2), ("artist_credit", 3), ("length", 4)), 5),
    "isrc": ((("recording", 1), ("isrc", 2)), 3),
    "track": ((("recording", 2), ("medium", 3), ("position", 4), ("length", 8)), 9),
    "medium": ((("id", 0), ("release", 1), ("position", 2)), 3),
    "release": ((("id", 0), ("gid", 1), ("name", 2), ("artist_credit", 3), ("barcode", 9)), 10),
}
_INT64 = 2**63 - 1
INTEGER_COLUMNS = {"id", "artist_credit", "position", "artist", "recording", "medium", "release",
            "length"}
_LOAD_BATCH = 50_000
_STOP_CHECK = 4096  # lines between two looks at read_ahead.stopping() (~10 ms)
_ESC = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.S)
_SIMPLE = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def _unescape_match(m: re.Match[bytes]) -> bytes:
    if m.group(1) is not None:
        return bytes([int(m.group(1), 8) & 0xFF])
    if m.group(2) is not None:
        return bytes([int(m.group(2), 16)])
    c = m.group(3)
    return _SIMPLE.get(c, c)


def copy_fields(raw: bytes) -> list[str | None]:
    """Split one COPY text line into fields: ``\\N`` -> None, escapes decoded, UTF-8.

    Raises ``UnicodeDecodeError`` for bytes that are not UTF-8.
    """
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    out: list[str | None] = []
    for field in raw.split(b"\t"):
        if field == b"\\N":
            out.append(None)
        elif b"\\" in field:
            out.append(_ESC.sub(_unescape_match, field).decode("utf-8"))
        else:
            out.append(field.decode("utf-8"))
    return out


def _schema(conn: sqlite3.Connection) -> None:
    for table, (cols, _) in TABLES.items():
        defs = ", ".join(f"{name} {'INTEGER' if name in INTEGER_COLUMNS else 'TEXT'}"
                         for name, _ in cols)
        conn.execute(f"CREATE TABLE {table}({defs}, line INTEGER)")


class _Loader:
    """Bulk-loads COPY lines into the temporary database, rejecting bad rows."""

    def __init__(self, conn: sqlite3.Connection, reject_source: str, prefix: str) -> None:
        self.conn = conn
        self.reject_source = reject_source
        self.prefix = prefix
        self.rejects: list[Record] = []
        self.rows: dict[str, int] = {}

    def load(self, table: str, stream: IO[bytes]) -> None:
        marks = ",".join("?" * (len(TABLES[table][0]) + 1))
        sql = f"INSERT INTO {table} VALUES ({marks})"
        batch: list[tuple[object, ...]] = []
        n = 0
        for n, (raw, length) in enumerate(bounded_lines(stream), start=1):
            if not n % _STOP_CHECK and stopping():  # a Ctrl-C must not wait for the load
                raise Stopped(f"{self.prefix}{table}: stopped at line {n}")
            row = parse_line(table, raw, length, n, self.reject_source, self.prefix)
            if type(row) is Reject:
                self.rejects.append(row)
                continue
            batch.append(row)  # type: ignore[arg-type]
            if len(batch) >= _LOAD_BATCH:
                self.conn.executemany(sql, batch)
                batch.clear()
        if batch:
            self.conn.executemany(sql, batch)
        self.rows[table] = self.rows.get(table, 0) + n


def parse_line(table: str, raw: bytes | None, length: int, n: int, reject_source: str,
               prefix: str = "mbdump/") -> tuple[object, ...] | Reject:
    """Line ``n`` of ``table`` (``raw``: None for a line over the limit, of ``length``
    bytes) as the row kept of it (the kept columns, then ``n``) or the reject saying why
    not. Both engines' readers parse every line they do not read set-based with it."""
    cols, minimum = TABLES[table]
    where = f"{prefix}{table}:line {n}"
    if raw is None:
        return reject(reject_source, where, too_long(length))
    try:
        fields = copy_fields(raw)
    except UnicodeDecodeError as exc:
        return reject(reject_source, where, f"invalid UTF-8: {exc}")
    if len(fields) < minimum:
        return reject(reject_source, where,
                      f"expected at least {minimum} tab-separated columns, got {len(fields)}")
    try:
        row = tuple(
            int(v) if name in INTEGER_COLUMNS and v is not None else v  # type: ignore[arg-type]
            for name, i in cols
            for v in (fields[i],)
        )
    except ValueError as exc:
        return reject(reject_source, where, f"not a number: {exc}")
    big = next((v for v in row if type(v) is int and not -_INT64 <= v <= _INT64), None)
    if big is not None:
        return reject(reject_source, where, f"number out of range ({len(str(big))} digits)")
    return (*row, n)


class MusicBrainzDump:
    """The ``mbdump`` source."""

    kind = KIND
    licence: str | None = LICENCE
    resumable = False
    always_rescan = False
    ingest_order = 1
    max_batch: int | None = None

    def score(self, path: Path, header: bytes) -> int:
        if path.is_dir():
            tables = (path / "mbdump").is_dir() or (
                (path / "recording").is_file() and (path / "track").is_file())
            return 2 if tables else 0  # beats `tags`, which takes any folder
        return 2 if path.name.lower().endswith((".tar.bz2", ".tbz2")) else 0

    def inputs(self, paths: Sequence[Path]) -> list[Input]:
        out = []
        for p in paths:
            folder = table_folder(p)
            if folder is not None:
                files = [folder / t for t in TABLES if (folder / t).is_file()]
                try:
                    stats = [f.stat() for f in files]
                except OSError as exc:
                    raise wrap_os_error(exc, printable(folder)) from exc
                absolute = Path(os.path.abspath(p))
                out.append(Input(absolute, printable(absolute), sum(s.st_size for s in stats),
                                 max(s.st_mtime_ns for s in stats), None))
            elif p.is_file() and p.name.lower().endswith(_ARCHIVE):
                st = p.stat()
                absolute = Path(os.path.abspath(p))
                out.append(Input(absolute, printable(absolute), st.st_size, st.st_mtime_ns, None))
            else:
                raise InputError(printable(p), "not an mbdump folder (no mbdump/recording or "
                                               "mbdump/artist table) nor a .tar.bz2 dump archive")
        return out

    def read(
        self, item: Input, options: ReadOptions, start: int = 0, line: int = 0
    ) -> Iterator[Record]:
        tmp_root = options.tmp_dir
        with tempfile.TemporaryDirectory(prefix="phono-mbdump-", dir=tmp_root) as tmp:
            # Registered with interrupts: Ctrl-C stops a long load or join statement. Not
            # bound to its thread: the row-path ingest reads in a read-ahead thread, and on
            # Ctrl-C the main thread closes this reader (suspended, so never in use then).
            conn = interrupts.sqlite_connect(Path(tmp) / "join.sqlite", isolation_level=None,
                                             check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=OFF")
                conn.execute("PRAGMA synchronous=OFF")
                conn.execute("PRAGMA cache_size=-131072")
                _schema(conn)
                conn.execute("BEGIN")
                loader = _Loader(conn, item.source, "mbdump/")
                broken = self._load(item, loader)
                conn.execute("COMMIT")
                yield from loader.rejects
                if broken is not None:
                    yield broken
                yield from _join(conn, printable(item.path.name), item.source)
            finally:
                conn.close()
        yield checkpoint(item, KIND, item.size, 0, done=True)

    def _load(self, item: Input, loader: _Loader) -> Record | None:
        """Load every table; return a reject if an archive turns out truncated."""
        folder = table_folder(item.path)
        if folder is not None:
            for table, path in folder_tables(item.path, folder, item.source):
                if isinstance(path, Reject):
                    loader.rejects.append(path)
                    continue
                try:
                    with open(path, "rb", buffering=1 << 20) as f:
                        loader.load(table, f)
                except OSError as exc:
                    raise wrap_os_error(exc, printable(path)) from exc
            return None
        where = "archive"
        try:
            for table, member, found, _disk in archive_tables(item.path, item.source):
                where = member
                if type(found) is Reject:
                    loader.rejects.append(found)
                else:
                    loader.load(table, found)  # type: ignore[arg-type]
        except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as exc:
            return reject(item.source, f"in {where}",
                          f"truncated or corrupt archive: {type(exc).__name__}: {exc}")
        if where == "archive":  # read whole, and not one table in it: the wrong archive
            return reject(item.source, "archive", NO_TABLES)
        return None


#: The reject of an archive holding no dump table: it read whole, so it exited 0 with
#: nothing ingested (a MusicBrainz archive of another kind, or one packed without the
#: ``mbdump/`` folder).
NO_TABLES = ("no MusicBrainz dump table in it (members named mbdump/<table>: "
             + ", ".join(TABLES) + ")")


def _table_of(name: str) -> str | None:
    parts = name.split("/")
    return parts[-1] if parts[-1] in TABLES and parts[-2:-1] == ["mbdump"] else None


def archive_tables(path: Path, reject_source: str
                   ) -> Iterator[tuple[str, str, IO[bytes] | Reject, DiskPosition]]:
    """The dump tables of the archive ``path``: ``(table, member name, its bytes or the
    reject saying why they cannot be read, the archive's disk position)``.

    A table member that is a link (hard or symbolic) gives the bytes of the file it names
    in the archive; one leading outside it, to nothing, in a loop, or a table member of
    another kind (a folder, a device) is a reject naming the member: its table is never
    lost silently (:func:`~phonotheque.sources._base.archive_members`, which the JSON
    dump readers share)."""
    for table, member, found, disk in archive_members(path, reject_source, _table_of,
                                                      "its table is not read"):
        yield table, printable(member.name), found, disk


#: The reason of a table that is neither a file nor a link to one.
_NOT_A_FILE = "not a file (a folder, device or pipe): its table is not read"


def folder_tables(root: Path, folder: Path, reject_source: str
                  ) -> Iterator[tuple[str, Path | Reject]]:
    """The dump tables of the table folder ``folder`` (of the input ``root``), in
    :data:`TABLES` order: ``(table, its file or the reject saying why it cannot be read)``.

    A table that is a symbolic link to a file is read as that file (the user's own
    folder); a name that holds something else (a link to nothing, a loop of links, a
    folder, a pipe or device: opening a pipe would wait for ever) is a reject naming the
    table's path, never skipped silently. A table that is not there at all is not read
    (a dump may leave a table out), as before. Both engines read this."""
    for table in TABLES:
        path = folder / table
        try:
            mode = os.stat(path).st_mode  # follows links
        except OSError as exc:
            if not os.path.islink(path):
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    continue  # not there: a table left out
                raise wrap_os_error(exc, printable(path)) from exc
            target = printable(os.readlink(path))
            if exc.errno == errno.ELOOP:
                why = f"a symbolic link to {target}: a loop of links, its table is not read"
            elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
                why = (f"a symbolic link to {target}, which names no file: its table is "
                       "not read")
            else:
                raise wrap_os_error(exc, printable(path)) from exc
            yield table, reject(reject_source, _shown(root, path), why)
            continue
        if stat.S_ISREG(mode):
            yield table, path
        else:
            yield table, reject(reject_source, _shown(root, path), _NOT_A_FILE)


def _shown(root: Path, path: Path) -> str:
    """``path`` as a reject's locator: relative to the input ``root`` it is under."""
    try:
        return printable(path.relative_to(root).as_posix())
    except ValueError:
        return printable(path)


def table_folder(p: Path) -> Path | None:
    """The folder holding the table files, if ``p`` is a dump folder."""
    for folder in (p / "mbdump", p):
        if folder.is_dir() and any((folder / t).is_file() for t in ("recording", "artist")):
            return folder
    return None


def _join(conn: sqlite3.Connection, source_name: str, reject_source: str) -> Iterator[Record]:
    conn.executescript(
        """
        CREATE INDEX track_recording ON track(recording);
        CREATE INDEX medium_id ON medium(id);
        CREATE INDEX release_id ON release(id);
        CREATE INDEX isrc_recording ON isrc(recording);
        CREATE INDEX artist_id ON artist(id);
        CREATE INDEX artist_credit_id ON artist_credit(id);
        -- the artists of each credit, in credit order
        CREATE TABLE credit_artists AS
          SELECT acn.artist_credit AS id, group_concat(a.gid, ' ') AS gids
          FROM (SELECT * FROM artist_credit_name ORDER BY artist_credit, position) acn
          JOIN artist a ON a.id = acn.artist
          GROUP BY acn.artist_credit;
        CREATE INDEX credit_artists_id ON credit_artists(id);
        """
    )

    for row in conn.execute(
        "SELECT gid, name, sort_name, line FROM artist WHERE gid IS NOT NULL ORDER BY id"
    ):
        yield artist_record(row, source_name)
    for row in conn.execute(
        """SELECT r.gid, r.name, r.barcode, ac.name, r.line FROM release r
           LEFT JOIN artist_credit ac ON ac.id = r.artist_credit
           WHERE r.gid IS NOT NULL ORDER BY r.id"""
    ):
        yield release_record(row, source_name)
    for row in conn.execute(
        """WITH placed AS (
             SELECT t.recording, r.gid AS release_gid, m.position AS disc, t.position AS pos,
                    t.length AS tlen,
                    row_number() OVER (PARTITION BY t.recording
                                       ORDER BY r.id, m.position, t.position) AS rn
             FROM track t JOIN medium m ON m.id = t.medium JOIN release r ON r.id = m.release)
           SELECT rec.gid, rec.name, coalesce(rec.length, p.tlen), ac.name, ca.gids,
                  p.release_gid, p.disc, p.pos, rec.line
           FROM recording rec
           LEFT JOIN artist_credit ac ON ac.id = rec.artist_credit
           LEFT JOIN credit_artists ca ON ca.id = rec.artist_credit
           LEFT JOIN placed p ON p.recording = rec.id AND p.rn = 1
           WHERE rec.gid IS NOT NULL
           ORDER BY rec.id"""
    ):
        yield track_record(row, source_name)
    for row in conn.execute(
        """SELECT rec.gid, i.isrc, i.line FROM isrc i JOIN recording rec ON rec.id = i.recording
           WHERE rec.gid IS NOT NULL ORDER BY i.recording, i.line"""
    ):
        yield isrc_record(row, source_name, reject_source)


# The records of the joined rows, from the columns the joins above select in that order
# (the columnar reader builds the rows it does not stage set-based with them).

def _prov(source_name: str, table: str, line: int) -> Provenance:
    return Provenance(source_name, f"mbdump/{table}:line {line}", LICENCE)


def artist_record(row: Sequence[Any], source_name: str) -> Artist:
    gid, name, sort_name, line = row
    return Artist(gid, name or "", mbid=gid, sort_name=sort_name,
                  prov=_prov(source_name, "artist", line))


def release_record(row: Sequence[Any], source_name: str) -> Release:
    gid, name, barcode, credit, line = row
    return Release(gid, name or "", mbid=gid, barcode=barcode or None, artist_credit=credit,
                   prov=_prov(source_name, "release", line))


def track_record(row: Sequence[Any], source_name: str) -> Track:
    gid, name, length, credit, gids, release_gid, disc, pos, line = row
    return Track(
        gid, name or "", mbid=gid, artist_credit=credit,
        artist_keys=tuple(gids.split(" ")) if gids else (),
        release_key=release_gid, disc=disc, position=pos,
        duration_ms=length if length and length > 0 else None,
        prov=_prov(source_name, "recording", line),
    )


def isrc_record(row: Sequence[Any], source_name: str, reject_source: str) -> Record:
    gid, raw, line = row
    try:
        code = isrc_mod.parse(raw or "")
    except InvalidISRC as exc:
        return reject(reject_source, f"mbdump/isrc:line {line}", f"recording {gid}: {exc}")
    return TrackISRC(gid, code.code, known_country=code.known_country,
                     prov=_prov(source_name, "isrc", line))


SOURCE = MusicBrainzDump()
