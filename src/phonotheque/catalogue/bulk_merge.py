"""The columnar catalogue's artist, release, track, track_artist and track_isrc tables.

A reader stages one part of an input (the whole input, or ``PART_ROWS`` staged rows
of a big JSON Lines file) into the temporary ``stg_*`` tables (:data:`STAGING`, every
row numbered by ``seq`` in file order); :func:`merge` then folds it into the bulk
tables with a few set-based statements per table, inside the caller's transaction
(the checkpoint the part reaches commits with it). Merging an input part by part
gives what merging it whole gives: the rules below are the same within a part and
across parts, as ``Store``'s are within a batch and across batches.

Each part probes the stored keys once per table (a hash join over the table's
``key``), which grows with the catalogue; everything else a part does (links, ISRC
links, release ids) works from the part's own merged rows, and goes to the stored
tables only for a key of an earlier part.

The result is the one :class:`~phonotheque.catalogue.store.Store` gives for the same
records written as one batch, ids included:

* a key seen twice in the input merges as ``Store``'s ``_merge_*`` do (artist: name
  last, mbid and sort name last known, provenance first; release: title and
  provenance last, the rest last known; track: title last, placement the first
  release seen, mbid/credit/artists/duration last known, provenance first);
* the merged row then meets the stored one as ``Store``'s upserts do, and a row
  counts as updated only when a compared column changes;
* new rows get ids ``max(id) + row_number()`` in order of their first line, which
  is the order SQLite's ``INTEGER PRIMARY KEY`` hands them out in;
* ISRC links are insert-or-ignore (the first sighting's provenance stays);
  artist links replace the position they name (``INSERT OR REPLACE``).

There are no UNIQUE constraints in the columnar file (bulk.py says why): the
anti-joins here keep keys unique.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from phonotheque.catalogue import columnar

_PROV = "source VARCHAR, locator VARCHAR, licence VARCHAR"

#: The staging tables a reader fills for one input (``seq``: the record's place in it).
STAGING = f"""
CREATE OR REPLACE TEMP TABLE stg_artist(seq BIGINT, key VARCHAR, mbid VARCHAR,
    name VARCHAR, sort_name VARCHAR, {_PROV});
CREATE OR REPLACE TEMP TABLE stg_release(seq BIGINT, key VARCHAR, mbid VARCHAR,
    title VARCHAR, date VARCHAR, label VARCHAR, barcode VARCHAR, artist_credit VARCHAR,
    art_path VARCHAR, {_PROV});
CREATE OR REPLACE TEMP TABLE stg_track(seq BIGINT, key VARCHAR, mbid VARCHAR, title VARCHAR,
    artist_credit VARCHAR, artist_keys VARCHAR[], release_key VARCHAR, disc BIGINT,
    position BIGINT, duration_ms BIGINT, {_PROV});
CREATE OR REPLACE TEMP TABLE stg_isrc(seq BIGINT, track_key VARCHAR, isrc VARCHAR,
    known_country INTEGER, {_PROV});
"""

#: Column order of each staging table (what a reader inserts, after ``seq``).
STAGING_COLUMNS: dict[str, tuple[str, ...]] = {
    "stg_artist": ("seq", "key", "mbid", "name", "sort_name", "source", "locator", "licence"),
    "stg_release": ("seq", "key", "mbid", "title", "date", "label", "barcode", "artist_credit",
                    "art_path", "source", "locator", "licence"),
    "stg_track": ("seq", "key", "mbid", "title", "artist_credit", "artist_keys", "release_key",
                  "disc", "position", "duration_ms", "source", "locator", "licence"),
    "stg_isrc": ("seq", "track_key", "isrc", "known_country", "source", "locator", "licence"),
}

_TEMPS = ("stg_artist", "stg_release", "stg_track", "stg_isrc", "m_artist", "m_release",
          "m_track", "m_isrc", "m_link", "m_have_link", "m_have_isrc")


def create_staging(con: columnar.Connection, scratch: Path | None = None) -> None:
    """Empty staging tables for the next input: temporary tables, or with ``scratch``
    (for a part too big for memory, :func:`needs_scratch`) tables in a scratch database
    file at that path, which :func:`prepare` keeps the merged tables in too and
    :func:`finish` removes. DuckDB compresses a file's tables, where temporary ones spill
    uncompressed. The readers name the tables unqualified: the search path finds them."""
    if scratch is None:
        con.execute(STAGING)
        return
    scratch.parent.mkdir(parents=True, exist_ok=True)
    columnar.attach_scratch(con, scratch, SCRATCH, in_memory=False)
    main = con.execute("SELECT current_database()").fetchone()
    assert main is not None
    con.execute(f"SET search_path = '{main[0]}.main,{SCRATCH}.main'")
    con.execute(STAGING.replace("CREATE OR REPLACE TEMP TABLE ",
                                f"CREATE OR REPLACE TABLE {SCRATCH}."))


def needs_scratch(con: columnar.Connection, rows: int) -> bool:
    """True if a part of ``rows`` staged rows should stage and merge in a scratch file:
    its merged tables would pass DuckDB's memory limit (:data:`MERGED_BYTES_PER_ROW`)."""
    return rows * MERGED_BYTES_PER_ROW > columnar.memory_in_force(con)


