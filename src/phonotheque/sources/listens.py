"""Listen counts: ListenBrainz JSON, ListenBrainz listens (JSON Lines), CSV and Parquet.

Shapes read (each found in ListenBrainz's own test data):

* rows as objects with ``recording_mbid`` (or ``isrc``) and ``total_listen_count``
  / ``listen_count`` / ``count``, optionally ``total_user_count`` — as a list, under
  ``data`` or ``payload``, or as a list of per-user objects each with ``data``;
* rows as arrays, the ListenBrainz popularity table layout
  ``[artist_mbid, recording_mbid, total_listen_count, total_user_count]``;
* listens (one per JSON line, or a list): each counts one for its
  ``track_metadata.mbid_mapping.recording_mbid`` or
  ``track_metadata.additional_info.recording_mbid``, else its ISRC;
* Spotify play records (``track.external_ids.isrc`` + ``played_at``): one listen per ISRC;
* CSV and Parquet with a key column (``isrc``, ``recording_mbid`` or ``track_id``)
  and a count column, streamed in record batches.

JSON and CSV files may be compressed (``.csv.zst``, ``.json.gz``, ...): they are
decompressed as read, and count as the same dataset as the plain file. A
compressed JSON file that ends early keeps the rows before the break.

Counts belong to a *dataset* (default: the file name without extension); the
store replaces a dataset's count for a key, so ingesting a file again replaces
its counts instead of adding to them. JSON rows with the same key are summed
(per-user rows add up to totals; listens are counted); CSV/Parquet files are
expected to have one row per key and a repeated key keeps its last row.

Listens JSON is aggregated in memory (one counter per distinct recording),
so it is not resumable mid-file; nor are CSV/Parquet. All are re-read whole
after an interruption, which is safe because counts are replaced, not added.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from phonotheque import isrc as isrc_mod
from phonotheque.errors import InputError, InvalidISRC, wrap_os_error
from phonotheque.model import Listen, Provenance, Record
from phonotheque.sources._base import (
    COMPRESSED_SUFFIXES,
    CorruptStream,
    Input,
    ReadOptions,
    checkpoint,
    compressed_suffix,
    expand_files,
    open_input,
    printable,
    reject,
    utf8_path,
    without_compression,
)

if TYPE_CHECKING:
    import pyarrow as pa

KIND = "listens"
# Keys only ListenBrainz JSON has (a MusicBrainz dump line has none of them).
_LB_MARKERS = (b'"listen_count"', b'"total_listen_count"', b'"listened_at"',
               b'"track_metadata"')
LB_LICENCE = "CC0-1.0"  # ListenBrainz data dumps and statistics are CC0
_TEXT_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv")
SUFFIXES = (*_TEXT_SUFFIXES, ".parquet",
            *(s + c for s in _TEXT_SUFFIXES for c in COMPRESSED_SUFFIXES))
KEY_COLUMNS = {"recording_mbid": "mbid", "mbid": "mbid", "isrc": "isrc", "track_id": "track_id"}
COUNT_COLUMNS = ("count", "listens", "listen_count", "total_listen_count", "plays")
USER_COLUMNS = ("total_user_count", "user_count", "users")
_MBID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_BATCH_ROWS = 65_536
_INT = re.compile(r"^[+-]?[0-9]+$")
# A track id is a positive SQLite rowid: at most 19 digits (range checked by int below).
_TRACK_ID = re.compile(r"^\+?0*[1-9][0-9]{0,17}$")


class BadRow(ValueError):
    """A row refused; the message is the reject reason."""


def _key(kind: str, raw: Any) -> str:
    """Validate and normalise a key value of ``kind``; raise BadRow."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise BadRow(f"missing {'recording_mbid' if kind == 'mbid' else kind}")
    if kind == "mbid":
        v = str(raw).strip().lower()
        if not _MBID.match(v):
            raise BadRow(f"invalid recording MBID {raw!r}")
        return v
    if kind == "isrc":
        try:
            return isrc_mod.parse(str(raw)).code
        except InvalidISRC as exc:
            raise BadRow(str(exc)) from None
    if kind == "track_id":
        text = str(raw).strip()
        if not _TRACK_ID.match(text):
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise BadRow(f"invalid track id {shown!r}")
        return str(int(text))
    raise BadRow(f"unknown key kind {kind}")


