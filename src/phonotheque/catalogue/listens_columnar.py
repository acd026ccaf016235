"""Listen-count files read by DuckDB into a staging table, refused as the Python reader refuses.

A columnar workspace reads listens without passing rows through Python: DuckDB scans
the file with an explicit schema into a temporary table, and SQL checks the forms
nearly every row has (a lower/upper-case MBID, a normal or spaced ISRC, a track id,
decimal counts within :data:`~phonotheque.sources.bounds.MAX_LISTENS`). Every row
SQL does not accept — a missing value, an odd spelling, a negative or huge count —
goes to :func:`phonotheque.sources.listens.table_row` and
:func:`phonotheque.sources.bounds.check`, the functions the SQLite path uses, so both
engines keep the same rows and refuse the others with the same reasons and locators
(``row N``). SQL only ever accepts a subset of what Python accepts, normalised the
same way.

What DuckDB reads: CSV (also ``.csv.gz`` / ``.csv.zst``, whose stream is first checked
whole: DuckDB takes a truncated gzip file for a short one) and Parquet. What the Python
reader still reads here (its records are bulk-inserted into the same staging table):
every JSON shape (ListenBrainz top lists, per-user lists, JSON Lines listens, Spotify
plays: nested, mixed shapes whose locators depend on the document's structure), and
any CSV or Parquet file DuckDB refuses (malformed rows, a header with repeated names,
a damaged file), so the rows kept before the damage and the reject that names it are
the Python reader's.

The staging view ``listens_in`` holds one row per accepted input row: ``pos`` (input
order), ``key_kind``, ``key``, ``count``, ``users``, ``locator``;
:func:`phonotheque.catalogue.bulk_listens.merge` merges it into ``listens``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phonotheque.catalogue import columnar
from phonotheque.errors import InputError, wrap_os_error
from phonotheque.model import Listen, Reject
from phonotheque.sources import (
    STAGE,
    CorruptStream,
    Input,
    ReadOptions,
    bounds,
    listens,
    open_input,
    printable,
    without_compression,
)

#: The staging view (temporary, private to the connection).
STAGING = "listens_in"
_RAW = "listens_raw"  # a CSV/Parquet file as read, with SQL's verdict
_ROWS = "listens_rows"  # rows the Python reader made
_COMPRESSION = (".gz", ".zst")

# pyarrow's CSV null spellings (ConvertOptions.null_values with strings_can_be_null):
# the Python reader reads these as missing values, so DuckDB must too.
_NULLS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
          "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null")

_INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                            "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"})
_FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE"})
_MBID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_MBID_ANY_CASE = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ISRC = "[A-Z]{2}[A-Z0-9]{3}[0-9]{7}"
# RE2's \s is [\t\n\f\r ], a subset of Python's; a row with other white space goes to Python.
_ISRC_CHARS = r"[A-Za-z0-9\s-]+"
_TRACK_ID = r"\+?0*[1-9][0-9]{0,17}"
_MAX_TRACK_ID = 10**18 - 1  # 18 digits, what listens' track id pattern accepts
_SLOW_BATCH = 65_536


@dataclass(slots=True)
class Staged:
    """What :func:`stage` put into the staging table for one input."""

    dataset: str
    source: str  # provenance: the file's name
    licence: str | None
    rows: int = 0  # accepted rows (a repeated key counts each time)
    rejects: list[Reject] = field(default_factory=list)
    reader: str = "duckdb"  # duckdb | python: which reader read the file
    kinds: tuple[str, ...] = ()  # the key kinds of the staged rows


class _Fallback(Exception):
    """DuckDB cannot read this file as the Python reader would: let that one read it."""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _format(name: str) -> str | None:
    """``csv`` or ``parquet`` if DuckDB reads the file itself, else None (the row reader)."""
    inner = without_compression(name).lower()
    compressed = inner != name.lower()
    if inner.endswith(".csv") and (not compressed or name.lower().endswith(_COMPRESSION)):
        return "csv"
    if inner.endswith(".parquet") and not compressed:
        return "parquet"
    return None  # JSON, compressed JSON, xz or bzip2 CSV: the Python reader's business


def dataset_name(item: Input, options: ReadOptions) -> str:
    """The dataset an input's counts belong to: the option, else the file name's stem."""
    return options.dataset or listens.stem(item.path.name)


def stage(con: columnar.Connection, item: Input, options: ReadOptions) -> Staged:
    """Read ``item`` into the staging table (replacing what it held); return what happened.

    Raises :class:`InputError` only when the file cannot be opened at all (as the
    Python reader does); a file that opens but cannot be read as listens becomes a
    reject with locator ``file``.
    """
    release(con)
    if not item.path.is_file():
        raise InputError(item.source, "no such file")
    fmt = _format(item.path.name)
    if fmt is not None:
        try:
            return _table(con, item, options, fmt)
        except _Fallback:
            release(con)
    return _python(con, item, options)


# -- CSV and Parquet in SQL -------------------------------------------------------


def _csv_names(item: Input) -> list[str]:
    """The header's column names, as pyarrow's CSV reader names them."""
    try:
        with open_input(item.path) as f:
            first = f.readline()
    except CorruptStream as exc:
        raise _Fallback from exc  # the row reader says where the stream breaks
    except OSError as exc:
        raise wrap_os_error(exc, item.source) from exc
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Fallback from exc
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0] if rows else []


def _check_stream(item: Input) -> None:
    """Decompress the whole file once, discarding it: DuckDB reads a truncated gzip
    stream without a word (the rows before the break, silently), the row reader
    refuses it saying where it breaks. A broken stream goes to the row reader."""
    try:
        with open_input(item.path) as f:
            while f.read1(1 << 22):  # type: ignore[attr-defined]
                pass
    except CorruptStream as exc:
        raise _Fallback from exc
    except OSError as exc:
        raise wrap_os_error(exc, item.source) from exc


def _scan(item: Input, fmt: str, names: list[str]) -> str:
    path = _quote(str(item.path))
    if fmt == "parquet":
        return f"read_parquet({path})"
    columns = ", ".join(f"{_quote(n)}: 'VARCHAR'" for n in names)
    nulls = ", ".join(_quote(n) for n in _NULLS)
    return (f"read_csv({path}, header = true, auto_detect = false, delim = ',', quote = '\"', "
            f"escape = '\"', strict_mode = true, null_padding = false, "
            f"nullstr = [{nulls}], columns = {{{columns}}})")


def _types(con: columnar.Connection, scan: str) -> dict[str, str]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
    except columnar.Error as exc:
        raise _Fallback from exc
    return {str(r[0]): str(r[1]) for r in rows}


def _key_sql(kind: str, col: str, typ: str) -> str:
    """SQL for the normalised key of the forms SQL accepts, NULL for every other row."""
    if typ == "VARCHAR":
        if kind == "mbid":
            return (f"CASE WHEN regexp_full_match({col}, '{_MBID}') THEN {col} "
                    f"WHEN regexp_full_match({col}, '{_MBID_ANY_CASE}') THEN lower({col}) END")
        if kind == "isrc":
            spaced = f"upper(regexp_replace({col}, '[\\s-]+', '', 'g'))"
            return (f"CASE WHEN regexp_full_match({col}, '{_ISRC}') THEN {col} "
                    f"WHEN regexp_full_match({col}, '{_ISRC_CHARS}') "
                    f"AND regexp_full_match({spaced}, '{_ISRC}') THEN {spaced} END")
        if kind == "track_id":
            return (f"CASE WHEN regexp_full_match({col}, '{_TRACK_ID}') "
                    f"THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) END")
    if typ in _INTEGER_TYPES and kind == "track_id":
        return (f"CASE WHEN {col} BETWEEN 1 AND {_MAX_TRACK_ID} "
                f"THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) END")
    return "CAST(NULL AS VARCHAR)"


def _count_sql(col: str, typ: str) -> str:
    """SQL for a count SQL accepts (0 to MAX_LISTENS), NULL for every other value."""
    top = bounds.MAX_LISTENS
    if typ == "VARCHAR":
        digits = len(str(top)) - 1  # up to 12 digits: always below the limit
        return (f"CASE WHEN regexp_full_match({col}, '[0-9]{{1,{digits}}}') "
                f"THEN CAST({col} AS BIGINT) END")
    if typ in _INTEGER_TYPES:
        return f"CASE WHEN {col} BETWEEN 0 AND {top} THEN CAST({col} AS BIGINT) END"
    if typ in _FLOAT_TYPES:
        return (f"CASE WHEN {col} = trunc({col}) AND {col} BETWEEN 0 AND {top} "
                f"THEN CAST({col} AS BIGINT) END")
    return "CAST(NULL AS BIGINT)"


def _table(con: columnar.Connection, item: Input, options: ReadOptions, fmt: str) -> Staged:
    dataset = dataset_name(item, options)
    staged = Staged(dataset, printable(item.path.name), None)
    names: list[str]
    if fmt == "csv":
        if without_compression(item.path.name) != item.path.name:
            _check_stream(item)
        names = _csv_names(item)
        if len(set(names)) != len(names) or not names:
            raise _Fallback  # DuckDB would rename the repeats; the Python reader says which
        types = _types(con, _scan(item, fmt, names))
    else:
        types = _types(con, _scan(item, fmt, []))
        names = list(types)
    try:
        key_col, kind, count_col, users_col = listens.choose_columns(item, names, options)
    except InputError as exc:
        staged.rejects.append(Reject(STAGE, item.source, "file", exc.problem))
        return staged
    k, c = _ident(key_col), _ident(count_col)
    u = _ident(users_col) if users_col else "NULL"
    users_type = types[users_col] if users_col else "VARCHAR"
    scan = _scan(item, fmt, names)
    # One pass over the file: raw values (for the rows SQL does not accept) beside the
    # normalised ones. A table created from a scan keeps the file's order, so rowid + 1
    # is the row number the Python reader reports.
    key, count, users = (_key_sql(kind, k, types[key_col]), _count_sql(c, types[count_col]),
                         _count_sql(u, users_type))
    try:
        # The raw values are kept only for the rows SQL refuses (NULL for the others),
        # so the table holds each accepted key once.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_RAW} AS SELECT "
            "CASE WHEN NOT ok THEN k END AS k, CASE WHEN NOT ok THEN c END AS c, "
            "CASE WHEN NOT ok THEN u END AS u, key, count, users, ok FROM ("
            "SELECT k, c, u, key, count, users, "
            "key IS NOT NULL AND count IS NOT NULL AND (u IS NULL OR users IS NOT NULL) AS ok "
            f"FROM (SELECT {k} AS k, {c} AS c, {u} AS u, {key} AS key, {count} AS count, "
            f"{users} AS users FROM {scan}))")
    except columnar.Error as exc:
        raise _Fallback from exc
    # Every other row: the Python reader's checks decide, with its reasons; the rows
    # they accept are written back in place.
    cur = con.execute(f"SELECT rowid + 1, k, c, u FROM {_RAW} WHERE NOT ok ORDER BY rowid")
    keep: list[tuple[int, str, str, int, int | None, str]] = []
    while True:
        batch = cur.fetchmany(_SLOW_BATCH)
        if not batch:
            break
        for pos, raw_key, raw_count, raw_users in batch:
            locator = f"row {pos}"
            try:
                norm, n, n_users = listens.table_row(kind, raw_key, raw_count, raw_users)
            except listens.BadRow as exc:
                staged.rejects.append(Reject(STAGE, item.source, locator, str(exc)))
                continue
            listen = Listen(kind, norm, n, users=n_users, dataset=dataset)
            if _bounded(item, listen, locator, staged.rejects):
                keep.append((pos, kind, listen.key, listen.count, listen.users, locator))
    if keep:
        with _arrow(con, keep) as rows:
            con.execute(f"UPDATE {_RAW} SET key = p.key, count = p.count, users = p.users, "
                        f"ok = true FROM {rows} p WHERE {_RAW}.rowid = p.pos - 1")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {STAGING} AS SELECT rowid + 1 AS pos, "
                f"{_quote(kind)} AS key_kind, key, count, users, 'row ' || (rowid + 1) AS locator "
                f"FROM {_RAW} WHERE ok")
    row = con.execute(f"SELECT count(*) FROM {_RAW} WHERE ok").fetchone()
    staged.rows = int(row[0]) if row else 0
    staged.kinds = (kind,)
    return staged


# -- the Python reader, for what SQL does not read ---------------------------------


def _python(con: columnar.Connection, item: Input, options: ReadOptions) -> Staged:
    staged = Staged(dataset_name(item, options), printable(item.path.name), None,
                    reader="python")
    keep: list[tuple[int, str, str, int, int | None, str]] = []
    for record in _records(item, options):
        if isinstance(record, Reject):
            staged.rejects.append(record)
        elif isinstance(record, Listen):
            locator = record.prov.locator if record.prov is not None else ""
            if record.prov is not None:
                staged.licence = record.prov.licence
            if _bounded(item, record, locator, staged.rejects):
                keep.append((len(keep) + 1, record.key_kind, record.key, record.count,
                             record.users, locator))
    con.execute(f"CREATE TEMP TABLE {_ROWS}(pos BIGINT, key_kind VARCHAR, key VARCHAR, "
                "count BIGINT, users BIGINT, locator VARCHAR)")
    if keep:
        with _arrow(con, keep) as relation:
            con.execute(f"INSERT INTO {_ROWS} SELECT * FROM {relation}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {STAGING} AS SELECT * FROM {_ROWS}")
    staged.rows = len(keep)
    staged.kinds = tuple(sorted({r[1] for r in keep}))
    return staged


def _records(item: Input, options: ReadOptions) -> Iterator[Any]:
    """The Python reader's records; a file it cannot read on is a ``file`` reject (as the
    SQLite ingest runner records it), after the rows read before the damage."""
    try:
        yield from listens.SOURCE.read(item, options)
    except InputError as exc:
        yield Reject(STAGE, item.source, "file", exc.problem)


def _bounded(item: Input, listen: Listen, locator: str, rejects: list[Reject]) -> bool:
    """:func:`bounds.check` as the ingest runner applies it: False if the row is refused."""
    problems: list[str] = []
    keep = bounds.check(listen, problems)
    for problem in dict.fromkeys(problems):
        rejects.append(Reject(STAGE, item.source, locator, problem, keep))
    return keep


@contextmanager
def _arrow(con: columnar.Connection, rows: list[tuple[int, str, str, int, int | None, str]]
           ) -> Iterator[str]:
    """Rows made in Python as a relation DuckDB reads (one Arrow table, no row loop)."""
    import pyarrow as pa  # imported here: only files SQL does not read need it

    cols = list(zip(*rows, strict=True))
    table = pa.table({
        "pos": pa.array(cols[0], pa.int64()), "key_kind": pa.array(cols[1], pa.string()),
        "key": pa.array(cols[2], pa.string()), "count": pa.array(cols[3], pa.int64()),
        "users": pa.array(cols[4], pa.int64()), "locator": pa.array(cols[5], pa.string()),
    })
    con.register("listens_py", table)
    try:
        yield "listens_py"
    finally:
        con.unregister("listens_py")


def release(con: columnar.Connection) -> None:
    """Drop the staging view and the temporary tables behind it (their memory with them)."""
    con.execute(f"DROP VIEW IF EXISTS {STAGING}")
    con.execute(f"DROP TABLE IF EXISTS {_RAW}")
    con.execute(f"DROP TABLE IF EXISTS {_ROWS}")


def is_columnar_input(path: Path) -> bool:
    """True if DuckDB reads ``path`` itself (CSV, compressed CSV, Parquet)."""
    return _format(path.name) is not None