def _scratch_path(con: columnar.Connection) -> Path | None:
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = ?",
                      [SCRATCH]).fetchone()
    return Path(row[0]) if row else None


def drop_staging(con: columnar.Connection) -> None:
    for name in _TEMPS:
        con.execute(f"DROP TABLE IF EXISTS temp.{name}")


def staged_rows(con: columnar.Connection) -> int:
    """Rows in the staging tables now (what a reader has staged of its part)."""
    return columnar.integer(con, "SELECT (SELECT count(*) FROM stg_artist) + (SELECT count(*) FROM "
                     "stg_release) + (SELECT count(*) FROM stg_track) + "
                     "(SELECT count(*) FROM stg_isrc)")


def _differs(pairs: list[tuple[str, str]]) -> str:
    return "(" + " OR ".join(f"({a}) IS DISTINCT FROM ({b})" for a, b in pairs) + ")"


#: Provenance as first seen (``_fold`` columns).
_prov_first = {c: (f"arg_min_null({c}, seq)", c) for c in ("source", "locator", "licence")}


def _find(con: columnar.Connection, table: str, target: str, key: str, assign: str,
          where: str) -> None:
    """Run ``UPDATE target AS m SET <assign>`` (``o.id``: the stored row's id) for the rows
    of ``target`` matching ``where`` whose ``key`` (an expression over ``m``) names a
    stored ``table`` row: a hash join over the whole stored ``key`` column."""
    con.execute(f"UPDATE {target} AS m SET {assign} FROM {table} o "
                f"WHERE {where} AND o.key = {key}")


@dataclass(frozen=True, slots=True)
class _Upsert:
    """How the merged rows of one table meet the stored ones (``o``: stored, ``m``: merged):
    the columns an update sets, those compared to count a row as updated, and the columns
    a new row is inserted with."""

    table: str
    merged: str
    sets: dict[str, str]
    compared: list[tuple[str, str]]
    insert: dict[str, str]


_PROV_KEEP = {c: f"coalesce(o.{c}, m.{c})" for c in ("source", "locator", "licence")}

# -- artists: name last, mbid and sort name last known, provenance first ----------
_ARTIST = _Upsert(
    "artist", "m_artist",
    {"mbid": "coalesce(m.mbid, o.mbid)", "name": "m.name",
     "sort_name": "coalesce(m.sort_name, o.sort_name)", **_PROV_KEEP},
    [("o.mbid", "coalesce(m.mbid, o.mbid)"), ("o.name", "m.name"),
     ("o.sort_name", "coalesce(m.sort_name, o.sort_name)")],
    {c: f"m.{c}" for c in ("key", "mbid", "name", "sort_name", "source", "locator", "licence")})

# -- releases: title and provenance last, the rest last known ---------------------
_LAST_KNOWN = ("mbid", "date", "label", "barcode", "artist_credit", "art_path")
_RELEASE_SETS = {c: f"coalesce(m.{c}, o.{c})" for c in _LAST_KNOWN} | {
    "title": "m.title", "source": "m.source", "locator": "m.locator",
    "licence": "coalesce(m.licence, o.licence)"}