def _count(raw: Any, what: str = "count") -> int:
    """A whole, non-negative count from an int, an integral float or decimal digits."""
    if isinstance(raw, bool) or raw is None:
        raise BadRow(f"missing {what}")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and _INT.match(raw.strip()):
        digits = raw.strip().lstrip("+-").lstrip("0")
        if len(digits) > 100:  # past MAX_LISTENS anyway; int() of 5,000 digits raises
            raise BadRow(f"{what} of {len(digits):,} digits is out of range")
        value = int(raw.strip())
    else:
        raise BadRow(f"invalid {what} {raw!r} (not a whole number)")
    if value < 0:
        raise BadRow(f"negative {what} {value}")
    return value


class _Tally:
    """Counts summed per (key kind, key) for JSON inputs."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], list[Any]] = {}  # -> [count, users, locator]

    def add(self, kind: str, key: str, count: int, users: int | None, locator: str) -> None:
        row = self.counts.get((kind, key))
        if row is None:
            self.counts[(kind, key)] = [count, users, locator]
        else:
            row[0] += count
            if users is not None:
                row[1] = (row[1] or 0) + users


def _object(parent: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    """``parent[name]`` when it is a JSON object; ``{}`` when missing or empty (null,
    "", [], 0 mean "none", as ``or {}`` always read them). Anything else is refused:
    its keys cannot be read, and guessing would count a listen against nothing."""
    value = parent.get(name)
    if isinstance(value, dict):
        return value
    if not value:
        return {}
    raise BadRow(f"{where}.{name} is a {type(value).__name__}, not an object")


def _row(obj: dict[str, Any], tally: _Tally, locator: str) -> str | None:
    """Add one JSON row or listen to ``tally``; return a reject reason or None."""
    try:
        tm = obj.get("track_metadata")
        if isinstance(tm, dict):  # a ListenBrainz listen: counts one
            mapping = _object(tm, "mbid_mapping", "track_metadata")
            info = _object(tm, "additional_info", "track_metadata")
            mbid = mapping.get("recording_mbid") or info.get("recording_mbid")
            if mbid:
                tally.add("mbid", _key("mbid", mbid), 1, None, locator)
            elif info.get("isrc"):
                tally.add("isrc", _key("isrc", info["isrc"]), 1, None, locator)
            else:
                return "listen has no recording_mbid and no ISRC"
            return None
        track = obj.get("track")
        if isinstance(track, dict) and "played_at" in obj:  # a Spotify play record
            code = _object(track, "external_ids", "track").get("isrc")
            if not code:
                return "Spotify play without ISRC (track.external_ids.isrc)"
            tally.add("isrc", _key("isrc", code), 1, None, locator)
            return None
        count_raw = next((obj[c] for c in COUNT_COLUMNS if c in obj), None)
        users_raw = next((obj[c] for c in USER_COLUMNS if c in obj), None)
        if "recording_mbid" in obj or "mbid" in obj:
            kind, raw = "mbid", obj.get("recording_mbid", obj.get("mbid"))
        elif "isrc" in obj:
            kind, raw = "isrc", obj["isrc"]
        elif "artist_mbid" in obj:
            return "artist-level count (artist_mbid), not a recording"
        else:
            return f"no recording_mbid or isrc (keys: {', '.join(sorted(obj)[:8])})"
        key = _key(kind, raw)
        users = None if users_raw is None else _count(users_raw, "user count")
        tally.add(kind, key, _count(count_raw, "listen count"), users, locator)
    except BadRow as exc:
        return str(exc)
    return None


def _array_row(row: list[Any], tally: _Tally, locator: str) -> str | None:
    """``[artist_mbid, recording_mbid, total_listen_count, total_user_count]`` and shorter forms."""
    try:
        if len(row) == 4:
            _, mbid, count, users = row
        elif len(row) == 3:
            mbid, count, users = row
        elif len(row) == 2:
            (mbid, count), users = row, None
        else:
            return f"array row of {len(row)} values (expected 2 to 4)"
        tally.add("mbid", _key("mbid", mbid), _count(count, "listen count"),
                  None if users is None else _count(users, "user count"), locator)
    except BadRow as exc:
        return str(exc)
    return None


class ListenCounts:
    """The ``listens`` source."""

    kind = KIND
    licence: str | None = None
    resumable = False
    always_rescan = False
    ingest_order = 3  # last: listens resolve against the tracks the others add
    max_batch: int | None = None

    def score(self, path: Path, header: bytes) -> int:
        # (the header of a compressed file comes decompressed: see sources.detect)
        name = path.name.lower()
        if name.endswith(".parquet"):
            return 2
        name = without_compression(name)
        if name.endswith((".csv", ".tsv")):
            return 2
        if name.endswith((".json", ".jsonl", ".ndjson")) and (
                header.lstrip().startswith(b"[") or any(m in header for m in _LB_MARKERS)):
            return 2
        return 0

    def inputs(self, paths: Sequence[Path]) -> list[Input]:
        return [Input(i.path, i.source, i.size, i.mtime_ns, None, i.problem)
                for i in expand_files(paths, SUFFIXES)]

    def read(
        self, item: Input, options: ReadOptions, start: int = 0, line: int = 0
    ) -> Iterator[Record]:
        name = item.path.name
        lower = name.lower()
        dataset = options.dataset or stem(name)
        inner = without_compression(lower)
        if inner.endswith(".tsv") or (inner.endswith(".parquet") and inner != lower):
            # not JSON: read as JSON, every line was refused as "malformed JSON"
            raise InputError(item.source, (
                "a TSV file is not read (listen counts are read from CSV, Parquet or JSON)"
                if inner.endswith(".tsv") else "a compressed Parquet file is not read: "
                "decompress it (Parquet compresses its own pages)"))
        if lower.endswith(".parquet"):
            yield from self._table(item, options, dataset, _parquet_batches(item, options))
        elif without_compression(lower).endswith(".csv"):
            yield from self._table(item, options, dataset, _csv_batches(item, options),
                                   text=True)
        else:
            yield from self._json(item, dataset)
        yield checkpoint(item, KIND, item.size, 0, done=True)

    # -- JSON -----------------------------------------------------------------

    def _json(self, item: Input, dataset: str) -> Iterator[Record]:
        tally = _Tally()
        rejects = []
        data, broken = _read_all(item)
        if broken is not None:
            rejects.append(broken)
        try:
            docs: list[tuple[str, Any]] = [("document", orjson.loads(data))]
        except orjson.JSONDecodeError:
            docs = []  # JSON Lines: one document per line
            for n, raw in enumerate(data.splitlines(), start=1):
                if not raw.strip():
                    continue
                try:
                    docs.append((f"line {n}", orjson.loads(raw)))
                except orjson.JSONDecodeError as exc:
                    rejects.append(reject(item.source, f"line {n}", f"malformed JSON: {exc}"))
        for where, doc in docs:
            _count_doc(item, doc, where, tally, rejects)
        if not tally.counts and not rejects:
            rejects.append(reject(item.source, "document", "no listen counts found"))
        yield from rejects
        file_name = printable(item.path.name)
        for (kind, key), (count, users, locator) in tally.counts.items():
            yield Listen(kind, key, count, users=users, dataset=dataset,
                         prov=Provenance(file_name, locator, LB_LICENCE))

    # -- tables ---------------------------------------------------------------

    def _table(
        self, item: Input, options: ReadOptions, dataset: str,
        batches: Iterator[pa.RecordBatch], *, text: bool = False,
    ) -> Iterator[Record]:
        """The rows of ``batches``; with ``text`` (a CSV file, whose columns are read as
        bytes) the key, count and user count columns are decoded as UTF-8 here, a row
        holding a value that is not UTF-8 refused with its row number (the other
        columns are not read: bytes there lose nothing)."""
        file_name = printable(item.path.name)
        row_no = 0
        columns: tuple[str, str, str, str | None] | None = None
        for batch in batches:
            if columns is None:
                columns = choose_columns(item, batch.schema.names, options)
            key_col, kind, count_col, users_col = columns
            keys = _values(batch, key_col, text)
            counts = _values(batch, count_col, text)
            users = _values(batch, users_col, text) if users_col else [None] * len(keys)
            for raw_key, raw_count, raw_users in zip(keys, counts, users, strict=True):
                row_no += 1
                locator = f"row {row_no}"
                try:
                    if text:
                        raw_key, raw_count, raw_users = (
                            _utf8(v, c) for v, c in ((raw_key, key_col),
                                                     (raw_count, count_col),
                                                     (raw_users, users_col)))
                    key, count, n_users = table_row(kind, raw_key, raw_count, raw_users)
                except BadRow as exc:
                    yield reject(item.source, locator, f"{exc}")
                    continue
                yield Listen(kind, key, count, users=n_users, dataset=dataset,
                             prov=Provenance(file_name, locator, None))


def _values(batch: pa.RecordBatch, column: str, text: bool) -> list[Any]:
    """A column's values; with ``text``, bytes as str when the whole batch is UTF-8 (one
    Arrow cast), else left as bytes for :func:`_utf8` to decode value by value."""
    values = batch.column(column)
    if text:
        import pyarrow as pa

        if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
            try:
                values = values.cast(pa.string())
            except pa.ArrowInvalid:
                pass  # some value is not UTF-8: _utf8 says which row
    return values.to_pylist()  # type: ignore[no-any-return]


def _utf8(value: Any, column: str | None) -> Any:
    """``value`` of a CSV column read as bytes, as text; raise :class:`BadRow` if it is
    not UTF-8."""
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRow(f"column {column!r} is not UTF-8 text ({exc.reason} at byte "
                     f"{exc.start + 1})") from None


#: One count of :func:`line_counts`: key kind, key, listens, users (None: not given),
#: locator, and its place among the line's counts.
LineCount = tuple[str, str, int, int | None, str, int]


def _count_doc(item: Input, doc: Any, where: str, tally: _Tally,
               rejects: list[Record]) -> None:
    """Add every row of one parsed JSON document (or line) to ``tally``; a reject per row
    it refuses."""
    for locator, row in _rows(doc, where):
        if isinstance(row, dict):
            why = _row(row, tally, locator)
        elif isinstance(row, list):
            why = _array_row(row, tally, locator)
        else:
            why = f"not a listen-count row ({type(row).__name__})"
        if why is not None:
            rejects.append(reject(item.source, locator, why))


def line_counts(item: Input, n: int, raw: bytes) -> tuple[list[LineCount], list[Record]]:
    """The counts line ``n`` of a JSON Lines listens file adds (summed per key within the
    line) and the rejects it gives, exactly as :meth:`ListenCounts.read` reads that line.
    The columnar reader counts the plain listens in SQL and hands the other lines here;
    summed per key over the file, in order of first appearance, they are ``read``'s."""
    tally = _Tally()
    rejects: list[Record] = []
    raw = raw[:-1] if raw.endswith(b"\n") else raw  # as splitlines gives it (positions)
    if raw.strip():
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return [], [reject(item.source, f"line {n}", f"malformed JSON: {exc}")]
        _count_doc(item, doc, f"line {n}", tally, rejects)
    counts = [(kind, key, count, users, locator, i) for i, ((kind, key), (count, users, locator))
              in enumerate(tally.counts.items())]
    return counts, rejects


