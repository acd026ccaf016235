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
whole: DuckDB takes a truncated gzip file for a short one), Parquet, and JSON Lines
listens (``.jsonl``, ``.ndjson``, ``.json``, also ``.gz`` / ``.zst``: ListenBrainz's listen
dumps, one listen per line). For JSON Lines, SQL counts the plain listens (an object
whose ``track_metadata`` holds a recording MBID in ``mbid_mapping`` or
``additional_info``, else an ISRC, in the forms SQL checks; a listen with none of them
is refused with the Python reader's reason); every other line (count rows, Spotify
plays, array rows, containers such as ``{"listens": [...]}``, odd values, a JSON key
written twice: orjson keeps the last, DuckDB the first) goes to
:func:`phonotheque.sources.listens.line_counts`, the Python reader's own code for one
line; the counts are then summed per key in order of first appearance with the
locator of the first line (``line N``, ``line N listens item 2``), as the Python
reader's tally sums them. What the Python reader still reads here (its records are
bulk-inserted into the same staging table): JSON documents (top lists, per-user lists,
a list of listens or plays: one document whose rows' locators follow its structure;
the Python reader parses it whole, so does this), JSON Lines files DuckDB would number
otherwise than ``splitlines`` (a blank line, a ``\r``) or cannot read (a malformed
line: the Python reader names it; a count past any column type), ``.xz``/``.bz2``
files, and any CSV or Parquet file DuckDB refuses (malformed rows, a header with
repeated names, a damaged file), so the rows kept before the damage and the reject
that names it are the Python reader's.

The staging view ``listens_in`` holds one row per accepted input row: ``pos`` (input
order), ``key_kind``, ``key``, ``count``, ``users``, ``locator``;
:func:`phonotheque.catalogue.bulk_listens.merge` merges it into ``listens``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from phonotheque.catalogue import columnar
from phonotheque.errors import InputError, wrap_os_error
from phonotheque.model import Listen, Reject
from phonotheque.sources import (
    MAX_LINE,
    STAGE,
    CorruptStream,
    Input,
    ReadOptions,
    bounds,
    compressed_suffix,
    listens,
    open_input,
    printable,
    utf8_path,
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



def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _format(name: str) -> str | None:
    """``csv``, ``parquet`` or ``jsonl`` if DuckDB reads the file itself, else None (the
    row reader)."""
    inner = without_compression(name).lower()
    compressed = inner != name.lower()
    native = not compressed or name.lower().endswith(_COMPRESSION)
    if inner.endswith(".csv") and native:
        return "csv"
    if inner.endswith(".parquet") and not compressed:
        return "parquet"
    if inner.endswith((".jsonl", ".ndjson", ".json")) and native:
        return "jsonl"  # if it is JSON Lines (see _json_lines); else the row reader
    return None  # xz or bzip2: the Python reader's business


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
    # DuckDB cannot read a file whose path is not UTF-8: the row reader reads it.
    fmt = _format(item.path.name) if utf8_path(item.path) else None
    if fmt is not None:
        try:
            if fmt == "jsonl":
                return _json_lines(con, item, options)
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
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        # a lone \r ends lines (old Mac files): readline() gave the whole file, which
        # csv refuses as one line; the row reader reads such a file as pyarrow does
        raise _Fallback from exc
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
    path = columnar.quote(str(item.path))
    if fmt == "parquet":
        return f"read_parquet({path})"
    columns = ", ".join(f"{columnar.quote(n)}: 'VARCHAR'" for n in names)
    nulls = ", ".join(columnar.quote(n) for n in _NULLS)
    # Named, not guessed: DuckDB guesses from the lower-case suffix alone and read a
    # ``.CSV.GZ`` as text (no row, no error); the row reader takes suffixes in any case.
    compression = {".gz": "gzip", ".zst": "zstd"}.get(compressed_suffix(item.path.name) or "",
                                                      "none")
    return (f"read_csv({path}, header = true, auto_detect = false, delim = ',', quote = '\"', "
            f"compression = '{compression}', "
            f"escape = '\"', strict_mode = true, null_padding = false, "
            f"nullstr = [{nulls}], columns = {{{columns}}})")


def _types(con: columnar.Connection, scan: str) -> dict[str, str]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
    except columnar.Error as exc:
        raise _Fallback from exc
    return {str(r[0]): str(r[1]) for r in rows}


def _parquet_names(con: columnar.Connection, item: Input) -> list[str]:
    """The top-level column names of a Parquet file as written (DESCRIBE shows a
    repeated name renamed): the children of the schema's root, each nested column's
    own children skipped."""
    try:
        rows = con.execute("SELECT name, num_children FROM parquet_schema(?)",
                           [str(item.path)]).fetchall()
    except columnar.Error as exc:
        raise _Fallback from exc
    names: list[str] = []
    skip = 0  # nodes of the current nested column still to pass over
    for name, children in rows[1:]:
        if skip:
            skip += (children or 0) - 1
            continue
        names.append(str(name))
        skip = children or 0
    return names


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
        if len({n.lower() for n in _parquet_names(con, item)}) != len(names):
            # DuckDB renamed a repeated name (``count``, ``count_1``); the Python
            # reader refuses a repeated key or count column, reads the others
            raise _Fallback
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
                f"{columnar.quote(kind)} AS key_kind, key, count, users, 'row ' || (rowid + 1) AS locator "
                f"FROM {_RAW} WHERE ok")
    row = con.execute(f"SELECT count(*) FROM {_RAW} WHERE ok").fetchone()
    staged.rows = int(row[0]) if row else 0
    staged.kinds = (kind,)
    return staged


