"""MusicBrainz JSON on the columnar path (``phono ingest musicbrainz``).

JSON Lines of releases (the dumps' layout, what ``phono synth`` writes: ``.jsonl``,
``.ndjson`` and ``.json`` files of one object per line, plain or compressed, and the
``mbdump/release`` members of the published ``.tar.xz`` dumps) are read by DuckDB
itself: ``read_json`` with an explicit structure, every leaf kept as JSON text so its
type can be checked (a number where a string belongs is not quietly turned into text),
the release's and the recordings' credit lists kept whole as JSON text and given their
structure once per distinct list; then set-based SQL turns lines into staged artists,
releases, tracks and ISRC links with the Python reader's rules
(:mod:`phonotheque.sources.musicbrainz`: MBID and ISRC patterns, ``_text``'s whitespace
strip, credit text and artist keys, disc and position defaults, the length fallback)
and the limits of :mod:`phonotheque.sources.bounds`.

Any line the SQL would not give exactly what the Python reader gives (a reject, a value
out of bounds, a key spelt with underscores, an odd type, a credit list of an odd shape,
a pregap track, ...) is *flagged*, and the Python reader parses just those lines
(``parse_lines``), so their records and reject reasons are the row path's. DuckDB reads
the file in chunks of :data:`CHUNK_LINES` lines (bounded memory: a whole 10 M-track file
at once ran out of a 3 GiB limit), each cut into files of :data:`PIECE_LINES` lines; a
chunk DuckDB refuses is read again piece by piece, and a piece it still refuses
(malformed JSON, a list where an object belongs, invalid UTF-8, blank lines that would
shift line numbers) is parsed by the Python reader, the other pieces stay set-based.
One difference is kept: a line DuckDB's lenient JSON reader takes and orjson refuses (a
trailing comma, NaN or Infinity, a number past a double, deep nesting) in fields the SQL
does not read is stored here and refused on the row path; finding such lines costs a scan
of every byte, ~10 % of the ingest's CPU (docs/cli.md).
Once :data:`PART_ROWS` rows are staged, the chunks so far go to the runner as one part,
merged and committed with a checkpoint at the line they reach, so a killed ingest
resumes there (a ``.zst`` is decompressed again up to it, not parsed). Python only
decompresses and cuts: a compressed file is decompressed as it is read (DuckDB reads
plain files), an archive is streamed (tarfile, no unpacking) and its members are cut as
a ``.zst`` is, a chunk holding lines of one member, numbered on across members and
located (``mbdump/release:line 7``) as the row reader does; the lines of ``recording``
and ``artist`` members go to the Python reader (the SQL reads releases). Single
``.json`` documents are read by the Python reader entirely; a compressed file or archive
that breaks part-way, from the part it breaks in.

Every staged row carries ``seq = line << 26 | slot``, its place in the order the
Python reader yields records, so the merge assigns the same ids.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from phonotheque import isrc
from phonotheque.catalogue import bulk_merge, columnar
from phonotheque.columnar_ingest import StageContext, Staged, _records, read_counted
from phonotheque.errors import wrap_os_error
from phonotheque.ingest import within_bounds
from phonotheque.model import Reject
from phonotheque.read_ahead import read_ahead
from phonotheque.sources import (
    MAX_LINE,
    CorruptStream,
    Input,
    bounds,
    disk_position,
    get,
    open_at,
    printable,
)
from phonotheque.sources.musicbrainz import ARCHIVE_ERRORS, archive_entities
from phonotheque.sources.musicbrainz import SOURCE as JSON_SOURCE

KIND = "musicbrainz"
LICENCE = "CC0-1.0"

# What Python's str.strip() removes (str.isspace), for RE2.
_WS = (r"[\t\n\x{0b}\x{0c}\r\x{1c}-\x{1f} \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
       r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]")
_MBID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ISRC = "[A-Z]{2}[A-Z0-9]{3}[0-9]{7}"
_SLOT = 26  # seq = line << 26 | slot
_MAX_CREDIT = 40  # credit entries read in SQL (slots); longer credits go to Python
_MAX_ISRCS = 14
#: Groups credit lists to read each distinct one once. Lists of one key that are not its
#: representative find no credit and their lines go to the Python reader, so a
#: collision costs time, never a wrong row (a test sets a constant key).
_CREDIT_KEY = "hash({0})"

_MACROS = f"""
CREATE OR REPLACE TEMP MACRO mb_null(x) AS x IS NULL OR CAST(x AS VARCHAR) = 'null';
CREATE OR REPLACE TEMP MACRO mb_str(x) AS CASE
    WHEN NOT prefix(CAST(x AS VARCHAR), '"') THEN NULL
    WHEN contains(CAST(x AS VARCHAR), '\\') THEN json_extract_string(x, '$')
    ELSE replace(CAST(x AS VARCHAR), '"', '') END;
CREATE OR REPLACE TEMP MACRO mb_badstr(x) AS NOT mb_null(x) AND NOT prefix(CAST(x AS VARCHAR), '"');
CREATE OR REPLACE TEMP MACRO mb_edge(c) AS c <= 32 OR c >= 133;
CREATE OR REPLACE TEMP MACRO mb_txt(s) AS CASE
    WHEN mb_edge(ord(s)) OR mb_edge(ord(right(s, 1)))
    THEN nullif(regexp_replace(s, '^{_WS}+|{_WS}+$', '', 'g'), '')
    ELSE nullif(s, '') END;
