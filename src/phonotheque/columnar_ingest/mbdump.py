"""MusicBrainz PostgreSQL dump tables (``phono ingest mbdump``) on the columnar path.

DuckDB reads the ``COPY ... TO STDOUT`` text tables itself (``read_csv`` of whole lines:
no quoting, no escapes, one column), splits them on tabs and keeps the columns the row
reader (:mod:`phonotheque.sources.mbdump`) keeps, with its rules: ``\\N`` is NULL, a
number is a whole number of at most 18 digits. A line SQL would not read exactly as
the row reader does (an escape, too few columns, a number of another spelling, a blank
line) is parsed by the row reader's :func:`~phonotheque.sources.mbdump.parse_line`, so
its row or its reject is the row path's; a table DuckDB refuses (invalid UTF-8, a
line over DuckDB's 2 MB line limit, a byte that is not in COPY's output: ``\\r``, NUL,
``\\x01``, a BOM) is parsed by it line by line, the other tables stay set-based.

The joins are the row reader's (``_join``), in DuckDB: the artists of each credit in
credit order, each recording placed on its first release (lowest release id, then
medium and track position), rows ordered as the row reader yields them, so every staged
row gets the ``seq`` the row reader's record gets and the merge gives the same ids.
Rows that :mod:`~phonotheque.sources.bounds` would put right (text over its limit, a
position or duration out of range) and ISRCs not already in their normal form go
through the row reader's record builders and the same bounds checks.

The tables of an archive (``.tar.bz2``/``.tar.xz``/``.tar``) are streamed out of it
(tarfile, no unpacking of anything else) into the workspace's ``tmp/ingest``, one at a
time. An archive that breaks part-way is read by the row reader entirely (its reject
says where it broke). Not resumable mid-input, as on the row path: the joins need every
table, and a re-run merges the same rows again (an upsert: nothing counted twice).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from phonotheque import isrc
from phonotheque.catalogue import bulk_merge, columnar
from phonotheque.columnar_ingest import StageContext, Staged, _records, read_counted
from phonotheque.errors import wrap_os_error
from phonotheque.ingest import within_bounds
from phonotheque.model import Record, Reject
from phonotheque.sources import Input, bounded_lines, bounds, get, printable
from phonotheque.sources import mbdump as rows
from phonotheque.sources.musicbrainz import ARCHIVE_ERRORS

KIND = rows.KIND
_LICENCE = rows.LICENCE
_READ = 1 << 24  # bytes per read when a table is scanned or copied out of an archive
_BOM = b"\xef\xbb\xbf"
#: One VARCHAR column per line: \x01 is the delimiter (COPY writes it raw, so a line
#: holding one is refused and parsed by Python); no quotes, no escapes (COPY's text
#: format has neither: its escapes are decoded below).
_LINES = ("columns = {'l': 'VARCHAR'}, delim = '\x01', quote = '', escape = '', "
          "header = false, auto_detect = false")
_WHOLE = "-?[0-9]{1,18}"  # what Python's int() reads the same, within 64 bits
_ISRC = "[A-Z]{2}[A-Z0-9]{3}[0-9]{7}"  # an ISRC in normal form (isrc.parse keeps it)
_KIND_SEQ = 40  # seq = kind << 40 | the record's place among its kind



def _table_ddl(table: str) -> str:
    cols = ", ".join(f"{name} {'BIGINT' if name in rows.INTEGER_COLUMNS else 'VARCHAR'}"
                     for name, _ in rows.TABLES[table][0])
    return f"CREATE OR REPLACE TEMP TABLE mbd_{table}({cols}, line BIGINT)"


def _arrow_types(table: str) -> dict[str, pa.DataType]:
    types = {name: pa.int64() if name in rows.INTEGER_COLUMNS else pa.string()
             for name, _ in rows.TABLES[table][0]}
    return types | {"line": pa.int64()}


class _Scan:
    """What a table's bytes say before DuckDB reads them: how many lines the row
    reader sees (split on ``\\n``, a last line without one counted) and whether DuckDB
    could read them otherwise (``\\r`` is a line end to DuckDB, NUL and a BOM may be
    dropped)."""

    def __init__(self) -> None:
        self.newlines = 0
        self.size = 0
        self.last = b""
        self.odd = False

    def add(self, block: bytes) -> None:
        if not self.size and block.startswith(_BOM):
            self.odd = True
        self.newlines += block.count(b"\n")
        self.odd = self.odd or b"\r" in block or b"\x00" in block
        self.size += len(block)
        self.last = block[-1:]

    @property
    def lines(self) -> int:
        return self.newlines + (1 if self.size and self.last != b"\n" else 0)


class _Broken(Exception):
    """The archive breaks part-way (the row reader reads it and says where)."""


class MbdumpReader(_records.MergedByBulkMerge):
    kind = KIND
    resumable = False  # one part per input: the joins need every table

    def stage(self, con: columnar.Connection, item: Input,
              ctx: StageContext) -> Generator[Staged, None, None]:
        folder = ctx.tmp / "mbdump"
        staged = Staged()
        step = ctx.step or (lambda what, disk: None)
        try:
            try:
                self._load(con, item, folder, staged.rejects, step)
            except _Broken:
                _drop(con)
                yield _records.stage(con, item, get(KIND).read(item, ctx.options))
                return
            # staged rows ~ the tracks, ISRCs, releases and artists loaded
            loaded = " + ".join(f"(SELECT count(*) FROM mbd_{t})"
                                for t in ("track", "isrc", "release", "artist"))
            rows = columnar.integer(con, f"SELECT {loaded}")
            bulk_merge.create_staging(con, ctx.tmp / bulk_merge.SCRATCH_FILE
                                      if bulk_merge.needs_scratch(con, rows) else None)
            step("joining the tables", item.size)
            _join(con, item, staged)
        finally:
            _drop(con)  # before the merge (memory), also when a statement failed
            shutil.rmtree(folder, ignore_errors=True)
        step("merging into the catalogue", item.size)
        yield staged

    def _load(self, con: columnar.Connection, item: Input, folder: Path,
              rejects: list[Reject], step: Callable[[str, int], None]) -> None:
        """Every table of ``item`` into ``mbd_<table>`` (the kept columns and the line),
        in the row reader's order; the lines refused go to ``rejects``. ``step`` hears of
        each table loaded, with the bytes of the input read so far."""
        for table in rows.TABLES:
            con.execute(_table_ddl(table))
        tables = rows.table_folder(item.path)
        if tables is not None:
            done = 0
            for table, path in rows.folder_tables(item.path, tables, item.source):
                if isinstance(path, Reject):  # not a file: the row reader's reject
                    rejects.append(path)
                    continue
                scan = _Scan()
                try:
                    with open(path, "rb") as f:
                        while block := f.read(_READ):
                            scan.add(block)
                except OSError as exc:
                    raise wrap_os_error(exc, printable(path)) from exc
                _load_table(con, item, table, path, scan, rejects)
                done += scan.size
                step(f"table {table} loaded", done)
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise wrap_os_error(exc, folder, writing=True) from exc
        found = 0
        for name, copied, scan, disk in _members(item, folder, rejects):
            found += 1
            if copied is None:  # a table member that cannot be read: its reject is in rejects
                continue
            try:
                _load_table(con, item, name, copied, scan, rejects)
            finally:
                copied.unlink(missing_ok=True)
            step(f"table {name} loaded", disk)
        if not found:
            raise _Broken(rows.NO_TABLES)  # the row reader's reject says so


def _members(item: Input, folder: Path, rejects: list[Reject]
             ) -> Iterator[tuple[str, Path | None, _Scan, int]]:
    """The dump tables of the archive ``item`` (those the row reader reads: a link's
    are the file it names in the archive, see :func:`rows.archive_tables`), each copied
    into a file of ``folder`` (the caller removes it) and scanned on the way, with the
    bytes of the archive read so far; a table that cannot be read is added to
    ``rejects`` (its path None). Raises :class:`_Broken` where the archive breaks."""
    n = 0
    try:
        for name, _member, source, disk in rows.archive_tables(item.path, item.source):
            if type(source) is Reject:
                rejects.append(source)
                yield name, None, _Scan(), disk.tell()
                continue
            n += 1
            path = folder / f"{n}-{name}"
            scan = _copy(source, path)  # type: ignore[arg-type]
            yield name, path, scan, disk.tell()
    except ARCHIVE_ERRORS as exc:  # our own files' errors are PhonoErrors, not these
        raise _Broken(f"{type(exc).__name__}: {exc}") from exc


def _copy(source: IO[bytes], path: Path) -> _Scan:
    scan = _Scan()
    try:
        out = open(path, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise wrap_os_error(exc, path, writing=True) from exc
    with out:
        while True:
            block = source.read(_READ)
            if not block:
                return scan
            scan.add(block)
            try:
                out.write(block)
            except OSError as exc:
                raise wrap_os_error(exc, path, writing=True) from exc


def _load_table(con: columnar.Connection, item: Input, table: str, path: Path, scan: _Scan,
                rejects: list[Reject]) -> None:
    """Append the rows of one table file to ``mbd_<table>``: set-based if DuckDB reads
    its lines one to one, else every line through :func:`rows.parse_line`."""
    if not scan.lines:
        return
    if scan.odd or not _read_lines(con, path, scan.lines):
        _python_table(con, item, table, path, rejects)
        return
    cols, minimum = rows.TABLES[table]
    # An octal or hex escape in any column (kept or not) may decode to bytes that are
    # not UTF-8, which makes the row reader refuse the whole line.
    flags = [f"f IS NULL OR len(f) < {minimum}", "regexp_matches(l, '\\\\[0-7x]')"]
    values = []
    for name, i in cols:
        v = f"f[{i + 1}]"
        if name in rows.INTEGER_COLUMNS:
            flags.append(f"({v} <> '\\N' AND NOT regexp_full_match({v}, '{_WHOLE}'))")
            values.append(f"CAST(nullif({v}, '\\N') AS BIGINT)")
        else:
            flags.append(f"({v} <> '\\N' AND contains({v}, '\\'))")
            values.append(f"nullif({v}, '\\N')")
    # The split lines are read twice and never stored: a table of them (each line and
    # its list of fields, uncompressed in a TEMP table) was the load's largest, beside
    # the lines themselves. The first pass keeps only the few odd lines' numbers.
    split = "(SELECT rowid + 1 AS line, l, string_split(l, chr(9)) AS f FROM mbd_lines)"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE mbd_odd AS
        SELECT line FROM {split} WHERE {" OR ".join(flags)}""")
    con.execute(f"""INSERT INTO mbd_{table}
        SELECT {", ".join(values)}, line FROM {split} ANTI JOIN mbd_odd USING (line)
        ORDER BY line""")
    odd = con.execute("""SELECT rowid + 1 AS line, l FROM mbd_lines
        WHERE rowid + 1 IN (SELECT line FROM mbd_odd) ORDER BY line""").fetchall()
    con.execute("DROP TABLE temp.mbd_odd")
    con.execute("DROP TABLE temp.mbd_lines")
    if odd:
        _insert(con, table, ((n, b"" if text is None else text.encode(), 0) for n, text in odd),
                item, rejects)