# -- JSON Lines listens in SQL ------------------------------------------------------

_JSON = "listens_json"  # a JSON Lines file's counts, per key
_JSON_LINES = "listens_jlines"  # its lines as DuckDB read them, with SQL's verdict
_JSON_WS = b" \t\n\r"  # what JSON (orjson) takes for white space
#: What the SQL reads of a line (one parse for all): the listen's keys, and what makes
#: it another shape (a container, rows in a list) for the Python reader.
_PATHS = ("$.track_metadata", "$.track_metadata.mbid_mapping",
          "$.track_metadata.additional_info", "$.track_metadata.mbid_mapping.recording_mbid",
          "$.track_metadata.additional_info.recording_mbid",
          "$.track_metadata.additional_info.isrc", "$.data", "$.payload", "$.recordings",
          "$.listens")
_SUB = 1 << 20  # order of a count: line << 20 | its place among the line's counts


# What DuckDB's JSON reader accepts and orjson (the SQLite path's reader) refuses, as a
# value: NaN and Infinity (Python's json.dumps writes them) and a trailing comma. A plain
# listen line is counted in SQL only, so a file holding one goes to the Python reader,
# which names the line. Looked for in bytes (~1 GB/s measured, beside the block's newline
# count); a match inside a string (a title ", Infinity") only costs that file the slower
# reader. Not looked for: a number past a double (1e400) and nesting past 1,024 levels,
# which no cheap byte pattern tells from an MBID's hex digits or ordinary brackets.
_LENIENT_VALUE = re.compile(rb"[:\[,]\s*-?(?:NaN|Infinity)")
_TRAILING_COMMA = re.compile(rb",\s*[\]}]")
_LENIENT_TAIL = 64  # bytes of the previous block searched again (a match across blocks)


def _lenient(block: bytes) -> bool:
    """Whether ``block`` may hold JSON that DuckDB reads and orjson refuses (above)."""
    if (b"NaN" in block or b"Infinity" in block) and _LENIENT_VALUE.search(block):
        return True
    return _TRAILING_COMMA.search(block) is not None