def table_row(kind: str, raw_key: Any, raw_count: Any,
              raw_users: Any) -> tuple[str, int, int | None]:
    """One CSV/Parquet row's normalised key, count and user count; raise :class:`BadRow`.

    The columnar reader (``catalogue/listens_columnar.py``) validates the common
    forms in SQL and hands every other row here, so both engines refuse the same
    rows with the same reasons.
    """
    key = _key(kind, raw_key)
    count = _count(raw_count, "listen count")
    users = None if raw_users is None else _count(raw_users, "user count")
    return key, count, users


def _rows(doc: Any, where: str) -> Iterator[tuple[str, Any]]:
    """The rows of a JSON document, each with a locator."""
    if isinstance(doc, dict):
        for container in ("data", "payload", "recordings", "listens"):
            inner = doc.get(container)
            if isinstance(inner, list | dict):
                yield from _rows(inner, f"{where} {container}")
                return
        yield where, doc  # one row or listen (or something else, rejected by _row)
        return
    if isinstance(doc, list):
        for i, row in enumerate(doc, start=1):
            if isinstance(row, dict) and isinstance(row.get("data"), list):
                yield from _rows(row["data"], f"{where} item {i} data")
            else:
                yield f"{where} item {i}", row
        return
    yield where, doc


def _read_all(item: Input) -> tuple[bytes, Any]:
    """The (decompressed) bytes of a JSON input, and a reject if it breaks off early.

    What decompressed before the break is kept (JSON Lines up to there count).
    """
    blocks: list[bytes] = []
    size = 0
    try:
        with open_input(item.path) as f:
            # read1: one decompression step each; read(n) would drop the steps it had
            # gathered when a later one fails
            while block := f.read1(1 << 20):  # type: ignore[attr-defined]
                blocks.append(block)
                size += len(block)
    except CorruptStream as exc:
        return b"".join(blocks), reject(item.source, f"after uncompressed byte {size:,}",
                                        exc.problem)
    except OSError as exc:
        raise wrap_os_error(exc, item.source) from exc
    return b"".join(blocks), None