def _read_lines(con: columnar.Connection, path: Path, lines: int) -> bool:
    """``path``'s lines into ``mbd_lines`` (rowid = line - 1); False if DuckDB refuses
    the file or does not give one row per line."""
    return read_counted(con, "mbd_lines", f"SELECT l FROM read_csv({columnar.quote(str(path))}, {_LINES})",
                        lines)


def _python_table(con: columnar.Connection, item: Input, table: str, path: Path,
                  rejects: list[Reject]) -> None:
    try:
        with open(path, "rb", buffering=1 << 20) as f:
            numbered = ((n, raw, length)
                        for n, (raw, length) in enumerate(bounded_lines(f), start=1))
            _insert(con, table, numbered, item, rejects)
    except OSError as exc:
        raise wrap_os_error(exc, printable(path)) from exc


def _insert(con: columnar.Connection, table: str,
            numbered: Iterator[tuple[int, bytes | None, int]], item: Input,
            rejects: list[Reject]) -> None:
    """Parse ``(line number, raw line, its length)`` with the row reader's rules; append
    the rows to ``mbd_<table>`` (Arrow batches), the rejects to ``rejects``."""
    types = _arrow_types(table)
    batch: list[tuple[object, ...]] = []
    for n, raw, length in numbered:
        row = rows.parse_line(table, raw, length, n, item.source)
        if type(row) is Reject:
            rejects.append(row)
        else:
            batch.append(row)  # type: ignore[arg-type]
            if len(batch) >= 100_000:
                _records.insert_rows(con, f"mbd_{table}", batch, types)
                batch.clear()
    if batch:
        _records.insert_rows(con, f"mbd_{table}", batch, types)