def _json_layout(item: Input) -> int:
    """The lines of ``item`` if the Python reader reads it as JSON Lines of which DuckDB
    numbers the lines as it does; else :class:`_Fallback`.

    The Python reader takes the whole file as one document if it parses as one, else
    one document per line (``splitlines``). The first line parsing alone and more text
    after it is exactly "not one document"; a ``\r`` (a line break to splitlines,
    not to DuckDB), a ``\v`` or ``\f`` (white space to DuckDB, not to orjson) or a
    broken compressed stream goes to the Python reader.
    """
    lines = 0
    more = False
    last = b""
    try:
        with open_input(item.path) as f:
            first = f.readline()
            while first and not first.strip(_JSON_WS):
                first = f.readline()  # blank lines before the first object
                lines += 1
            try:
                orjson.loads(first)
            except orjson.JSONDecodeError as exc:
                raise _Fallback from exc
            lines += 1
            last = first
            while block := f.read1(1 << 22):  # type: ignore[attr-defined]
                if b"\r" in block or b"\x0b" in block or b"\x0c" in block:
                    # \v and \f: white space to DuckDB around a line's object, a
                    # malformed line to orjson (never valid JSON text, not even in a
                    # string): the Python reader names the line
                    raise _Fallback
                if _lenient(last[-_LENIENT_TAIL:] + block):
                    raise _Fallback
                more = more or bool(block.strip(_JSON_WS))
                lines += block.count(b"\n")
                last = block
    except CorruptStream as exc:
        raise _Fallback from exc
    except OSError as exc:
        raise wrap_os_error(exc, item.source) from exc
    if not more or b"\r" in first:
        raise _Fallback  # one document (one line), or nothing after the first line
    return lines + (0 if last.endswith(b"\n") else 1)  # a last line without its newline