_RELEASE = _Upsert(
    "release", "m_release", _RELEASE_SETS, [(f"o.{c}", e) for c, e in _RELEASE_SETS.items()],
    {c: f"m.{c}" for c in ("key", "mbid", "title", "date", "label", "barcode",
                           "artist_credit", "art_path", "source", "locator", "licence")})

# -- tracks: title last, placement first, the rest last known, provenance first ---
_UNPLACED = "o.release_id IS NULL"
_TRACK = _Upsert(
    "track", "m_track",
    {"mbid": "coalesce(m.mbid, o.mbid)", "title": "m.title",
     "artist_credit": "coalesce(m.artist_credit, o.artist_credit)",
     "release_id": "coalesce(o.release_id, m.release_id)",
     "disc": f"CASE WHEN {_UNPLACED} THEN m.placed.d ELSE o.disc END",
     "position": f"CASE WHEN {_UNPLACED} THEN m.placed.p ELSE o.position END",
     "duration_ms": "coalesce(m.duration_ms, o.duration_ms)", **_PROV_KEEP},
    [("o.mbid", "coalesce(m.mbid, o.mbid)"), ("o.title", "m.title"),
     ("o.artist_credit", "coalesce(m.artist_credit, o.artist_credit)"),
     ("o.release_id", "coalesce(o.release_id, m.release_id)"),
     ("o.duration_ms", "coalesce(m.duration_ms, o.duration_ms)")],
    {"key": "m.key", "mbid": "m.mbid", "title": "m.title",
     "artist_credit": "m.artist_credit", "release_id": "m.release_id",
     "disc": "m.placed.d", "position": "m.placed.p", "duration_ms": "m.duration_ms",
     "excluded": "0", "source": "m.source", "locator": "m.locator", "licence": "m.licence"})