def _join(con: columnar.Connection, item: Input, staged: Staged) -> None:
    """Stage the row reader's records of the loaded tables (``_join`` of
    :mod:`phonotheque.sources.mbdump`, in DuckDB): artists, releases, recordings placed
    on their first release, ISRCs, numbered in that order."""
    name = printable(item.path.name)

    def prov(table: str, line: str = "line") -> str:
        return f"{columnar.quote(name)}, 'mbdump/{table}:line ' || {line}, '{_LICENCE}'"

    def long(*cols: str) -> str:
        return " OR ".join(f"strlen({c}) > {bounds.MAX_TEXT}" for c in cols)

    # SQLite sorts NULLs first; ties (a repeated id) in the order of the lines, which is
    # the order SQLite's scans and stable sorts give them. Each table goes as soon as
    # the last statement that reads it has run: they are held in memory (or spilled).
    # An ordered aggregate holds its groups outside DuckDB's memory limit (in the C
    # heap: 543 MiB at 35 M recordings, the ingest's peak RSS), and most credits name one
    # artist: only the credits with several names are aggregated.
    con.execute("""CREATE OR REPLACE TEMP TABLE mbd_ca AS
        WITH j AS (SELECT acn.artist_credit AS id, acn.position, acn.line AS nline,
                          a.line AS aline, a.gid
                   FROM mbd_artist_credit_name acn JOIN mbd_artist a ON a.id = acn.artist),
             several AS (SELECT id FROM j GROUP BY id HAVING count(*) > 1)
        SELECT j.id, j.gid AS gids FROM j ANTI JOIN several s ON s.id IS NOT DISTINCT FROM j.id
        UNION ALL
        SELECT j.id, string_agg(j.gid, ' ' ORDER BY j.position NULLS FIRST, j.nline, j.aline)
        FROM j SEMI JOIN several s ON s.id IS NOT DISTINCT FROM j.id GROUP BY j.id""")
    _done(con, "artist_credit_name")
    credits_once = _distinct(con, "mbd_artist_credit", "id IS NOT NULL")  # NULL: never joined
    con.execute(f"""CREATE OR REPLACE TEMP TABLE mbd_a AS
        SELECT {_seq(con, 1, "artist", "a", once=True)} AS seq,
               gid, name, sort_name, line, coalesce({long("name", "sort_name")}, false) AS odd
        FROM mbd_artist a WHERE gid IS NOT NULL""")
    _done(con, "artist")
    con.execute(f"""INSERT INTO stg_artist
        SELECT seq, gid, gid, coalesce(name, ''), sort_name, {prov("artist")}
        FROM mbd_a WHERE NOT odd""")
    _odd(con, item, staged, "SELECT seq, gid, name, sort_name, line FROM mbd_a WHERE odd",
         lambda r: rows.artist_record(r, name))
    _done(con, "a")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE mbd_r AS
        SELECT {_seq(con, 2, "release", "r", once=credits_once)} AS seq,
               r.gid, r.name, r.barcode, ac.name AS credit, r.line,
               coalesce({long("r.name", "r.barcode", "ac.name")}, false) AS odd
        FROM mbd_release r LEFT JOIN mbd_artist_credit ac ON ac.id = r.artist_credit
        WHERE r.gid IS NOT NULL""")
    con.execute(f"""INSERT INTO stg_release
        SELECT seq, gid, gid, coalesce(name, ''), NULL, NULL, nullif(barcode, ''), credit,
               NULL, {prov("release")}
        FROM mbd_r WHERE NOT odd""")
    _odd(con, item, staged,
         "SELECT seq, gid, name, barcode, credit, line FROM mbd_r WHERE odd",
         lambda r: rows.release_record(r, name))
    _done(con, "r")
    # Each recording's first placement: lowest release id, then medium and track position.
    # A window ranks only the recordings on more than one track of their lowest release
    # (a recording on one release twice, on two discs say): a window over every joined
    # track ran out of 3 GiB at 30 M recordings, and one over the tracks of every recording
    # on more than one track at 35 M recordings with MusicBrainz's share of recordings on
    # several releases (50 M tracks, measured). Everything else is hash joins and
    # fixed-size aggregates, which spill.
    con.execute("""CREATE OR REPLACE TEMP TABLE mbd_j AS
        SELECT t.recording, r.gid AS release_gid, m.position AS disc, t.position AS pos,
               t.length AS tlen, r.id AS rid, t.line AS tl, m.line AS ml, r.line AS rl
        FROM mbd_track t JOIN mbd_medium m ON m.id = t.medium
        JOIN mbd_release r ON r.id = m.release
        WHERE t.recording IN (SELECT id FROM mbd_recording WHERE gid IS NOT NULL)""")
    con.execute("""CREATE OR REPLACE TEMP TABLE mbd_n AS
        SELECT recording, min(rid) AS rid FROM mbd_j GROUP BY recording HAVING count(*) > 1""")
    con.execute("""CREATE OR REPLACE TEMP TABLE mbd_f AS
        SELECT j.* FROM mbd_j j JOIN mbd_n n ON n.recording = j.recording AND n.rid = j.rid""")
    con.execute("""CREATE OR REPLACE TEMP TABLE mbd_d AS
        SELECT recording FROM mbd_f GROUP BY recording HAVING count(*) > 1""")
    con.execute("""CREATE OR REPLACE TEMP TABLE mbd_p AS
        SELECT recording, release_gid, disc, pos, tlen FROM mbd_j ANTI JOIN mbd_n USING (recording)
        UNION ALL
        SELECT recording, release_gid, disc, pos, tlen FROM mbd_f ANTI JOIN mbd_d USING (recording)
        UNION ALL
        SELECT recording, release_gid, disc, pos, tlen FROM (
          SELECT *, row_number() OVER (PARTITION BY recording
                                       ORDER BY disc NULLS FIRST, pos NULLS FIRST,
                                                tl, ml, rl) AS rn
          FROM mbd_f SEMI JOIN mbd_d USING (recording))
        WHERE rn = 1""")
    _done(con, "j", "n", "f", "d")
    _done(con, "track", "medium", "release")
    top = bounds.MAX_POSITION
    # The recordings joined to their credit and placement are not stored (a wide TEMP
    # table of every recording, spilled uncompressed at scale): the join runs once for
    # the few odd rows' lines (narrow), once into the staging, and once more for the
    # odd rows' records if there are any.
    joined = """FROM mbd_recording rec
        LEFT JOIN mbd_artist_credit ac ON ac.id = rec.artist_credit
        LEFT JOIN mbd_ca ca ON ca.id = rec.artist_credit
        LEFT JOIN mbd_p p ON p.recording = rec.id
        WHERE rec.gid IS NOT NULL"""
    odd = f"""coalesce({long("rec.name", "ac.name")} OR p.disc < 0 OR p.disc > {top}
                        OR p.pos < 0 OR p.pos > {top}
                        OR coalesce(rec.length, p.tlen) > {bounds.MAX_DURATION_MS},
                        false)"""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE mbd_to AS
        SELECT rec.line, ac.line AS aline {joined} AND {odd}""")
    odd_rows = columnar.integer(con, "SELECT count(*) FROM mbd_to")
    t = f"""(SELECT {_seq(con, 3, "recording", "rec", once=credits_once)} AS seq,
               rec.gid, rec.name, coalesce(rec.length, p.tlen) AS length, ac.name AS credit,
               ca.gids, p.release_gid, p.disc, p.pos, rec.line, ac.line AS aline
        {joined})"""
    on = "ON o.line = t.line AND o.aline IS NOT DISTINCT FROM t.aline"
    con.execute(f"""INSERT INTO stg_track
        SELECT seq, gid, gid, coalesce(name, ''), credit,
               CASE WHEN coalesce(gids, '') = '' THEN []::VARCHAR[]
                    ELSE string_split(gids, ' ') END,
               release_gid, disc, pos, CASE WHEN length > 0 THEN length END,
               {prov("recording")}
        FROM {t} t {f"ANTI JOIN mbd_to o {on}" if odd_rows else ""}""")
    if odd_rows:
        _odd(con, item, staged, "SELECT seq, gid, name, length, credit, gids, release_gid, "
                                f"disc, pos, line FROM {t} t SEMI JOIN mbd_to o {on}",
             lambda r: rows.track_record(r, name))
    _done(con, "to", "artist_credit", "ca", "p")
    countries = ", ".join(columnar.quote(c) for c in sorted(isrc.COUNTRIES))
    # The ISRC links numbered in the row reader's order, not stored (a wide TEMP table of
    # every link, as the recordings' was): straight into the staging, then, only if some
    # ISRC is odd, once more for those links (the same numbering: the filter is outside).
    odd_isrc = f"NOT coalesce(regexp_full_match(i.isrc, '{_ISRC}'), false)"
    links = f"""(SELECT {4 << _KIND_SEQ} + row_number() OVER (ORDER BY i.recording, i.line,
                                                                rec.line) AS seq,
               rec.gid, i.isrc, i.line, {odd_isrc} AS odd
        FROM mbd_isrc i JOIN mbd_recording rec ON rec.id = i.recording
        WHERE rec.gid IS NOT NULL)"""
    con.execute(f"""INSERT INTO stg_isrc
        SELECT seq, gid, isrc, CASE WHEN left(isrc, 2) IN ({countries}) THEN 1 ELSE 0 END,
               {prov("isrc")}
        FROM {links} WHERE NOT odd""")
    if columnar.integer(con, f"SELECT count(*) FROM mbd_isrc i WHERE {odd_isrc}"):
        _odd(con, item, staged, f"SELECT seq, gid, isrc, line FROM {links} WHERE odd",
             lambda r: rows.isrc_record(r, name, item.source))
    _done(con, "isrc", "recording")
    staged.read = bulk_merge.staged_rows(con)


