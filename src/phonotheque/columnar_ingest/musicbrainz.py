"""MusicBrainz JSON on the columnar path (``phono ingest musicbrainz``).

JSON Lines files of releases (the dumps' layout, what ``phono synth`` writes) are read
by DuckDB itself: ``read_json`` with an explicit structure, every leaf kept as JSON
text so its type can be checked (a number where a string belongs is not quietly
turned into text), then set-based SQL that turns lines into staged artists, releases,
tracks and ISRC links with the Python reader's rules (:mod:`phonotheque.sources.musicbrainz`:
MBID and ISRC patterns, ``_text``'s whitespace strip, credit text and artist keys,
disc and position defaults, the length fallback) and the limits of
:mod:`phonotheque.sources.bounds`.

Any line the SQL would not give exactly what the Python reader gives (a reject, a value
out of bounds, a key spelt with underscores, an odd type, a pregap track, ...) is
*flagged*, and the Python reader reads just those lines (``read_lines``), so their
records and reject reasons are the row path's. DuckDB reads the file in chunks of
:data:`CHUNK_LINES` lines (bounded memory: a whole 10 M-track file at once ran out of a
3 GiB limit); a chunk DuckDB refuses (malformed JSON, a list where an object belongs,
invalid UTF-8, blank lines that would shift line numbers) is read by the Python reader,
the other chunks stay set-based. ``.json`` documents and ``.tar.xz`` archives, and a
compressed file that breaks part-way, are read by the Python reader entirely.

Every staged row carries ``seq = line << 26 | slot``, its place in the order the
Python reader yields records, so the merge assigns the same ids.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from phonotheque import isrc
from phonotheque.catalogue import bulk_merge, columnar
from phonotheque.columnar_ingest import StageContext, Staged, _records
from phonotheque.errors import wrap_os_error
from phonotheque.sources import MAX_LINE, CorruptStream, Input, bounds, get, open_input, printable
from phonotheque.sources.musicbrainz import SOURCE as JSON_SOURCE

KIND = "musicbrainz"
LICENCE = "CC0-1.0"
# JSON Lines, plain or compressed as DuckDB reads natively (.zst, .gz)
_FAST_SUFFIXES = tuple(s + c for s in (".jsonl", ".ndjson") for c in ("", ".zst", ".gz"))

# What Python's str.strip() removes (str.isspace), for RE2.
_WS = (r"[\t\n\x{0b}\x{0c}\r\x{1c}-\x{1f} \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
       r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]")
_MBID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ISRC = "[A-Z]{2}[A-Z0-9]{3}[0-9]{7}"
_SLOT = 26  # seq = line << 26 | slot
_MAX_CREDIT = 40  # credit entries read in SQL (slots); longer credits go to Python
_MAX_ISRCS = 14

_MACROS = f"""
CREATE OR REPLACE TEMP MACRO mb_null(x) AS x IS NULL OR CAST(x AS VARCHAR) = 'null';
CREATE OR REPLACE TEMP MACRO mb_str(x) AS CASE
    WHEN x IS NULL OR left(CAST(x AS VARCHAR), 1) <> '"' THEN NULL
    WHEN contains(CAST(x AS VARCHAR), '\\') THEN json_extract_string(x, '$')
    ELSE substr(CAST(x AS VARCHAR), 2, length(CAST(x AS VARCHAR)) - 2) END;
CREATE OR REPLACE TEMP MACRO mb_badstr(x) AS NOT mb_null(x) AND left(CAST(x AS VARCHAR), 1) <> '"';
CREATE OR REPLACE TEMP MACRO mb_txt(s) AS CASE
    WHEN s IS NULL THEN NULL
    WHEN regexp_matches(s, '^{_WS}|{_WS}$') THEN nullif(regexp_replace(s, '^{_WS}+|{_WS}+$', '', 'g'), '')
    ELSE nullif(s, '') END;
CREATE OR REPLACE TEMP MACRO mb_int(x) AS CASE
    WHEN regexp_full_match(CAST(x AS VARCHAR), '-?[0-9]{{1,18}}') THEN CAST(CAST(x AS VARCHAR) AS BIGINT) END;