def _json_lines(con: columnar.Connection, item: Input, options: ReadOptions) -> Staged:
    """A JSON Lines listens file: plain listens (a recording MBID in ``mbid_mapping`` or
    ``additional_info``, else an ISRC) counted in SQL, one per line; every other line
    (count rows, Spotify plays, containers, odd values) through the Python reader's
    :func:`listens.line_counts`; summed per key in order of first appearance, each
    with the locator of its first line, as the Python reader's tally does."""
    lines = _json_layout(item)
    staged = Staged(dataset_name(item, options), printable(item.path.name), None)
    paths = "[" + ", ".join(columnar.quote(p) for p in _PATHS) + "]"
    valid = "regexp_full_match(coalesce(json_extract_string({0}, '$'), ''), '{1}')"

    def given(j: str) -> str:  # a JSON string
        return f"coalesce(json_type({j}) = 'VARCHAR', false)"

    def absent(j: str) -> str:
        return f"({j} IS NULL OR json_type({j}) = 'NULL')"

    def obj(j: str) -> str:
        return f"coalesce(json_type({j}) = 'OBJECT', false)"

    def once(key: str, *present: str) -> str:
        # the key's name appears in the line's text as often as the key is found: no
        # object repeats it (orjson keeps the last of repeated keys, DuckDB the first)
        k = columnar.quote(f'"{key}"')
        found = " + ".join(f"({j} IS NOT NULL)::INTEGER" for j in present)
        return f"(strlen(raw) - strlen(replace(raw, {k}, ''))) = {len(key) + 2} * ({found})"

    mbid1 = given("m1") + " AND " + valid.format("m1", _MBID_ANY_CASE)
    mbid2 = f"{absent('m1')} AND {given('m2')} AND " + valid.format("m2", _MBID_ANY_CASE)
    isrc = f"{absent('m1')} AND {absent('m2')} AND {given('i')} AND " + valid.format("i", _ISRC)
    falsy = " AND ".join(f"({absent(j)} OR CAST({j} AS VARCHAR) = '\"\"')"
                         for j in ("m1", "m2", "i"))
    path = columnar.quote(str(item.path))
    # Fast: read_json with the listen's structure typed (DuckDB refuses a line whose
    # objects repeat a key, or whose track_metadata, mbid_mapping or additional_info is
    # not an object). Per line: every line as JSON text, the keys checked against the
    # text (5 scans of each line: 3x the CPU), the raw text kept for Python.
    ai_t = "STRUCT(recording_mbid JSON, isrc JSON)"
    columns = {"track_metadata": f"STRUCT(mbid_mapping STRUCT(recording_mbid JSON), "
                                 f"additional_info {ai_t})",
               "data": "JSON", "payload": "JSON", "recordings": "JSON", "listens": "JSON"}
    typed = "{" + ", ".join(f"{columnar.quote(k)}: {columnar.quote(v)}" for k, v in columns.items()) + "}"
    fast = f"""SELECT NULL::VARCHAR AS raw, track_metadata IS NOT NULL AS shape,
                   track_metadata.mbid_mapping.recording_mbid AS m1,
                   track_metadata.additional_info.recording_mbid AS m2,
                   track_metadata.additional_info.isrc AS i,
                   data AS c1, payload AS c2, recordings AS c3, listens AS c4
            FROM read_json({path}, format = 'newline_delimited', columns = {typed},
                           maximum_object_size = {MAX_LINE})"""
    per_line = f"""SELECT raw, {obj('tm')} AND ({absent('mm')} OR {obj('mm')})
                     AND ({absent('ai')} OR {obj('ai')})
                     AND {once('track_metadata', 'tm')} AND {once('mbid_mapping', 'mm')}
                     AND {once('additional_info', 'ai')}
                     AND {once('recording_mbid', 'm1', 'm2')} AND {once('isrc', 'i')} AS shape,
                   m1, m2, i, c1, c2, c3, c4
            FROM (SELECT raw, p[1] AS tm, p[2] AS mm, p[3] AS ai, p[4] AS m1,
                         p[5] AS m2, p[6] AS i, p[7] AS c1, p[8] AS c2, p[9] AS c3,
                         p[10] AS c4
                  FROM (SELECT CAST(json AS VARCHAR) AS raw, json_extract(json, {paths}) AS p
                        FROM read_ndjson_objects({path}, maximum_object_size = {MAX_LINE})))"""
    for lines_sql in (fast, per_line):
        try:
            # rowid numbers the lines (a table keeps the file's order); ``flag``: the
            # Python reader reads the line (``raw``: its text, if DuckDB kept it)
            con.execute(f"""CREATE OR REPLACE TEMP TABLE {_JSON_LINES} AS
                SELECT kind, key, kind IS NULL AND plain AND nokey AS nokey,
                       NOT plain OR (kind IS NULL AND NOT nokey) AS flag,
                       CASE WHEN NOT plain OR (kind IS NULL AND NOT nokey) THEN raw END AS raw
                FROM (SELECT raw,
                         CASE WHEN {mbid1} THEN 'mbid' WHEN {mbid2} THEN 'mbid'
                              WHEN {isrc} THEN 'isrc' END AS kind,
                         CASE WHEN {mbid1} THEN lower(json_extract_string(m1, '$'))
                              WHEN {mbid2} THEN lower(json_extract_string(m2, '$'))
                              WHEN {isrc} THEN json_extract_string(i, '$') END AS key,
                         {falsy} AS nokey,
                         shape AND {absent('c1')} AND {absent('c2')} AND {absent('c3')}
                           AND {absent('c4')} AS plain
                      FROM ({lines_sql}))""")
            row = con.execute(f"SELECT count(*) FROM {_JSON_LINES}").fetchone()
            break
        except (columnar.Error, UnicodeDecodeError) as exc:
            # malformed JSON, bad UTF-8...: the Python reader says where
            if lines_sql is per_line:
                raise _Fallback from exc
    if row is None or int(row[0]) != lines:
        raise _Fallback  # blank lines: DuckDB's rows are not the file's lines
    staged.rejects.extend(
        Reject(STAGE, item.source, f"line {n}", "listen has no recording_mbid and no ISRC")
        for (n,) in con.execute(f"SELECT rowid + 1 FROM {_JSON_LINES} WHERE nokey "
                                "ORDER BY rowid").fetchall())
    counts: list[listens.LineCount] = []
    n_of: list[int] = []
    top = bounds.MAX_LISTENS
    flagged = con.execute(f"SELECT rowid + 1, raw FROM {_JSON_LINES} WHERE flag "
                          "ORDER BY rowid").fetchall()
    if flagged and flagged[0][1] is None:  # read by read_json: the lines from the file
        flagged = list(_lines_numbered(item, [int(n) for n, _ in flagged]))
    for n, raw in flagged:
        got, rejects = listens.line_counts(item, int(n), raw if isinstance(raw, bytes)
                                           else raw.encode())
        if any(c[2] > top or (c[3] or 0) > top or c[5] >= _SUB for c in got) or any(
                isinstance(r, Reject) and r.reason.startswith("malformed JSON") for r in rejects):
            # a count past any column type, or a line DuckDB read and orjson does not
            # (its message's positions are the file's): the row reader reads the file
            raise _Fallback
        counts.extend(got)
        n_of.extend([int(n)] * len(got))
        staged.rejects.extend(r for r in rejects if isinstance(r, Reject))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_JSON}(o BIGINT, key_kind VARCHAR, "
                "key VARCHAR, count HUGEINT, users HUGEINT, locator VARCHAR)")
    con.execute(f"""INSERT INTO {_JSON} SELECT (rowid + 1) * {_SUB}, kind, key, 1, NULL,
                    'line ' || (rowid + 1) FROM {_JSON_LINES} WHERE NOT flag AND NOT nokey""")
    if counts:
        rows = [(n * _SUB + c[5], c[0], c[1], c[2], c[3], c[4]) for n, c in zip(n_of, counts,
                                                                                strict=True)]
        with _arrow(con, rows) as relation:
            con.execute(f"INSERT INTO {_JSON} SELECT * FROM {relation}")
    # summed per key, the locator of its first line, in order of first appearance
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {_JSON_LINES} AS
        SELECT row_number() OVER (ORDER BY o) AS pos, key_kind, key, count, users, locator
        FROM (SELECT min(o) AS o, key_kind, key, sum(count) AS count, sum(users) AS users,
                     arg_min(locator, o) AS locator
              FROM {_JSON} GROUP BY key_kind, key)""")
    con.execute(f"DROP TABLE {_JSON}")
    _json_bounds(con, item, staged)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {STAGING} AS SELECT pos, key_kind, key, "
                f"CAST(count AS BIGINT) AS count, CAST(users AS BIGINT) AS users, locator "
                f"FROM {_JSON_LINES}")
    row = con.execute(f"SELECT count(*), list(DISTINCT key_kind ORDER BY key_kind) "
                      f"FROM {_JSON_LINES}").fetchone()
    staged.rows = int(row[0]) if row else 0
    staged.kinds = tuple(row[1] or ()) if row else ()
    if staged.rows:
        staged.licence = listens.LB_LICENCE
    elif not staged.rejects:
        staged.rejects.append(Reject(STAGE, item.source, "document", "no listen counts found"))
    return staged


def _json_bounds(con: columnar.Connection, item: Input, staged: Staged) -> None:
    """:func:`_bounded` for the sums past :data:`bounds.MAX_LISTENS` (the counts of
    several lines the Python reader read): put right or dropped, as the row path does."""
    top = bounds.MAX_LISTENS
    for pos, kind, key, count, users, locator in con.execute(
            f"SELECT pos, key_kind, key, count, users, locator FROM {_JSON_LINES} "
            f"WHERE count > {top} OR users > {top} ORDER BY pos").fetchall():
        listen = Listen(kind, key, int(count), users=None if users is None else int(users))
        if _bounded(item, listen, locator, staged.rejects):
            con.execute(f"UPDATE {_JSON_LINES} SET count = ?, users = ? WHERE pos = ?",
                        [listen.count, listen.users, pos])
        else:
            con.execute(f"DELETE FROM {_JSON_LINES} WHERE pos = ?", [pos])


def _lines_numbered(item: Input, wanted: list[int]) -> Iterator[tuple[int, bytes]]:
    """Lines ``wanted`` (numbers, ascending) of ``item``, raw (split on ``\\n`` only)."""
    it = iter(wanted)
    target = next(it, None)
    try:
        with open_input(item.path) as f:
            for n, raw in enumerate(f, start=1):
                if target is None:
                    return
                if n == target:
                    yield n, raw
                    target = next(it, None)
    except CorruptStream as exc:
        raise _Fallback from exc
    except OSError as exc:
        raise wrap_os_error(exc, item.source) from exc


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
    for table in (_RAW, _ROWS, _JSON, _JSON_LINES):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def is_columnar_input(path: Path) -> bool:
    """True if DuckDB reads ``path`` itself (CSV, compressed CSV, Parquet)."""
    return _format(path.name) is not None