def _picks(columns: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """SELECT lists of ``columns`` (``name -> (aggregate, single-row value)``): for a key's
    one row, and aggregated over its rows."""
    return (", ".join(f"{single} AS {name}" for name, (_, single) in columns.items()),
            ", ".join(f"{aggregate} AS {name}" for name, (aggregate, _) in columns.items()))


def _new(w: str) -> str:
    """``CREATE OR REPLACE <this>name``: a table in ``w`` (``temp.`` or the scratch's)."""
    return "TEMP TABLE " if w == "temp." else f"TABLE {w}"


def _merged(con: columnar.Connection, w: str, spec: _Upsert, source: str,
            columns: dict[str, tuple[str, str]], *, join: tuple[str, str] = ("", "")) -> None:
    """``CREATE TABLE <w><spec.merged>``: one row per key of the staging table
    ``source`` (its ``columns`` folded as :func:`_fold` says) with ``first_seq``,
    ``old_id`` (the stored row's id, NULL for a new key) and ``id`` (the row's id after
    the merge: new keys get ``max(id) + row_number()`` in order of their first line, as
    SQLite's ``INTEGER PRIMARY KEY`` hands them out); then drop ``source``. ``join``
    (columns, a join clause) adds columns to the folded rows ``f``.

    The ids are numbered over the keys alone (``m_ids``: key, first line, count), and
    the wide rows join them, so no step holds a whole wide row per key besides the
    tables themselves. Measured at 10 M tracks: a window over the folded rows spilled
    ~10 GB of them (DuckDB's count); adding the columns by ``UPDATE`` of every row, as
    before, made the track insert that read them back take 42 s of a 165 s run.
    """
    table = spec.table
    # The one probe of the stored keys per part (a hash join over the whole table); an
    # empty table (a fresh workspace's first part) needs none.
    stored = con.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None
    old = "o.id" if stored else "NULL::BIGINT"
    probe = f"LEFT JOIN {table} o ON o.key = k.key" if stored else ""
    top = columnar.integer(con, f"SELECT coalesce(max(id), 0) FROM {table}")
    con.execute(f"""CREATE OR REPLACE {_new(w)}m_ids AS
        SELECT k.key, k.first_seq, k.n, {old} AS old_id,
               coalesce({old}, {top} + row_number() OVER (PARTITION BY {old} IS NULL
                                                          ORDER BY k.first_seq)) AS id
        FROM (SELECT key, min(seq) AS first_seq, count(*) AS n FROM {source} GROUP BY key) k
        {probe}""")
    one, agg = _picks(columns)
    on = "i.key IS NOT DISTINCT FROM s.key"
    con.execute(f"""CREATE OR REPLACE {_new(w)}{spec.merged} AS
        SELECT f.*{join[0]} FROM (
          SELECT s.key, i.first_seq, {one}, i.old_id, i.id
          FROM {source} s JOIN {w}m_ids i ON {on} WHERE i.n = 1
          UNION ALL
          SELECT s.key, i.first_seq, {agg}, i.old_id, i.id
          FROM {source} s JOIN {w}m_ids i ON {on} WHERE i.n > 1
          GROUP BY s.key, i.first_seq, i.old_id, i.id) f {join[1]}""")
    con.execute(f"DROP TABLE {w}m_ids")
    con.execute(f"DROP TABLE {source}")  # temporary or the scratch's: the search path


def _count(con: columnar.Connection, w: str, spec: _Upsert) -> list[int]:
    """[added, updated, unchanged] of the merged rows: a row counts as updated only when
    a compared column changes."""
    total, added = con.execute(f"SELECT count(*), count(*) - count(old_id) "
                               f"FROM {w}{spec.merged}").fetchone() or (0, 0)
    updated = 0
    if total > added:
        updated = columnar.integer(con, f"SELECT count(*) FROM {w}{spec.merged} m JOIN {spec.table} o "
                            f"ON o.id = m.old_id WHERE {_differs(spec.compared)}")
    return [int(added), updated, int(total) - int(added) - updated]


def _apply(con: columnar.Connection, w: str, spec: _Upsert, counts: list[int]) -> None:
    """Update the stored rows whose compared columns change; insert the new keys."""
    if counts[1]:
        assignments = ", ".join(f"{col} = {expr}" for col, expr in spec.sets.items())
        con.execute(f"UPDATE {spec.table} AS o SET {assignments} FROM {w}{spec.merged} m "
                    f"WHERE o.id = m.old_id AND {_differs(spec.compared)}")
    if counts[0]:
        cols = ", ".join(spec.insert)
        exprs = ", ".join(spec.insert.values())
        con.execute(f"INSERT INTO {spec.table}(id, {cols}) SELECT m.id, {exprs} "
                    f"FROM {w}{spec.merged} m WHERE m.old_id IS NULL ORDER BY m.first_seq")


def _fold(source: str, keys: tuple[str, ...], columns: dict[str, tuple[str, str]]) -> str:
    """SQL: one row per distinct ``keys`` of ``source``, with ``first_seq`` and each of
    ``columns``: ``name -> (aggregate over the key's rows, the same value of one row)``.

    Most keys occur once in a part (a track, its ISRC links, its release): those rows
    are taken as they are, and only the keys seen more than once are aggregated. The
    aggregates (``arg_max`` over strings, lists and structs) cost ~3 µs per staged track
    where only a ``GROUP BY`` of the keys is needed to find the repeated ones (measured
    at 1 M tracks: 3.1 -> 0.9 CPU s).
    """
    on = " AND ".join(f"s.{k} IS NOT DISTINCT FROM d.{k}" for k in keys)
    key_list = ", ".join(keys)
    one, agg = _picks(columns)
    return f"""WITH d AS (SELECT {key_list} FROM {source} GROUP BY ALL HAVING count(*) > 1)
        SELECT {", ".join(f"s.{k}" for k in keys)}, seq AS first_seq, {one}
        FROM {source} s ANTI JOIN d ON {on}
        UNION ALL
        SELECT {", ".join(f"s.{k}" for k in keys)}, min(seq) AS first_seq, {agg}
        FROM {source} s SEMI JOIN d ON {on} GROUP BY ALL"""


@dataclass(slots=True)
class Plan:
    """What :func:`prepare` worked out for the staged part: ``{kind: [added, updated,
    unchanged]}`` of the artists, releases and tracks, and whether any artist or ISRC
    link is of a stored track (then the stored links are compared)."""

    counts: dict[str, list[int]] = field(default_factory=dict)
    old_links: bool = False
    old_isrcs: bool = False
    scratch: Path | None = None  # the scratch database's file, if in one

    @property
    def w(self) -> str:
        """Where the merged tables are: ``temp.`` or the scratch database (``mrg.``)."""
        return "temp." if self.scratch is None else f"{SCRATCH}."


#: The scratch database of the merged tables of a big part, and its alias.
SCRATCH_FILE = "merge.duckdb"
SCRATCH = "mrg"
#: Bytes of merged tables per staged row, uncompressed (a 10 M-recording mbdump: ~21 M
#: staged rows, ~5 GB of ``m_*``): a part whose merged tables would pass DuckDB's memory
#: limit gets them in a scratch file, which DuckDB compresses, where the temporary
#: tables would spill uncompressed. Smaller parts keep them in memory: compressing costs
#: CPU (columnar.attach_scratch).
MERGED_BYTES_PER_ROW = 250


def prepare(con: columnar.Connection, tmp: Path | None = None) -> Plan:
    """Fold the staged part into the merged tables (``m_*``: every row with its id after
    the merge, every link with its track and artist ids) and drop the staging tables as
    they are folded. Writes only its own tables (temporary, or in its scratch database)
    and reads the stored ones: run it before the transaction that :func:`apply` writes
    the catalogue in (one DuckDB transaction writes to one database only).

    Why before: DuckDB frees a dropped table's blocks only when its transaction ends, so
    inside one transaction the staging and the merged tables all stay until the commit,
    spilled to ``tmp/`` past the memory limit. A 35 M-recording mbdump ingest needed
    ~60 GB there (docs/scale.md). The ids are the same: the workspace has one writer, so
    the stored tables do not change between this and :func:`apply`.

    With ``tmp`` (the workspace's scratch folder), a part too big for DuckDB's memory
    gets its merged tables in a scratch database file there (:data:`MERGED_BYTES_PER_ROW`):
    DuckDB compresses a file's tables, where temporary ones spill uncompressed (at 10 M
    mbdump recordings, 6.4 -> 5.2 GB of ``tmp/`` at the peak). :func:`finish` removes it
    after the transaction.
    """
    plan = Plan()
    staged_in = _scratch_path(con)
    if staged_in is not None:  # the reader staged the part there (create_staging)
        plan.scratch = staged_in
    elif tmp is not None and needs_scratch(con, staged_rows(con)):
        tmp.mkdir(parents=True, exist_ok=True)
        plan.scratch = tmp / SCRATCH_FILE
        columnar.attach_scratch(con, plan.scratch, SCRATCH, in_memory=False)
    try:
        _prepare(con, plan)
    except BaseException:
        finish(con, plan)
        raise
    return plan


def _prepare(con: columnar.Connection, plan: Plan) -> None:
    w = plan.w
    _merged(con, w, _ARTIST, "stg_artist", {
        "mbid": ("arg_max(mbid, seq)", "mbid"), "name": ("arg_max_null(name, seq)", "name"),
        "sort_name": ("arg_max(sort_name, seq)", "sort_name"), **_prov_first})
    plan.counts["artist"] = _count(con, w, _ARTIST)

    release_cols = {"title": ("arg_max_null(title, seq)", "title")}
    release_cols |= {c: (f"arg_max({c}, seq)", c) for c in _LAST_KNOWN}
    release_cols |= {c: (f"arg_max_null({c}, seq)", c) for c in ("source", "locator", "licence")}
    _merged(con, w, _RELEASE, "stg_release", release_cols)
    plan.counts["release"] = _count(con, w, _RELEASE)

    place = "{'k': release_key, 'd': disc, 'p': position}"
    track_cols = {
        "mbid": ("arg_max(mbid, seq)", "mbid"),
        "title": ("arg_max_null(title, seq)", "title"),
        "artist_credit": ("arg_max(artist_credit, seq)", "artist_credit"),
        "artist_keys": ("arg_max(artist_keys, seq) FILTER (WHERE len(artist_keys) > 0)",
                        "CASE WHEN len(artist_keys) > 0 THEN artist_keys END"),
        "placed": (f"""coalesce(arg_min({place}, seq) FILTER (WHERE release_key IS NOT NULL),
                                arg_max_null({place}, seq))""", place),
        "duration_ms": ("arg_max(duration_ms, seq)", "duration_ms"),
        **_prov_first}
    _merged(con, w, _TRACK, "stg_track", track_cols,
            join=(", r.id AS release_id", f"LEFT JOIN {w}m_release r ON r.key = f.placed.k"))
    unplaced = "m.release_id IS NULL AND m.placed.k IS NOT NULL"
    if columnar.integer(con, f"SELECT count(*) FROM {w}m_track m WHERE {unplaced}"):
        # a release of an earlier part or input
        _find(con, "release", f"{w}m_track", "m.placed.k", "release_id = o.id", unplaced)
    plan.counts["track"] = _count(con, w, _TRACK)

    # -- artist links: each position named replaces the stored one (INSERT OR REPLACE).
    # A track new in this part has no links yet: only the others are compared. Artist
    # ids from m_artist (the stored table only for an artist of an earlier part); a
    # key no artist has gives no link.
    con.execute(f"""CREATE OR REPLACE {_new(w)}m_link AS
        SELECT l.id AS track_id, l.position, a.id AS artist_id, l.old, l.artist_key FROM (
          SELECT id, old_id IS NOT NULL AS old, unnest(artist_keys) AS artist_key,
                 unnest(range(len(artist_keys))) AS position
          FROM {w}m_track WHERE artist_keys IS NOT NULL) l
        LEFT JOIN {w}m_artist a ON a.key = l.artist_key""")
    if columnar.integer(con, f"SELECT count(*) FROM {w}m_link WHERE artist_id IS NULL"):
        _find(con, "artist", f"{w}m_link", "m.artist_key", "artist_id = o.id", "m.artist_id IS NULL")
        con.execute(f"DELETE FROM {w}m_link WHERE artist_id IS NULL")
    if columnar.integer(con, f"SELECT count(*) FROM {w}m_link WHERE old"):
        plan.old_links = True
        # the stored links of those tracks that apply() keeps (it deletes a position
        # named with another artist)
        con.execute(f"""CREATE OR REPLACE {_new(w)}m_have_link AS
            SELECT o.track_id, o.position FROM track_artist o
            WHERE o.track_id IN (SELECT track_id FROM {w}m_link WHERE old)
              AND NOT EXISTS (SELECT 1 FROM {w}m_link n WHERE n.old AND n.track_id = o.track_id
                                AND n.position = o.position AND n.artist_id <> o.artist_id)""")

    # -- ISRC links: insert or ignore, the first sighting stays. Track ids from
    # m_track (the stored table only for a track of an earlier part); a track new in
    # this part has no links yet, so only the others are compared.
    isrc_cols = {"known_country": ("arg_min_null(known_country, seq)", "known_country"),
                 **_prov_first}
    con.execute(f"""CREATE OR REPLACE {_new(w)}m_isrc AS
        SELECT s.*, t.id AS track_id, t.old_id IS NOT NULL AS old
        FROM ({_fold("stg_isrc", ("track_key", "isrc"), isrc_cols)}) s
        LEFT JOIN {w}m_track t ON t.key = s.track_key""")
    con.execute("DROP TABLE stg_isrc")
    if columnar.integer(con, f"SELECT count(*) FROM {w}m_isrc WHERE track_id IS NULL"):
        _find(con, "track", f"{w}m_isrc", "m.track_key", "track_id = o.id, old = true",
              "m.track_id IS NULL")
    if columnar.integer(con, f"SELECT count(*) FROM {w}m_isrc WHERE old"):
        plan.old_isrcs = True
        con.execute(f"""CREATE OR REPLACE {_new(w)}m_have_isrc AS
            SELECT o.track_id, o.isrc FROM track_isrc o
            WHERE o.track_id IN (SELECT track_id FROM {w}m_isrc WHERE old)""")


def apply(con: columnar.Connection, plan: Plan) -> dict[str, list[int]]:
    """Write what :func:`prepare` worked out into the bulk tables; per kind ``[added,
    updated, unchanged]``. Call inside the caller's transaction (with the input's
    checkpoint): this writes only the catalogue's tables."""
    w = plan.w
    counts = dict(plan.counts)
    for spec in (_ARTIST, _RELEASE, _TRACK):
        _apply(con, w, spec, counts[spec.table])

    have = ""
    if plan.old_links:
        con.execute(f"""DELETE FROM track_artist WHERE EXISTS (
            SELECT 1 FROM {w}m_link n WHERE n.old AND n.track_id = track_artist.track_id
              AND n.position = track_artist.position AND n.artist_id <> track_artist.artist_id)""")
        have = f"""WHERE NOT EXISTS (SELECT 1 FROM {w}m_have_link o WHERE o.track_id = n.track_id
                                    AND o.position = n.position)"""
    con.execute(f"""INSERT INTO track_artist(track_id, position, artist_id)
        SELECT n.track_id, n.position, n.artist_id FROM {w}m_link n {have}
        ORDER BY n.track_id, n.position""")

    total = columnar.integer(con, f"SELECT count(*) FROM {w}m_isrc")
    added = 0
    if total:
        before = columnar.integer(con, "SELECT count(*) FROM track_isrc")
        fresh = "m.track_id IS NOT NULL"
        if plan.old_isrcs:
            fresh += f""" AND NOT EXISTS (SELECT 1 FROM {w}m_have_isrc o
                                         WHERE o.track_id = m.track_id AND o.isrc = m.isrc)"""
        con.execute(f"""INSERT INTO track_isrc(track_id, isrc, known_country, source, locator,
                                               licence)
            SELECT m.track_id, m.isrc, m.known_country, m.source, m.locator, m.licence
            FROM {w}m_isrc m WHERE {fresh}
            ORDER BY m.first_seq""")
        added = columnar.integer(con, "SELECT count(*) FROM track_isrc") - before
    counts["isrc"] = [added, 0, total - added]
    return {k: v for k, v in counts.items() if any(v)}


def merge(con: columnar.Connection) -> dict[str, list[int]]:
    """Fold the staged input into the bulk tables; per kind ``[added, updated, unchanged]``.

    :func:`prepare` then :func:`apply`, for a caller with small parts that runs both in
    its transaction; a bulk reader runs :func:`prepare` before it (less disk).
    """
    return apply(con, prepare(con))


def finish(con: columnar.Connection, plan: Plan) -> None:
    """Detach and delete the scratch database of ``plan`` (if it has one): after the
    transaction of :func:`apply`, as DuckDB detaches nothing inside one."""
    if plan.scratch is not None:
        con.execute("RESET search_path")
        con.execute(f"DETACH DATABASE IF EXISTS {SCRATCH}")
        columnar.remove_database(plan.scratch)
        plan.scratch = None


def refresh_excluded(con: columnar.Connection) -> int:
    """Recompute ``track.excluded`` from ``cat.exclusion``; return the excluded track count.

    Covers what :meth:`Store.refresh_exclusions` covers: by MBID (recording, release,
    credited artist), ISRC and path (the track a held file, ``cat.source_audio``, is
    attached to, and every file under an excluded folder). The caller's transaction is
    joined if one is open.
    """
    con.execute("""CREATE OR REPLACE TEMP TABLE m_excluded AS
        SELECT t.id FROM track t JOIN cat.exclusion e ON e.kind = 'mbid' AND e.value = t.mbid
        UNION SELECT t.id FROM track t JOIN release r ON r.id = t.release_id
          JOIN cat.exclusion e ON e.kind = 'mbid' AND e.value = r.mbid
        UNION SELECT ta.track_id FROM track_artist ta JOIN artist a ON a.id = ta.artist_id
          JOIN cat.exclusion e ON e.kind = 'mbid' AND e.value = a.mbid
        UNION SELECT ti.track_id FROM track_isrc ti
          JOIN cat.exclusion e ON e.kind = 'isrc' AND e.value = ti.isrc
        UNION SELECT s.track_id FROM cat.source_audio s
          JOIN cat.exclusion e ON e.kind = 'path'
           AND (s.path = e.value OR substr(s.path, 1, length(e.value) + 1)
                = rtrim(e.value, '/') || '/')""")
    con.execute("""UPDATE track SET excluded = 0 WHERE excluded = 1
                   AND id NOT IN (SELECT id FROM m_excluded)""")
    con.execute("""UPDATE track SET excluded = 1 WHERE excluded = 0
                   AND id IN (SELECT id FROM m_excluded)""")
    con.execute("DROP TABLE temp.m_excluded")
    return columnar.integer(con, "SELECT count(*) FROM track WHERE excluded = 1")