CREATE OR REPLACE TEMP MACRO mb_badint(x) AS NOT mb_null(x)
    AND NOT regexp_full_match(CAST(x AS VARCHAR), '-?[0-9]{{1,18}}');
CREATE OR REPLACE TEMP MACRO mb_long(s) AS coalesce(strlen(s), 0) > {bounds.MAX_TEXT};
"""


def _struct(**fields: str) -> str:
    return "STRUCT(" + ", ".join(f'"{k}" {v}' for k, v in fields.items()) + ")"


_J = "JSON"
_CREDIT = _struct(**{"name": _J, "joinphrase": _J, "artist": _struct(
    **{"id": _J, "name": _J, "sort-name": _J, "sort_name": _J})}) + "[]"
_TRACK = _struct(**{"position": _J, "title": _J, "length": _J, "artist-credit": _CREDIT,
                    "artist_credit": _J, "recording": _struct(
                        **{"id": _J, "title": _J, "length": _J, "isrcs": "JSON[]",
                           "artist-credit": _CREDIT, "artist_credit": _J})})
_COLUMNS = {
    "id": _J, "title": _J, "date": _J, "barcode": _J,
    "label-info": _struct(label=_struct(name=_J)) + "[]",
    "artist-credit": _CREDIT,
    "media": _struct(position=_J, pregap=_J, tracks=_TRACK + "[]") + "[]",
    # spelt with underscores, or only a release without media has them: the Python reader
    "artist_credit": _J, "label_info": _J, "release_events": _J, "text_representation": _J,
}


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: Lines DuckDB reads at a time. A chunk's nested rows and credit aggregates are what
#: takes memory (a whole 10 M-track file ran out of a 3 GiB limit: measured); the staged
#: rows of all chunks then merge in one transaction with the input's checkpoint.
CHUNK_LINES = 50_000

def _chunks(path: Path, folder: Path) -> Iterator[tuple[Path | None, int, int]]:
    """Cut the input (decompressed) into plain files of :data:`CHUNK_LINES` lines in
    ``folder``: ``(file, first line number, lines)``, the file removed when the caller
    asks for the next. The file is None for a chunk with a blank line (DuckDB skips it,
    which would shift row numbers against line numbers): its lines go to Python.
    Raises :class:`CorruptStream` where a compressed input breaks."""
    first = 1
    buf: list[bytes] = []
    try:
        with open_input(path) as f:
            for raw in _raw_lines(f):
                buf.append(raw)
                if len(buf) == CHUNK_LINES:
                    yield from _one_chunk(buf, first, folder)
                    first += len(buf)
                    buf = []
            if buf:
                yield from _one_chunk(buf, first, folder)
    except OSError as exc:
        raise wrap_os_error(exc, printable(path)) from exc


def _raw_lines(f: IO[bytes]) -> Iterator[bytes]:
    """The lines of ``f`` with their newline, split on ``\\n`` only (as the row reader
    numbers them; ``bytes.splitlines`` would also split on a stray ``\\r``)."""
    tail = b""
    while chunk := f.read(16 << 20):
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        for piece in data[:cut].split(b"\n")[:-1]:
            yield piece + b"\n"
        tail = data[cut:]
    if tail:
        yield tail


def _one_chunk(buf: list[bytes], first: int, folder: Path) -> Iterator[tuple[Path | None, int, int]]:
    if any(not line.strip() for line in buf):  # a blank line (or a whitespace-only tail)
        yield None, first, len(buf)
        return
    data = b"".join(buf)
    file = folder / f"chunk-{first}.jsonl"
    try:
        file.write_bytes(data)
        yield file, first, len(buf)
    finally:
        file.unlink(missing_ok=True)


def _credits(table: str, owner: str, source: str) -> str:
    """One row per credit entry of ``source`` (a credit list column of ``table``)."""
    return f"""SELECT {owner}, i, c,
          mb_txt(mb_str(c.name)) AS cname, mb_txt(mb_str(c.artist.name)) AS aname,
          mb_str(c.artist.id) AS amb, mb_txt(mb_str(c.artist."sort-name")) AS sort_name,
          coalesce(mb_str(c.joinphrase), '') AS joinphrase,
          (c IS NULL OR c.artist IS NULL OR mb_badstr(c.name) OR mb_badstr(c.joinphrase)
           OR mb_badstr(c.artist.id) OR mb_badstr(c.artist.name)
           OR mb_badstr(c.artist."sort-name") OR NOT mb_null(c.artist.sort_name)
           OR NOT regexp_full_match(coalesce(mb_str(c.artist.id), ''), '{_MBID}')
           OR i >= {_MAX_CREDIT}) AS bad
        FROM (SELECT {owner}, unnest({source}) AS c, unnest(range(len({source}))) AS i
              FROM {table} WHERE len({source}) > 0)"""


def _credit_summary(raw: str, owner: str) -> str:
    """Per owner: credit text (Python-stripped), artist keys, and whether to flag."""
    return f"""SELECT {owner},
          nullif(regexp_replace(string_agg(coalesce(coalesce(cname, aname), '') || joinphrase,
                                           '' ORDER BY i),
                                '^{_WS}+|{_WS}+$', '', 'g'), '') AS credit,
          list(amb ORDER BY i) FILTER (WHERE coalesce(aname, cname) IS NOT NULL) AS akeys,
          bool_or(bad) OR count(DISTINCT amb) <> count(*)
            OR bool_or(mb_long(coalesce(aname, cname)) OR mb_long(sort_name)) AS bad
        FROM {raw} GROUP BY ALL"""


class MusicBrainzReader:
    kind = KIND

    def stage(self, con: columnar.Connection, item: Input, ctx: StageContext) -> Staged:
        source = get(KIND)
        if not item.path.name.lower().endswith(_FAST_SUFFIXES):
            return _records.stage(con, item, source.read(item, ctx.options))
        bulk_merge.create_staging(con)
        con.execute(_MACROS)
        flagged: set[int] = set()
        folder = ctx.tmp / "musicbrainz"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for file, first, count in _chunks(item.path, folder):
                if file is None or not self._read(con, file, first, count):
                    # DuckDB refuses this chunk (malformed JSON, a list where an object
                    # belongs, invalid UTF-8, a blank line): the Python reader reads its
                    # lines and says which are bad; the other chunks stay set-based.
                    flagged.update(range(first, first + count))
                    continue
                self._stage_sql(con, item)
                flagged.update(int(r[0]) for r in con.execute("SELECT line FROM mb_flag").fetchall())
                self._drop(con)
        except CorruptStream:
            # A compressed input that breaks part-way: the Python reader keeps the lines
            # before the break and says where it broke, as on the row path.
            self._drop(con)
            bulk_merge.drop_staging(con)
            return _records.stage(con, item, source.read(item, ctx.options))
        except OSError as exc:
            raise wrap_os_error(exc, ctx.tmp, writing=True) from exc
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        staged = Staged()
        for name in ("stg_artist", "stg_release", "stg_track", "stg_isrc"):
            row = con.execute(f"SELECT count(*) FROM {name}").fetchone()
            staged.read += int(row[0]) if row else 0
        if flagged:
            stager = _records.Stager(con, staged)
            for n, records in JSON_SOURCE.read_lines(item, flagged):
                stager.seq = n << _SLOT
                stager.add(_records.checked(item, records))
            stager.flush()
        return staged

    @staticmethod
    def _drop(con: columnar.Connection) -> None:
        for name in ("mb_rel", "mb_flag", "mb_rc", "mb_rcs", "mb_t", "mb_tc", "mb_tcs"):
            con.execute(f"DROP TABLE IF EXISTS temp.{name}")

    def _read(self, con: columnar.Connection, file: Path, first: int, lines: int) -> bool:
        """Load a chunk's lines into ``mb_rel``, numbered from ``first``; False if DuckDB
        refuses it or its rows are not its lines one to one."""
        columns = "{" + ", ".join(f"{_q(k)}: {_q(v)}" for k, v in _COLUMNS.items()) + "}"
        try:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE mb_rel AS
                SELECT row_number() OVER () + {first - 1} AS line, *
                FROM read_json({_q(str(file))},
                  format = 'newline_delimited', columns = {columns},
                  maximum_object_size = {MAX_LINE})""")
        except columnar.Error:
            con.execute("DROP TABLE IF EXISTS temp.mb_rel")
            return False
        row = con.execute("SELECT count(*) FROM mb_rel").fetchone()
        if row is None or int(row[0]) != lines:
            con.execute("DROP TABLE IF EXISTS temp.mb_rel")
            return False
        return True

    def _stage_sql(self, con: columnar.Connection, item: Input) -> None:
        name = _q(printable(item.path.name))

        def prov(line: str) -> str:
            return f"{name}, 'line ' || {line}, '{LICENCE}'"

        long_ = bounds.MAX_TEXT
        # -- releases and their credits -----------------------------------------
        release_credit = '"artist-credit"'
        con.execute(f"CREATE OR REPLACE TEMP TABLE mb_rc AS "
                    f"{_credits('mb_rel', 'line', release_credit)}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE mb_rcs AS {_credit_summary('mb_rc', 'line')}")
        # -- tracks (media in order, tracks in order) ---------------------------------
        con.execute("""CREATE OR REPLACE TEMP TABLE mb_t AS
            SELECT line, row_number() OVER (PARTITION BY line ORDER BY mi, ti) - 1 AS k,
                   disc, t, mbad,
                   mb_int(t.position) AS position, mb_str(t.recording.id) AS rid,
                   coalesce(mb_txt(mb_str(t.recording.title)), mb_txt(mb_str(t.title))) AS title,
                   CASE WHEN coalesce(mb_int(t.recording.length), 0) <> 0
                        THEN mb_int(t.recording.length) ELSE mb_int(t.length) END AS length
            FROM (SELECT line, mi, mbad, disc, unnest(m.tracks) AS t,
                         unnest(range(1, len(m.tracks) + 1)) AS ti
                  FROM (SELECT line, mi, m, m IS NULL OR mb_badint(m.position)
                               OR NOT mb_null(m.pregap) AS mbad,
                               CASE WHEN coalesce(mb_int(m.position), 0) = 0 THEN mi
                                    ELSE mb_int(m.position) END AS disc
                        FROM (SELECT line, unnest(media) AS m,
                                     unnest(range(1, len(media) + 1)) AS mi
                              FROM mb_rel WHERE len(media) > 0))
                  WHERE len(m.tracks) > 0
                  UNION ALL
                  SELECT line, mi, true, NULL, NULL, NULL
                  FROM (SELECT line, unnest(media) AS m, unnest(range(1, len(media) + 1)) AS mi
                        FROM mb_rel WHERE len(media) > 0)
                  WHERE m IS NULL OR mb_badint(m.position) OR NOT mb_null(m.pregap))""")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE mb_tc AS
            {_credits('mb_t', 'line, k', 't.recording."artist-credit"')}""")
        con.execute(f"CREATE OR REPLACE TEMP TABLE mb_tcs AS "
                    f"{_credit_summary('mb_tc', 'line, k')}")
        # -- lines the Python reader reads instead --------------------------------------
        con.execute(f"""CREATE OR REPLACE TEMP TABLE mb_flag AS
            SELECT line FROM mb_rel WHERE
                NOT regexp_full_match(coalesce(mb_str(id), ''), '{_MBID}')
                OR mb_badstr(id) OR mb_badstr(title) OR mb_txt(mb_str(title)) IS NULL
                OR mb_badstr(date) OR mb_badstr(barcode) OR mb_null(media)
                OR NOT mb_null(artist_credit) OR NOT mb_null(label_info)
                OR NOT mb_null(release_events) OR NOT mb_null(text_representation)
                OR mb_long(mb_txt(mb_str(title))) OR mb_long(mb_txt(mb_str(date)))
                OR mb_long(mb_txt(mb_str(barcode)))
                OR list_bool_or(list_transform("label-info", x -> mb_badstr(x.label.name)
                                               OR mb_long(mb_txt(mb_str(x.label.name)))))
            UNION SELECT line FROM mb_rcs WHERE bad OR mb_long(credit)
            UNION SELECT line FROM mb_tcs WHERE bad OR mb_long(credit)
            UNION SELECT line FROM mb_t WHERE mbad OR t IS NULL OR t.recording IS NULL
                OR mb_null(t.position) OR mb_badint(t.position)
                OR position < 0 OR position > {bounds.MAX_POSITION}
                OR disc < 0 OR disc > {bounds.MAX_POSITION}
                OR NOT regexp_full_match(coalesce(rid, ''), '{_MBID}')
                OR mb_badstr(t.recording.id) OR mb_badstr(t.recording.title)
                OR mb_badstr(t.title) OR title IS NULL OR strlen(title) > {long_}
                OR mb_badint(t.recording.length) OR mb_badint(t.length)
                OR length > {bounds.MAX_DURATION_MS}
                OR NOT mb_null(t.recording.artist_credit) OR NOT mb_null(t.artist_credit)
                OR (coalesce(len(t.recording."artist-credit"), 0) = 0
                    AND coalesce(len(t."artist-credit"), 0) > 0)
                OR len(t.recording.isrcs) > {_MAX_ISRCS}
                OR list_bool_or(list_transform(t.recording.isrcs, x -> mb_badstr(x)
                     OR NOT regexp_full_match(coalesce(mb_str(x), ''), '{_ISRC}')))
                OR k >= {(1 << _SLOT) // 64 - 2}""")
        ok = "line NOT IN (SELECT line FROM mb_flag)"
        # -- staged rows, numbered in the Python reader's order ---------------------
        seq_r = f"(line << {_SLOT})"
        seq_t = f"(line << {_SLOT}) + 64 + k * 64"
        seq_tt = f"(t.line << {_SLOT}) + 64 + t.k * 64"
        con.execute(f"""INSERT INTO stg_artist
            SELECT {seq_r} + i, amb, amb, coalesce(aname, cname), sort_name, {prov('line')}
            FROM mb_rc WHERE coalesce(aname, cname) IS NOT NULL AND {ok}
            UNION ALL
            SELECT {seq_t} + i, amb, amb, coalesce(aname, cname), sort_name, {prov('line')}
            FROM mb_tc WHERE coalesce(aname, cname) IS NOT NULL AND {ok}""")
        con.execute(f"""INSERT INTO stg_release
            SELECT {seq_r} + 63, mb_str(r.id), mb_str(r.id), mb_txt(mb_str(r.title)),
                   mb_txt(mb_str(r.date)),
                   list_filter(list_transform(r."label-info", x -> mb_txt(mb_str(x.label.name))),
                               x -> x IS NOT NULL)[1],
                   mb_txt(mb_str(r.barcode)), c.credit, NULL, {prov('r.line')}
            FROM mb_rel r LEFT JOIN mb_rcs c USING (line)
            WHERE r.line NOT IN (SELECT line FROM mb_flag)""")
        con.execute(f"""INSERT INTO stg_track
            SELECT {seq_tt} + 48, t.rid, t.rid, t.title,
                   CASE WHEN tc.credit IS NOT NULL THEN tc.credit ELSE rc.credit END,
                   coalesce(CASE WHEN tc.credit IS NOT NULL THEN tc.akeys ELSE rc.akeys END,
                            []::VARCHAR[]),
                   mb_str(r.id), t.disc, t.position, CASE WHEN t.length > 0 THEN t.length END,
                   {prov('t.line')}
            FROM mb_t t JOIN mb_rel r USING (line) LEFT JOIN mb_rcs rc ON rc.line = t.line
            LEFT JOIN mb_tcs tc ON tc.line = t.line AND tc.k = t.k
            WHERE t.line NOT IN (SELECT line FROM mb_flag)""")
        con.execute(f"""INSERT INTO stg_isrc
            SELECT {seq_t} + 49 + j, rid, code,
                   CASE WHEN left(code, 2) IN ({", ".join(_q(c) for c in _countries())})
                        THEN 1 ELSE 0 END, {prov('line')}
            FROM (SELECT line, k, rid, mb_str(unnest(t.recording.isrcs)) AS code,
                         unnest(range(len(t.recording.isrcs))) AS j
                  FROM mb_t WHERE len(t.recording.isrcs) > 0)
            WHERE {ok}""")

    def merge(self, con: columnar.Connection, staged: Staged) -> dict[str, list[int]]:
        counts = bulk_merge.merge(con)
        bulk_merge.drop_staging(con)
        return counts


def _countries() -> list[str]:
    return sorted(isrc.COUNTRIES)


READER = MusicBrainzReader()