def stem(name: str) -> str:
    """The dataset a file's counts belong to: its name without suffixes, as text the
    catalogue can store (a byte that is not UTF-8 shown as ``\\xNN``: :func:`printable`)."""
    name = without_compression(name)
    for suffix in (".parquet", ".csv", ".jsonl", ".ndjson", ".json"):
        if name.lower().endswith(suffix):
            return printable(name[: -len(suffix)])
    return printable(name)


def _pick(item: Input, lower: dict[str, str], names: list[str], given: str | None,
          known: Collection[str], what: str, flag: str) -> str:
    """The column the user named, else the first known one present; a clear error if neither."""
    if given:
        if given.lower() not in lower:
            raise InputError(item.source, f"no {what} column {given!r} (columns: {names})")
        return lower[given.lower()]
    found = [lower[k] for k in known if k in lower]
    if not found:
        raise InputError(item.source, f"no {what} column ({', '.join(known)}) "
                                      f"in columns {names}; use {flag}")
    return found[0]


def choose_columns(
    item: Input, names: list[str], options: ReadOptions
) -> tuple[str, str, str, str | None]:
    lower = {n.lower(): n for n in names}
    key_col = _pick(item, lower, names, options.key, KEY_COLUMNS, "key", "--key")
    kind = KEY_COLUMNS.get(key_col.lower(), "mbid")
    count_col = _pick(item, lower, names, options.count_column, COUNT_COLUMNS, "count",
                      "--count-column")
    users_col = next((lower[c] for c in USER_COLUMNS if c in lower), None)
    for col in (key_col, count_col, users_col):
        # Arrow keeps every duplicate as a column of the same name and then refuses
        # to pick one; which of them holds the values is anybody's guess.
        if col is not None and sum(n.lower() == col.lower() for n in names) > 1:
            raise InputError(item.source, f"header: column {col!r} appears more than once "
                                          f"(columns: {names})")
    return key_col, kind, count_col, users_col