def _distinct(con: columnar.Connection, table: str, where: str) -> bool:
    """Whether the rows of ``table`` matching ``where`` have distinct ids, none NULL, all
    in [0, 2**40)."""
    row = con.execute(f"""SELECT count(id) = count(*) AND count(DISTINCT id) = count(*)
        AND coalesce(min(id) >= 0 AND max(id) < {1 << _KIND_SEQ}, true)
        FROM {table} WHERE {where}""").fetchone()
    return bool(row and row[0])


def _seq(con: columnar.Connection, kind: int, table: str, alias: str, *, once: bool) -> str:
    """SQL of the ``seq`` of the rows of ``mbd_<table> <alias>`` (with a gid) joined to
    ``mbd_artist_credit ac`` (unless it is the artists): kind ``kind``, then the row
    reader's order, ``ORDER BY id`` (NULLs first), then the lines. When the ids are
    distinct and the credits joined are (``once``: what a real dump holds), the id
    alone is that order: a window sorting every joined row (~30 s at 10 M recordings,
    measured) is needed only for a dump with repeated or missing ids."""
    base = kind << _KIND_SEQ
    if once and _distinct(con, f"mbd_{table}", "gid IS NOT NULL"):
        return f"{base} + {alias}.id"
    ties = f"{alias}.line" + (", ac.line" if table != "artist" else "")
    return f"{base} + row_number() OVER (ORDER BY {alias}.id NULLS FIRST, {ties})"


def _done(con: columnar.Connection, *tables: str) -> None:
    for table in tables:
        con.execute(f"DROP TABLE temp.mbd_{table}")


def _odd(con: columnar.Connection, item: Input, staged: Staged, sql: str,
         build: Callable[[tuple[Any, ...]], Record]) -> None:
    """Stage the rows of ``sql`` (``seq`` first) as the row reader's records, through
    the bounds checks (their rejects too)."""
    found = con.execute(sql + " ORDER BY seq").fetchall()
    if not found:
        return
    stager = _records.Stager(con, staged)
    for row in found:
        stager.seq = row[0] - 1
        stager.add(within_bounds(item, [build(row[1:])]))
    stager.flush()


def _drop(con: columnar.Connection) -> None:
    for table in (*rows.TABLES, "lines", "odd", "ca", "a", "r", "j", "n", "f", "d", "p", "to"):
        con.execute(f"DROP TABLE IF EXISTS temp.mbd_{table}")


READER = MbdumpReader()