CREATE OR REPLACE TEMP MACRO mb_isint(v) AS regexp_full_match(v, '-?[0-9]{{1,18}}');
CREATE OR REPLACE TEMP MACRO mb_int(x) AS CASE
    WHEN mb_isint(CAST(x AS VARCHAR)) THEN CAST(CAST(x AS VARCHAR) AS BIGINT) END;
CREATE OR REPLACE TEMP MACRO mb_badint(x) AS NOT mb_null(x) AND NOT mb_isint(CAST(x AS VARCHAR));
CREATE OR REPLACE TEMP MACRO mb_long(s) AS coalesce(strlen(s), 0) > {bounds.MAX_TEXT};
CREATE OR REPLACE TEMP MACRO mb_mbid(s) AS coalesce(CAST(TRY_CAST(s AS UUID) AS VARCHAR) = s, false);
"""


def _struct(**fields: str) -> str:
    return "STRUCT(" + ", ".join(f'"{k}" {v}' for k, v in fields.items()) + ")"


_J = "JSON"
#: A credit list's entries: the one structure both DuckDB types below are made from.
_CREDIT_FIELDS: dict[str, str | dict[str, str]] = {
    "name": _J, "joinphrase": _J,
    "artist": {"id": _J, "name": _J, "sort-name": _J, "sort_name": _J}}
_CREDIT = _struct(**{k: v if isinstance(v, str) else _struct(**v)
                     for k, v in _CREDIT_FIELDS.items()}) + "[]"
#: The credit lists that are read (the release's and the recording's) come as JSON
#: text and are turned into ``_CREDIT`` once per distinct list (``mb_c``): their text
#: is the exact key that groups them (comparing nested lists per track cost ~6 % of
#: the extraction, and read_json's transform of every list another ~5 %, measured).
_CREDIT_JSON = json.dumps([_CREDIT_FIELDS], separators=(",", ":"))
_TRACK = _struct(**{"position": _J, "title": _J, "length": _J, "artist-credit": _CREDIT,
                    "artist_credit": _J, "recording": _struct(
                        **{"id": _J, "title": _J, "length": _J, "isrcs": "JSON[]",
                           "artist-credit": _J, "artist_credit": _J})})
_COLUMNS = {
    "id": _J, "title": _J, "date": _J, "barcode": _J,
    "label-info": _struct(label=_struct(name=_J)) + "[]",
    "artist-credit": _J,
    "media": _struct(position=_J, pregap=_J, tracks=_TRACK + "[]") + "[]",
    # spelt with underscores, or only a release without media has them: the Python reader
    "artist_credit": _J, "label_info": _J, "release_events": _J, "text_representation": _J,
}



#: Lines DuckDB reads at a time (a chunk), at most. A chunk's nested rows and credit
#: aggregates are what takes memory (a whole 10 M-track file ran out of a 3 GiB limit:
#: measured). DuckDB runs a statement on as many threads as its input has row groups
#: (122,880 rows): over chunks of 50,000 lines the statements after ``read_json`` ran on
#: one core. Two full row groups: two threads.
CHUNK_LINES = 2 * 122_880
#: Lines per file the cutter writes, at most (a piece of a chunk; ``read_json`` reads a
#: chunk's pieces in order; ~200 MB of a MusicBrainz dump, written as it is read). A chunk
#: DuckDB refuses is read again piece by piece, the Python reader taking only the pieces
#: DuckDB still refuses.
PIECE_LINES = 50_000
#: Staged rows (artists, releases, tracks and ISRC links) after which the chunks staged
#: so far merge and commit as one part with the input's checkpoint. The merge's
#: aggregates do not spill, so this bounds its memory; each part also probes the
#: stored keys once, so fewer, larger parts cost less CPU at scale (docs/scale.md).
PART_ROWS = 4_000_000
#: Environment overrides of the two (tests cut a small file into many parts).
CHUNK_ENV = "PHONO_CHUNK_LINES"
PART_ENV = "PHONO_PART_ROWS"


def _setting(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    return max(1, int(text)) if text.isdigit() else default


@dataclass(slots=True)
class _Chunk:
    file: Path | None  # None: lines the SQL does not read (a blank line...): Python reads them
    first: int  # number of its first line
    data: bytes  # its lines, raw, each with its newline (the last perhaps without); b"" once in its file
    count: int  # how many lines
    end: int  # uncompressed bytes of the input up to its end
    disk: int  # bytes of the file on disk read up to its end (compressed: see disk_position)
    member: str | None = None  # the archive member it is from (its lines only)
    base: int = 0  # lines of the input before the member's first
    reject: Reject | None = None  # a member not read (a link to nothing...): no lines

    def lines(self) -> list[bytes]:
        """Its lines (split only when some are read one by one: the flagged ones)."""
        data = self.data
        if not data and self.file is not None:
            try:
                data = self.file.read_bytes()
            except OSError as exc:  # the workspace's disk, not the input
                raise wrap_os_error(exc, self.file) from exc
        return list(_raw_lines(io.BytesIO(data)))  # numbered as the row reader numbers them

    def done(self) -> None:
        """Its file and bytes are not needed any more (a merge may follow: memory)."""
        if self.file is not None:
            self.file.unlink(missing_ok=True)
        self.data = b""


@dataclass(slots=True)
class _Batch:
    """A chunk as DuckDB reads it: consecutive pieces (``_Chunk``, one file each) of one
    member, read in one statement."""

    chunks: list[_Chunk]

    @property
    def first(self) -> int:
        return self.chunks[0].first

    @property
    def count(self) -> int:
        return sum(c.count for c in self.chunks)

    @property
    def last(self) -> _Chunk:
        return self.chunks[-1]

    def done(self) -> None:
        for chunk in self.chunks:
            chunk.done()


def _batches(chunks: Iterator[_Chunk]) -> Iterator[_Batch]:
    """The pieces ``chunks`` in batches of up to :data:`CHUNK_LINES` lines (at least
    one piece); a piece without a file (the Python reader reads it) or of another member
    starts a batch of its own."""
    limit = _setting(CHUNK_ENV, CHUNK_LINES)
    batch: list[_Chunk] = []
    lines = 0
    try:
        for chunk in chunks:
            if batch and (chunk.file is None or batch[-1].file is None
                          or chunk.member != batch[-1].member or lines + chunk.count > limit):
                full, batch, lines = batch, [], 0
                yield _Batch(full)
            batch.append(chunk)
            lines += chunk.count
        if batch:
            full, batch = batch, []
            yield _Batch(full)
    except BaseException:
        for chunk in batch:  # cut, never handed on
            chunk.done()
        raise


def _archive_chunks(path: Path, folder: Path, start: int = 0, source: str | None = None
                    ) -> Iterator[_Chunk]:
    """:func:`_chunks` for the ``mbdump/<entity>`` members of a tar archive, streamed
    (tarfile, no unpacking), numbered and counted as the row reader does: lines run on
    across members, bytes count the members' lines, and the lines before uncompressed
    byte ``start`` are decompressed again and skipped. A chunk holds lines of one
    member; only ``release`` members are for the SQL (the others' chunks have no file:
    the Python reader reads them); a member not read (a link leading nowhere, a folder:
    :func:`archive_entities`) is a chunk of no lines with its reject, whose source is
    ``source`` (the input's). Raises :class:`CorruptStream` where the archive breaks."""
    size = _pieces()
    pos = total = 0
    piece: _Piece | None = None  # a release member's piece being written
    try:
        for entity, member, f, disk in archive_entities(
                path, printable(path) if source is None else source):
            if isinstance(f, Reject):  # a link to nothing, a folder...: its reject only
                yield _Chunk(None, total + 1, b"", 0, pos, disk.tell(), member.name, total,
                             f)
                continue
            base = total
            # only a release member's lines are for the SQL: the others are held
            # for the Python reader
            sql = entity == "release" and _utf8(member.name)
            buf: list[bytes] = []
            for raw in _raw_lines(f):
                total += 1
                pos += len(raw)
                if pos <= start:
                    continue  # committed by the run that was interrupted
                if not sql:
                    buf.append(raw)
                    if len(buf) == size:
                        yield _Chunk(None, total - size + 1, _drain(buf), size, pos,
                                     disk.tell(), member.name, base)
                    continue
                if piece is None:
                    piece = _Piece(folder, total, member.name, base)
                piece.write(raw, 1)
                if piece.count == size:
                    chunk, piece = piece.close(pos, disk.tell()), None
                    yield chunk
            if buf:
                n = len(buf)
                yield _Chunk(None, total - n + 1, _drain(buf), n, pos, disk.tell(),
                             member.name, base)
            if piece is not None:
                chunk, piece = piece.close(pos, disk.tell()), None
                yield chunk
    except ARCHIVE_ERRORS as exc:
        raise CorruptStream(printable(path), f"{type(exc).__name__}: {exc}") from exc
    finally:
        if piece is not None:
            piece.discard()


def _pieces() -> int:
    """Lines per piece the cutter writes: a chunk's, up to :data:`PIECE_LINES`."""
    return min(_setting(CHUNK_ENV, CHUNK_LINES), PIECE_LINES)


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a member name of bytes that are not UTF-8
        return False
    return True


def _chunks(path: Path, folder: Path, start: int = 0, line: int = 0) -> Iterator[_Chunk]:
    """Cut the input (decompressed) from uncompressed byte ``start`` (line ``line``
    on) into plain files of :func:`_pieces` lines in ``folder`` (the caller removes
    each, :meth:`_Chunk.done`). A chunk with a blank line gets no file (DuckDB
    skips blank lines, which would shift row numbers against line numbers).
    Raises :class:`CorruptStream` where a compressed input breaks.

    Blocks of lines, not lines: a chunk is cut where its last newline is and written as
    it was read. Splitting every line out and joining them again copied the 5 GB of a
    10 M-track dump twice more (measured: 35.5 CPU s to cut it, decompression included).
    Each block's lines go to the piece's file as they are read, so the cutter holds a
    block (:data:`READ_BYTES`), not a piece: gathering a piece (~200 MB of a MusicBrainz
    dump) and joining it took ~450 MiB of memory beside DuckDB's limit, and glibc kept
    ~250 MiB of it afterwards (docs/scale.md, session 15).
    """
    size = _pieces()
    first = line + 1
    end = start
    piece = _Piece(folder, first)
    try:
        with open_at(path, start) as f:
            tail = b""
            while block := f.read(READ_BYTES):
                data = tail + block if tail else block
                pos = 0
                while True:
                    cut, found = _newlines(data, pos, size - piece.count)
                    if cut > pos:
                        piece.write(data[pos:cut], found)
                        end += cut - pos
                        pos = cut
                    if piece.count < size:
                        break  # this block has no more complete lines
                    chunk = piece.close(end, disk_position(f))
                    piece = _Piece(folder, chunk.first + chunk.count)
                    yield chunk  # holding no bytes of it, once in its file: see _one_ahead
                tail = data[pos:]
                del data
            if tail:
                piece.write(tail, 1)
                end += len(tail)
            if piece.count:
                yield piece.close(end, disk_position(f))
    except OSError as exc:
        raise wrap_os_error(exc, printable(path)) from exc
    finally:
        piece.discard()


class _Piece:
    """A piece's file in ``folder`` as the cutter writes it, block by block: its lines
    numbered from ``first`` on, and whether one of them is blank (then :meth:`close` gives
    a chunk of the bytes alone, which the Python reader reads). A write error is the
    workspace's disk, not the input."""

    def __init__(self, folder: Path, first: int, member: str | None = None,
                 base: int = 0) -> None:
        self.file = folder / f"chunk-{first}.jsonl"
        self.first = first
        self.member = member
        self.base = base
        self.count = 0
        self.blank = False
        self._out: IO[bytes] | None = None

    def write(self, data: bytes, lines: int) -> None:
        """Append ``lines`` whole lines (the last perhaps without its newline)."""
        self.blank = self.blank or _has_blank(data)
        self.count += lines
        try:
            if self._out is None:
                self._out = self.file.open("wb")
            self._out.write(data)
        except OSError as exc:
            self.discard()
            raise wrap_os_error(exc, self.file, writing=True) from exc

    def close(self, end: int, disk: int) -> _Chunk:
        """The chunk of what was written (``end``, ``disk``: the input's offsets at its end)."""
        out, self._out = self._out, None
        try:
            if out is not None:
                out.close()
            if not self.blank:
                return _Chunk(self.file, self.first, b"", self.count, end, disk, self.member,
                              self.base)
            data = self.file.read_bytes()
        except OSError as exc:
            self.file.unlink(missing_ok=True)
            raise wrap_os_error(exc, self.file, writing=True) from exc
        self.file.unlink()  # blank lines: the Python reader reads the bytes
        return _Chunk(None, self.first, data, self.count, end, disk, self.member, self.base)

    def discard(self) -> None:
        """Remove the file of a piece never handed on (an error, a caller that stopped)."""
        if self._out is not None:
            self._out.close()
            self._out = None
            self.file.unlink(missing_ok=True)


def _drain(pieces: list[bytes]) -> bytes:
    """The pieces joined, the list emptied (not held twice while the chunk is written,
    nor through the merge that may follow while this generator waits)."""
    block = b"".join(pieces)
    pieces.clear()
    return block


def _newlines(data: bytes, pos: int, n: int) -> tuple[int, int]:
    """Where the ``n``-th complete line of ``data`` from ``pos`` ends (or its last
    complete line if there are fewer), and how many lines that is."""
    found = 0
    cut = pos
    while found < n:
        i = data.find(b"\n", cut)
        if i < 0:
            break
        cut = i + 1
        found += 1
    return cut, found


#: Decompressed bytes read at a time (progress moves in steps of about this much).
READ_BYTES = 16 << 20


def _raw_lines(f: IO[bytes]) -> Iterator[bytes]:
    """The lines of ``f`` with their newline, split on ``\\n`` only (as the row reader
    numbers them; ``bytes.splitlines`` would also split on a stray ``\\r``)."""
    tail = b""
    while chunk := f.read(READ_BYTES):
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        for piece in data[:cut].split(b"\n")[:-1]:
            yield piece + b"\n"
        tail = data[cut:]
    if tail:
        yield tail


# A line after the first of nothing but whitespace (what ``bytes.strip`` removes), in a
# block of lines whose final newline is cut off: DuckDB skips such lines. It starts with
# its literal newline so that the search skips from newline to newline (an alternation
# with \A tried every byte: 3.7 s per 160 MB against 0.13, measured).
_BLANK = re.compile(rb"\n[ \t\r\x0b\x0c]*(?=\n|\Z)")


def _has_blank(data: bytes) -> bool:
    """Whether a block of lines holds one of nothing but whitespace."""
    body = data[:-1] if data.endswith(b"\n") else data
    head = body.find(b"\n")
    return not (body if head < 0 else body[:head]).strip() or _BLANK.search(body) is not None


_Cut = TypeVar("_Cut", _Chunk, _Batch)


def _one_ahead(chunks: Iterator[_Cut]) -> Generator[_Cut, None, None]:
    """``chunks``, the next one cut (decompressed, written) in a thread while the caller
    stages this one: decompression and the file's write release the GIL, and so do
    DuckDB's statements (the cutting was ~30 CPU s of a 10 M-track ingest, all of it
    between statements). In lockstep: a chunk is cut only once the caller took the one
    before (a merge may follow it). The cutter's errors (a corrupt stream...) are raised
    where the chunk they stopped would have come."""
    return read_ahead(chunks, 1, lockstep=True, discard=lambda c: c.done(),
                      name="ingest-chunks")


def _entries_raw(source: str) -> str:
    """The entries of the credit list ``source`` as structs of JSON strings (before
    the whitespace strip) with ``bad``: a shape the SQL does not read."""
    return f"""list_transform({source}, c -> {{
        'c': mb_str(c.name), 'a': mb_str(c.artist.name), 'k': mb_str(c.artist.id),
        's': mb_str(c.artist."sort-name"), 'j': coalesce(mb_str(c.joinphrase), ''),
        'bad': c IS NULL OR c.artist IS NULL OR mb_badstr(c.name) OR mb_badstr(c.joinphrase)
            OR mb_badstr(c.artist.id) OR mb_badstr(c.artist.name)
            OR mb_badstr(c.artist."sort-name") OR NOT mb_null(c.artist.sort_name)}})"""


def _credit_shape(text: str) -> str:
    """Whether the JSON text ``text`` of a credit list has the shape read_json would
    have read as ``_CREDIT`` without an error (a list of objects or nulls, each
    ``artist`` an object or null, no key twice). ``json_transform`` turns any other
    shape into NULLs where read_json refused the chunk: such a list flags its lines
    (the Python reader reads them), which may flag more than needed, never less."""
    return f"""(json_type({text}) = 'ARRAY' AND coalesce(list_bool_and(list_transform(
        json_extract({text}, '$[*]'), e -> json_type(e) = 'NULL' OR (json_type(e) = 'OBJECT'
          AND list_unique(json_keys(e)) = len(json_keys(e))
          AND (json_type(e, '$.artist') IS NULL OR json_type(e, '$.artist') = 'NULL'
               OR (json_type(e, '$.artist') = 'OBJECT'
                   AND list_unique(json_keys(e, '$.artist'))
                       = len(json_keys(e, '$.artist'))))))), true))"""


def _entries(raw: str) -> str:
    """:func:`_entries_raw`'s ``raw`` with names stripped (``c`` credit name, ``a``
    artist name, ``k`` artist MBID, ``s`` sort name, ``j`` join phrase)."""
    return f"""list_transform({raw}, e -> {{
        'c': mb_txt(e.c), 'a': mb_txt(e.a), 'k': e.k, 's': mb_txt(e.s), 'j': e.j,
        'bad': e.bad OR NOT mb_mbid(e.k)}})"""


def _credit_summary(ce: str) -> str:
    """Columns ``credit`` (the credit text, Python-stripped), ``akeys`` (artist keys)
    and ``cbad`` (flag the line) of the entry list ``ce``: list functions on the row,
    no aggregate."""
    return f"""mb_txt(array_to_string(list_transform({ce}, e -> coalesce(e.c, e.a, '') || e.j),
                                  '')) AS credit,
        list_transform(list_filter({ce}, e -> coalesce(e.a, e.c) IS NOT NULL), e -> e.k) AS akeys,
        len({ce}) > {_MAX_CREDIT}
          OR list_bool_or(list_transform({ce}, e -> e.bad OR mb_long(coalesce(e.a, e.c))
                                                  OR mb_long(e.s)))
          OR list_unique(list_transform({ce}, e -> e.k)) <> len({ce}) AS cbad"""


def _artists(table: str, seq: str) -> str:
    """Staged artist rows of the credit entries (``mb_ce``, by the credit list's key
    ``ch``) of ``table``'s unflagged lines."""
    return f"""SELECT {seq} + e.i AS seq, e.ak, e.name, e.s, line
        FROM (SELECT * FROM {table} ANTI JOIN mb_flag USING (line)) x
        JOIN mb_ce e ON e.h = x.ch"""


class MusicBrainzReader(_records.MergedByBulkMerge):
    kind = KIND
    resumable = True  # JSON Lines resume after the last committed part

    def stage(self, con: columnar.Connection, item: Input,
              ctx: StageContext) -> Generator[Staged, None, None]:
        source = get(KIND)
        layout = JSON_SOURCE.layout(item.path)
        if layout == "document":
            yield _records.stage(con, item, source.read(item, ctx.options))
            return
        part_rows = _setting(PART_ENV, PART_ROWS)
        bulk_merge.create_staging(con)
        con.execute(_MACROS)
        offset, line = ctx.start, ctx.line  # where the part being staged starts
        staged = Staged()
        folder = ctx.tmp / "musicbrainz"
        chunks: Generator[_Batch, None, None] | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            chunks = _one_ahead(_batches(
                _archive_chunks(item.path, folder, ctx.start, item.source) if layout == "archive"
                else _chunks(item.path, folder, ctx.start, ctx.line)))
            for batch in chunks:
                try:
                    self._batch(con, item, batch, staged)
                finally:
                    batch.done()
                if bulk_merge.staged_rows(con) >= part_rows:
                    chunk = batch.last
                    staged.read = bulk_merge.staged_rows(con)
                    staged.offset, staged.line = chunk.end, chunk.first + chunk.count - 1
                    staged.disk = chunk.disk
                    staged.done = False
                    yield staged  # the runner merges it (dropping the staging) and commits
                    offset, line = staged.offset, staged.line
                    bulk_merge.create_staging(con)
                    staged = Staged()
        except CorruptStream:
            # A compressed input that breaks part-way: the Python reader reads the lines
            # of this part before the break and says where it broke, as on the row path.
            self._drop(con)
            bulk_merge.drop_staging(con)
            yield _records.stage(con, item, source.read(item, ctx.options, offset, line))
            return
        except OSError as exc:
            raise wrap_os_error(exc, ctx.tmp, writing=True) from exc
        finally:
            if chunks is not None:
                chunks.close()  # the cutter stopped before its folder goes
            shutil.rmtree(folder, ignore_errors=True)
        staged.read = bulk_merge.staged_rows(con)
        yield staged

    def _batch(self, con: columnar.Connection, item: Input, batch: _Batch,
               staged: Staged) -> None:
        """Stage a chunk, its pieces read by DuckDB in one statement: set-based, and the
        lines SQL flags through the Python reader; a chunk DuckDB refuses, piece by
        piece (:meth:`_chunk`)."""
        # A piece without a file is always a batch of its own (_batches).
        files = [c.file for c in batch.chunks if c.file is not None]
        if len(files) < 2 or not self._read(con, files, batch.first, batch.count):
            for chunk in batch.chunks:
                self._chunk(con, item, chunk, staged)
            return
        self._stage_sql(con, item, batch.chunks[0])
        flagged = [int(r[0]) for r in
                   con.execute("SELECT line FROM mb_flag ORDER BY line").fetchall()]
        self._drop(con)
        for chunk in batch.chunks:
            end = chunk.first + chunk.count
            self._python(con, item, chunk, [n for n in flagged if chunk.first <= n < end],
                         staged)

    def _chunk(self, con: columnar.Connection, item: Input, chunk: _Chunk,
               staged: Staged) -> None:
        """Stage one piece: set-based, and the lines SQL flags (or all of a piece
        DuckDB refuses) through the Python reader."""
        if chunk.reject is not None:  # the row reader's reject of a member not read
            staged.rejects.append(chunk.reject)
            return
        first, count = chunk.first, chunk.count
        if chunk.file is None or not self._read(con, [chunk.file], first, count):
            # DuckDB refuses this chunk (malformed JSON, a list where an object
            # belongs, invalid UTF-8, a blank line): the Python reader reads its
            # lines and says which are bad; the other chunks stay set-based.
            flagged = list(range(first, first + count))
        else:
            self._stage_sql(con, item, chunk)
            flagged = sorted(int(r[0]) for r in
                             con.execute("SELECT line FROM mb_flag").fetchall())
            self._drop(con)
        self._python(con, item, chunk, flagged, staged)

    @staticmethod
    def _python(con: columnar.Connection, item: Input, chunk: _Chunk, flagged: list[int],
                staged: Staged) -> None:
        """Stage the lines ``flagged`` (sorted) of ``chunk`` through the Python reader."""
        if not flagged:
            return
        stager = _records.Stager(con, staged)
        lines = chunk.lines()
        numbered = ((n, lines[n - chunk.first]) for n in flagged)
        for n, records in JSON_SOURCE.parse_lines(item, numbered, chunk.member, chunk.base):
            stager.seq = n << _SLOT
            stager.add(within_bounds(item, records))
        stager.flush()

    @staticmethod
    def _drop(con: columnar.Connection) -> None:
        con.execute("DROP VIEW IF EXISTS temp.mb_rel")
        for name in ("mb_raw", "mb_flag", "mb_r", "mb_t1", "mb_c", "mb_ce", "mb_t"):
            con.execute(f"DROP TABLE IF EXISTS temp.{name}")

    def _read(self, con: columnar.Connection, files: list[Path], first: int, lines: int
              ) -> bool:
        """Load the lines of consecutive chunks' ``files`` into ``mb_rel``, numbered from
        ``first``; False if DuckDB refuses them or its rows are not their lines one to
        one."""
        columns = "{" + ", ".join(f"{columnar.quote(k)}: {columnar.quote(v)}" for k, v in _COLUMNS.items()) + "}"
        # Rows are stored in the files' order (insertion order is preserved, from file
        # to file too), so rowid numbers the lines: a row_number() window here cost more
        # than read_json itself (it buffers every nested column).
        if not read_counted(con, "mb_raw", f"""SELECT * FROM read_json(
                [{", ".join(columnar.quote(str(f)) for f in files)}], format = 'newline_delimited',
                columns = {columns}, maximum_object_size = {MAX_LINE})""", lines):
            return False
        con.execute(f"CREATE OR REPLACE TEMP VIEW mb_rel AS "
                    f"SELECT rowid + {first} AS line, * FROM mb_raw")
        return True

    def _stage_sql(self, con: columnar.Connection, item: Input, chunk: _Chunk) -> None:
        name = columnar.quote(printable(item.path.name))
        # the row reader's locators: "line 7", in an archive "mbdump/release:line 7"
        member = "" if chunk.member is None else chunk.member + ":"

        def prov(line: str) -> str:
            return f"{name}, {columnar.quote(member + 'line ')} || ({line} - {chunk.base}), '{LICENCE}'"

        # Each value is extracted once per level (JSON text -> string -> stripped text ->
        # checks), so no nested macro is evaluated twice. Credits are read once per
        # distinct credit list (tracks of one artist share theirs), with list functions
        # on the row, not grouped per entry.
        # -- tracks: media in order, tracks in order (k); their credits below ---------
        disc = "CASE WHEN coalesce(mb_int(m.position), 0) = 0 THEN mi ELSE mb_int(m.position) END"
        con.execute(f"""CREATE OR REPLACE TEMP TABLE mb_t1 AS
              SELECT line, k, disc, rid, ac, {_CREDIT_KEY.format('ac')} AS h, isrcs,
                     coalesce(mb_txt(rtitle_s), mb_txt(ttitle_s)) AS title,
                     CASE WHEN pos_ok THEN CAST(pos_x AS BIGINT) END AS position,
                     CASE WHEN rlen_ok AND CAST(rlen_x AS BIGINT) <> 0 THEN CAST(rlen_x AS BIGINT)
                          WHEN tlen_ok THEN CAST(tlen_x AS BIGINT) END AS length,
                     bad0 OR (NOT mb_null(pos_x) AND NOT pos_ok)
                       OR (NOT mb_null(rlen_x) AND NOT rlen_ok)
                       OR (NOT mb_null(tlen_x) AND NOT tlen_ok)
                       OR list_bool_or(list_transform(isrcs, x ->
                            NOT regexp_full_match(coalesce(x, ''), '{_ISRC}'))) AS bad0
              FROM (SELECT line, k, disc, mb_str(t.recording.id) AS rid,
                           mb_str(t.recording.title) AS rtitle_s, mb_str(t.title) AS ttitle_s,
                           CAST(t.position AS VARCHAR) AS pos_x,
                           mb_isint(CAST(t.position AS VARCHAR)) AS pos_ok,
                           CAST(t.recording.length AS VARCHAR) AS rlen_x,
                           mb_isint(CAST(t.recording.length AS VARCHAR)) AS rlen_ok,
                           CAST(t.length AS VARCHAR) AS tlen_x,
                           mb_isint(CAST(t.length AS VARCHAR)) AS tlen_ok,
                           list_transform(t.recording.isrcs, x -> mb_str(x)) AS isrcs,
                           t.recording."artist-credit" AS ac,
                           t IS NULL OR t.recording IS NULL OR mb_null(t.position)
                             OR mb_badstr(t.recording.id) OR mb_badstr(t.recording.title)
                             OR mb_badstr(t.title)
                             OR NOT mb_null(t.recording.artist_credit)
                             OR NOT mb_null(t.artist_credit)
                             OR (coalesce(json_array_length(t.recording."artist-credit"), 0) = 0
                                 AND coalesce(len(t."artist-credit"), 0) > 0)
                             OR len(t.recording.isrcs) > {_MAX_ISRCS}
                             OR list_bool_or(list_transform(t.recording.isrcs,
                                                            x -> mb_badstr(x)))
                             OR k >= {(1 << _SLOT) // 64 - 2} AS bad0
                    FROM (SELECT line, mo + ti AS k, disc, t FROM (
                      SELECT line, mo, {disc} AS disc, unnest(m.tracks) AS t,
                             unnest(range(len(m.tracks))) AS ti
                      FROM (SELECT line, unnest(media) AS m, unnest(range(1, len(media) + 1)) AS mi,
                                   unnest(list_transform(range(len(media)),
                                                         i -> coalesce(list_sum(tl[1:i]), 0))) AS mo
                            FROM (SELECT line, media,
                                         list_transform(media, m -> len(m.tracks)) AS tl
                                  FROM mb_rel WHERE len(media) > 0)))))""")
        # -- credit lists, one row per distinct list (by hash; a row whose list is not
        #    its hash's representative finds no credit below and is flagged) -----------
        con.execute(f"""CREATE OR REPLACE TEMP TABLE mb_c AS
            SELECT h, ac, ce, credit, akeys, cbad OR NOT shape AS cbad FROM (
            SELECT h, ac, ce, shape, {_credit_summary('ce')} FROM (
              SELECT h, ac, {_entries(_entries_raw('acs'))} AS ce, shape FROM (
              SELECT h, ac, json_transform(ac, {columnar.quote(_CREDIT_JSON)}) AS acs,
                     {_credit_shape('ac')} AS shape FROM (
                SELECT h, any_value(ac) AS ac FROM (
                  SELECT {_CREDIT_KEY.format('"artist-credit"')} AS h, "artist-credit" AS ac
                  FROM mb_rel
                  WHERE "artist-credit" IS NOT NULL
                  UNION ALL SELECT h, ac FROM mb_t1 WHERE ac IS NOT NULL) GROUP BY h))))""")
        # The entries of each distinct list, once: rows carry the key of their list
        # (ch), not its entries (writing the nested entries per track cost ~8 % of the
        # extraction, measured).
        con.execute("""CREATE OR REPLACE TEMP TABLE mb_ce AS
            SELECT h, i, e.k AS ak, coalesce(e.a, e.c) AS name, e.s FROM (
              SELECT h, unnest(ce) AS e, unnest(range(len(ce))) AS i FROM mb_c
              WHERE len(ce) > 0) WHERE coalesce(e.a, e.c) IS NOT NULL""")
        credit = ("c.h AS ch, c.credit, c.akeys, "
                  "({0}.ac IS NOT NULL AND c.h IS NULL) OR c.cbad OR mb_long(c.credit)")
        join = "LEFT JOIN mb_c c ON c.h = {0}.h AND c.ac IS NOT DISTINCT FROM {0}.ac"
        # -- releases and what flags them ---------------------------------------------
        con.execute(f"""CREATE OR REPLACE TEMP TABLE mb_r AS
            SELECT line, rid, title, date, barcode, label, {credit.format('r')} AS cbad,
                   bad0 OR NOT mb_mbid(rid) OR title IS NULL OR mb_long(title)
                     OR mb_long(date) OR mb_long(barcode)
                     OR list_bool_or(list_transform(labels, x -> mb_long(x))) AS bad0
            FROM (
              SELECT line, rid, ac, h, mb_txt(title_s) AS title, mb_txt(date_s) AS date,
                     mb_txt(barcode_s) AS barcode, labels,
                     list_filter(labels, x -> x IS NOT NULL)[1] AS label, bad0
              FROM (SELECT line, rid, ac, {_CREDIT_KEY.format('ac')} AS h, title_s, date_s, barcode_s,
                           list_transform(labels_s, x -> mb_txt(x)) AS labels, bad0
              FROM (SELECT line, mb_str(id) AS rid, mb_str(title) AS title_s, mb_str(date) AS date_s,
                           mb_str(barcode) AS barcode_s, "artist-credit" AS ac,
                           list_transform("label-info", x -> mb_str(x.label.name)) AS labels_s,
                           mb_badstr(id) OR mb_badstr(title) OR mb_badstr(date)
                             OR mb_badstr(barcode) OR media IS NULL
                             OR NOT mb_null(artist_credit) OR NOT mb_null(label_info)
                             OR NOT mb_null(release_events) OR NOT mb_null(text_representation)
                             OR list_bool_or(list_transform("label-info",
                                                            x -> mb_badstr(x.label.name)))
                             OR list_bool_or(list_transform(media, m -> m IS NULL
                                  OR mb_badint(m.position) OR NOT mb_null(m.pregap))) AS bad0
                    FROM mb_rel))) r {join.format('r')}""")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE mb_t AS
            SELECT line, k, disc, rid, title, position, length, isrcs, {credit.format('t')} AS cbad,
                   bad0 OR NOT mb_mbid(rid) OR title IS NULL OR strlen(title) > {bounds.MAX_TEXT}
                     OR position < 0 OR position > {bounds.MAX_POSITION}
                     OR disc < 0 OR disc > {bounds.MAX_POSITION}
                     OR length > {bounds.MAX_DURATION_MS} AS bad0
            FROM mb_t1 t {join.format('t')}""")
        # -- lines the Python reader reads instead --------------------------------------
        con.execute("""CREATE OR REPLACE TEMP TABLE mb_flag AS
            SELECT line FROM mb_r WHERE bad0 OR cbad
            UNION SELECT line FROM mb_t WHERE bad0 OR cbad""")
        # -- staged rows of the other lines, numbered in the Python reader's order ------
        seq_r = f"(line << {_SLOT})"
        seq_t = f"(line << {_SLOT}) + 64 + k * 64"
        con.execute(f"""INSERT INTO stg_artist
            SELECT seq, ak, ak, name, s, {prov('line')}
            FROM ({_artists('mb_r', seq_r)} UNION ALL {_artists('mb_t', seq_t)})""")
        con.execute(f"""INSERT INTO stg_release
            SELECT {seq_r} + 63, rid, rid, title, date, label, barcode, credit, NULL,
                   {prov('line')}
            FROM mb_r ANTI JOIN mb_flag USING (line)""")
        con.execute(f"""INSERT INTO stg_track
            SELECT (t.line << {_SLOT}) + 64 + t.k * 64 + 48, t.rid, t.rid, t.title,
                   CASE WHEN t.credit IS NOT NULL THEN t.credit ELSE r.credit END,
                   coalesce(CASE WHEN t.credit IS NOT NULL THEN t.akeys ELSE r.akeys END,
                            []::VARCHAR[]),
                   r.rid, t.disc, t.position, CASE WHEN t.length > 0 THEN t.length END,
                   {prov('t.line')}
            FROM mb_t t JOIN mb_r r ON r.line = t.line
            WHERE NOT EXISTS (SELECT 1 FROM mb_flag f WHERE f.line = t.line)""")
        con.execute(f"""INSERT INTO stg_isrc
            SELECT {seq_t} + 49 + j, rid, code,
                   CASE WHEN left(code, 2) IN ({", ".join(columnar.quote(c) for c in _countries())})
                        THEN 1 ELSE 0 END, {prov('line')}
            FROM (SELECT line, k, rid, unnest(isrcs) AS code, unnest(range(len(isrcs))) AS j
                  FROM mb_t ANTI JOIN mb_flag USING (line) WHERE len(isrcs) > 0)""")


def _countries() -> list[str]:
    return sorted(isrc.COUNTRIES)


READER = MusicBrainzReader()