def _parquet_batches(item: Input, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa  # imported here: pyarrow takes 0.3 s to load, most runs never need it
    import pyarrow.parquet as pq

    # Arrow opens a path only if it is UTF-8 (utf8_path): else a file object.
    stream = None if utf8_path(item.path) else open_input(item.path)
    try:
        try:
            pf = pq.ParquetFile(stream or item.path)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(item.source, f"not a readable Parquet file: {exc}") from exc
        key_col, _, count_col, users_col = choose_columns(item, pf.schema_arrow.names, options)
        cols = [c for c in (key_col, count_col, users_col) if c]
        try:
            yield from pf.iter_batches(batch_size=_BATCH_ROWS, columns=cols)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(item.source, f"corrupt Parquet file: {exc}") from exc
    finally:
        if stream is not None:
            stream.close()


def _csv_batches(item: Input, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # Every column as bytes: keys like ISRCs must not be read as numbers, bad counts
    # must become rejects naming the row, not a failed type conversion, and a value that
    # is not UTF-8 must not fail the file (as text, Arrow refused the whole file for one
    # byte, even in a column not read): _table decodes the columns it reads, row by row.
    try:
        with open_input(item.path) as f:
            first = f.readline()
    except CorruptStream as exc:
        raise InputError(item.source, exc.problem) from exc
    except OSError as exc:
        raise wrap_os_error(exc, item.source) from exc
    header = first.decode("utf-8", "replace").strip().split(",")
    names = [h.strip().strip('"') for h in header]
    given: list[str] | None = None  # the column names, if Arrow cannot read the header's
    try:
        first.decode("utf-8")
    except UnicodeDecodeError:
        # A header that is not UTF-8 (a byte in a column's name): Arrow's schema could
        # not show its names (a traceback). The names are read here, the bytes shown as
        # \xNN, and Arrow skips the header line.
        try:
            given = next(csv.reader(io.StringIO(
                first.decode("utf-8-sig", "backslashreplace").rstrip("\r\n"))), [])
        except csv.Error as exc:
            raise InputError(item.source, f"header: malformed CSV: {exc}") from exc
        names = given
    convert = pacsv.ConvertOptions(column_types={n: pa.binary() for n in names},
                                   strings_can_be_null=True)
    # A compressed file is read through our decompressing reader (Arrow has no xz codec).
    # (Arrow opens a path only if it is UTF-8, utf8_path: a file object for any other.)
    stream: Any = (open_input(item.path)
                   if compressed_suffix(item.path.name) or not utf8_path(item.path) else None)
    if first and b"\n" not in first and b"\r" not in first:
        # The whole file is one line without its line end: the header, no rows. Arrow
        # refused it ("Empty CSV file or block"), where the same header with its newline
        # is a file of no rows (as DuckDB reads both): it is given its newline.
        if stream is not None:
            stream.close()
        stream = io.BytesIO(first + b"\n")
    try:
        reader = pacsv.open_csv(stream or item.path, convert_options=convert,
                                read_options=pacsv.ReadOptions(
                                    block_size=1 << 22, column_names=given,
                                    skip_rows=0 if given is None else 1))
        rows = False
        for batch in reader:
            rows = True
            yield batch
        if not rows:  # a header alone: its columns are still checked (as DuckDB does)
            schema = reader.schema
            yield pa.RecordBatch.from_arrays([pa.array([], t) for t in schema.types],
                                             schema=schema)
    except CorruptStream as exc:
        raise InputError(item.source, exc.problem) from exc
    except (OSError, pa.ArrowException) as exc:
        raise InputError(item.source, f"malformed CSV: {exc}") from exc
    finally:
        if stream is not None:
            stream.close()


SOURCE = ListenCounts()
