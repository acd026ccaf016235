"""The ``listens`` table of a columnar workspace: one set-based merge per input, and resolution.

The semantics are :class:`~phonotheque.catalogue.store.Store`'s (``_listens`` and
``resolve_listens``), done as whole-table SQL instead of row upserts:

* a dataset's count for a key is **replaced**, not added: ingesting a changed file
  again replaces its counts; ingesting the same file again changes nothing (rows
  whose count and user count are the same are not touched, not even their
  provenance);
* a key repeated in one input keeps its last row's values, at its first row's place;
* new rows get ids above the current maximum in input order (``max(id) +
  row_number()`` over the key's first row), as SQLite's INTEGER PRIMARY KEY gives them;
* ``track_id`` is resolved by the key's kind: ``mbid`` → the lowest track id with that
  recording MBID, ``isrc`` → the lowest track id of ``track_isrc`` with that ISRC,
  ``track_id`` → that track if it exists, ``key`` → the track with that key. A row once
  resolved stays so; rows not yet resolved are tried again by :func:`resolve`, which the
  ingest runner calls after every ingest (listens may arrive before their tracks).

No row passes through Python: the input is in the staging table
(:mod:`phonotheque.catalogue.listens_columnar`), and the merge is a handful of
statements inside the caller's transaction (the columnar ingest runner's, which
saves the input's checkpoint in the same commit).

An input too large to merge in memory (:data:`MERGE_BYTES_PER_KEY`) is merged in two
steps: the keys are resolved one hash partition at a time (each partition's keys
against the same partition of the tracks), into a narrow table of position and track
id; then the rows are written one range of positions at a time, each joined to its
range of that table, in input order. In one statement, at 100 M listens under the 3
GiB default, the hash aggregate over the tracks and the hash join of the wide rows
spilled 29.5 GB to disk and wrote the rows out of input order. A dataset ingested
before (a changed file, ``--force``) matches its stored rows to the input's keys (the
update, and the keys it does not hold yet) one hash partition at a time past the same
limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from phonotheque.catalogue import bulk, columnar
from phonotheque.catalogue.listens_columnar import STAGING, Staged

_NEW = "listens_new"  # one row per key, when the input repeats keys
_IDS = "listens_ids"  # input position -> rank among the new keys

# The track a key resolves to, per key kind (see the module's docstring): a relation
# (key, track_id) with one row per key, of the tracks that pass ``{cut}``.
_TRACKS: dict[str, str] = {
    "mbid": "SELECT mbid AS key, min(id) AS track_id FROM track WHERE mbid IS NOT NULL "
            "AND {cut} AND {part} GROUP BY mbid",
    "isrc": "SELECT isrc AS key, min(track_id) AS track_id FROM track_isrc WHERE {cut} "
            "AND {part} GROUP BY isrc",
    "track_id": "SELECT CAST(id AS VARCHAR) AS key, id AS track_id FROM track "
                "WHERE {cut} AND {part}",
    "key": "SELECT key, min(id) AS track_id FROM track WHERE {cut} AND {part} GROUP BY key",
}
# The column of each kind's tracks that is the key: a partition of the keys (rows whose
# hash(key) % parts is the partition's number) meets the same partition of the tracks.
_KEY_COLUMNS: dict[str, str] = {
    "mbid": "mbid", "isrc": "isrc", "track_id": "CAST(id AS VARCHAR)", "key": "key"}
# ``{cut}`` when few keys are resolved against many tracks: only the tracks whose key is
# among ``{only}`` (the keys being resolved), so the aggregate runs over those tracks
# alone. Resolve after every ingest cost a GROUP BY of the whole track table even when
# a handful of listen keys were left (1 M tracks: 0.50 -> 0.13 CPU s, measured); when
# the keys are about as many as the tracks the semi-join costs more than it saves
# (+0.3 CPU s per million, measured), hence :data:`_CUT_RATIO`.
_CUTS: dict[str, str] = {
    "mbid": "mbid IN ({only})",
    "isrc": "isrc IN ({only})",
    "track_id": "id IN (SELECT TRY_CAST(k AS BIGINT) FROM ({only}) AS keys(k))",
    "key": "key IN ({only})",
}
#: Cut the tracks to the keys when there are at least this many tracks per key.
_CUT_RATIO = 4

#: Memory one key (or track) of a merge may take in DuckDB: the hash aggregate and the
#: hash join that resolve the keys against the tracks, and the input's wide rows through
#: the join. An input whose keys, or the tracks they are resolved against, exceed the
#: memory limit at this rate is merged in parts (the module's docstring). 10 M keys
#: against 10 M tracks merged in memory under the 3 GiB default; under 286 MiB the same
#: statement spilled 2.4-2.6 GB and wrote ~1,800 runs out of order, where the parts spilled
#: 1.0 GB for about the same CPU and kept the input order (measured, bench/RESULTS.md).
MERGE_BYTES_PER_KEY = 200
_FOUND = "listens_found"  # a merge in parts: the position of a key -> its track id
_FRESH = "listens_fresh"  # the positions of the keys a dataset does not hold yet


@dataclass(slots=True)
class MergeCounts:
    """What one input's merge did (keys, after a repeated key is counted once)."""

    read: int = 0  # accepted input rows
    added: int = 0
    updated: int = 0
    unchanged: int = 0


def _cut(con: columnar.Connection, n_keys: int) -> tuple[bool, int]:
    """Whether resolving ``n_keys`` keys cuts the tracks to them (:data:`_CUTS`), and how
    many rows the resolution's aggregates and joins then hold (the keys, or the tracks
    when they are not cut)."""
    tracks = columnar.integer(con, "SELECT count(*) FROM track")
    cut = n_keys * _CUT_RATIO <= tracks
    return cut, n_keys if cut else max(n_keys, tracks)


def _ranges(con: columnar.Connection, last: int) -> list[tuple[int, int]]:
    """Ranges of 1..``last`` that each fit ``con``'s memory limit at MERGE_BYTES_PER_KEY."""
    return list(bulk.id_ranges(1, last, MERGE_BYTES_PER_KEY,
                               memory_bytes=columnar.memory_in_force(con)))


def _partitions(con: columnar.Connection, rows: int) -> int:
    """Into how many hash partitions a resolution over ``rows`` rows is cut (1: none)."""
    return max(1, len(_ranges(con, rows)))


Part = tuple[int, int] | None  # a hash partition (number, of how many); None: the whole


def _pieces(con: columnar.Connection, rows: int) -> list[Part]:
    """The hash partitions a join over ``rows`` rows runs in: ``[None]`` (one statement)
    when they fit the memory limit, else every partition (:func:`_partitions`)."""
    parts = _partitions(con, rows)
    return [None] if parts == 1 else [(number, parts) for number in range(parts)]


def _part(column: str, part: Part) -> str:
    """The condition that keeps partition ``part`` = (number, of how many) of ``column``."""
    return "true" if part is None else f"hash({column}) % {part[1]:d} = {part[0]:d}"


def _of_part(rows: str, part: Part) -> str:
    """The relation ``rows`` (with a ``key``) cut to partition ``part`` (None: whole)."""
    return rows if part is None else f"(SELECT * FROM {rows} WHERE {_part('key', part)})"


def _resolution(con: columnar.Connection, kinds: Sequence[str], alias: str, keys: str,
                cut: bool, part: Part = None) -> tuple[str, str]:
    """LEFT JOINs that find the track of ``alias``'s key, and the expression of its id.

    One join per key kind present, each on its own kind's relation, so a file of MBIDs
    never looks at ISRCs. ``keys`` is a relation (key_kind, key) of the keys to resolve;
    when the tracks far outnumber them (``cut``, from :func:`_cut`), each kind's relation
    is cut to those keys before it aggregates (:data:`_CUTS`). ``part``: only the tracks
    of that hash partition (:func:`_part`), for keys of the same partition.
    """
    joins, ids = [], []
    for kind in kinds:
        if kind not in _TRACKS:
            continue
        r = f"r_{kind}"
        only = f"SELECT key FROM {keys} WHERE key_kind = '{kind}'"
        tracks = _TRACKS[kind].format(cut=_CUTS[kind].format(only=only) if cut else "true",
                                      part=_part(_KEY_COLUMNS[kind], part))
        # Both conditions equalities (the kind a column of the relation), so DuckDB
        # hashes the join; a constant filter in the ON clause made it a nested loop.
        joins.append(f"LEFT JOIN (SELECT '{kind}' AS key_kind, key, track_id "
                     f"FROM ({tracks})) {r} "
                     f"ON {r}.key_kind = {alias}.key_kind AND {r}.key = {alias}.key")
        ids.append(f"{r}.track_id")
    track_id = f"coalesce({', '.join(ids)})" if ids else "CAST(NULL AS BIGINT)"
    return " ".join(joins), track_id


def merge(con: columnar.Connection, staged: Staged) -> MergeCounts:
    """Merge the staging view into ``listens`` (inside the caller's transaction)."""
    counts = MergeCounts(read=staged.rows)
    if not staged.rows:
        return counts
    ident = "key" if len(staged.kinds) == 1 else "key_kind, key"
    # Repeated keys are found by their 64-bit hashes: as many distinct hashes as rows
    # proves every key distinct (an input nearly always is), and counting integers costs
    # less than counting the strings (10 M MBIDs: 3.6-4.8 -> 2.7-3.1 CPU s, measured).
    # Fewer hashes than rows (a repeated key, or two keys sharing a hash) counts the
    # keys themselves.
    row = con.execute(f"SELECT count(DISTINCT hash({ident})), max(pos) FROM {STAGING}").fetchone()
    keys, last = (int(row[0]), int(row[1])) if row else (0, 0)
    if keys != staged.rows:
        keys = columnar.integer(con, f"SELECT count(DISTINCT ({ident})) FROM {STAGING}")
    if keys == staged.rows:
        source = f"(SELECT pos AS first, key_kind, key, count, users, locator FROM {STAGING})"
    else:
        # A repeated key: the last row's values at the first row's place.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_NEW} AS SELECT min(pos) AS first, key_kind, key, "
            "arg_max(count, pos) AS count, arg_max_null(users, pos) AS users, "
            f"arg_max(locator, pos) AS locator FROM {STAGING} GROUP BY key_kind, key")
        source = _NEW
    if con.execute("SELECT 1 FROM listens LIMIT 1").fetchone() is None:
        # An empty table (the workspace's first listens) is made again with DuckDB told
        # how to compress its strings (bulk.LISTENS_DDL says why): the same table, written
        # for less. A table already holding rows keeps DuckDB's automatic choice.
        con.execute("DROP TABLE listens")
        con.execute(bulk.LISTENS_DDL)
    dataset = staged.dataset
    held = columnar.integer(con, "SELECT count(*) FROM (SELECT 1 FROM listens WHERE dataset = ? LIMIT 1)",
                [dataset])
    # A dataset ingested before (a changed file, or --force): its stored rows are matched
    # to the input's keys, one hash partition at a time past the memory limit (each
    # partition's joins hold 1/parts of both sides; MERGE_BYTES_PER_KEY).
    pieces: list[Part] = [None]
    fresh = "true"
    if held:
        stored = columnar.integer(con, "SELECT count(*) FROM listens WHERE dataset = ?", [dataset])
        pieces = _pieces(con, max(keys, stored))
        for part in pieces:
            counts.updated += columnar.integer(
                con,
                f"""UPDATE listens SET count = n.count, users = n.users, source = ?,
                      locator = n.locator, licence = ?
                    FROM {_of_part(source, part)} n
                    WHERE listens.dataset = ? AND {_part('listens.key', part)}
                      AND listens.key_kind = n.key_kind AND listens.key = n.key
                      AND (listens.count <> n.count OR listens.users IS DISTINCT FROM n.users)""",
                [staged.source, staged.licence, dataset])
        fresh = ("NOT EXISTS (SELECT 1 FROM listens l WHERE l.dataset = ? AND {part} "
                 "AND l.key_kind = n.key_kind AND l.key = n.key)")
    top = columnar.integer(con, "SELECT coalesce(max(id), 0) FROM listens")
    if not held and last == keys:
        # Every key is new and the positions run 1..n: the id is the position.
        rank, ranked = "n.first", ""
    else:
        # Rank the new keys' first positions alone (a narrow sort), then join back.
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_FRESH}(first BIGINT)")
        for part in pieces:
            con.execute(f"INSERT INTO {_FRESH} SELECT n.first FROM {_of_part(source, part)} n "
                        f"WHERE {fresh.format(part=_part('l.key', part))}",
                        [dataset] if held else [])
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_IDS} AS SELECT first, "
                    f"row_number() OVER (ORDER BY first) AS rank FROM {_FRESH}")
        rank, ranked = "i.rank", f"JOIN {_IDS} i ON i.first = n.first"
    # Every row of source joined to ranked is a new key (without held rows, every key is).
    insert = f"""INSERT INTO listens(id, dataset, key_kind, key, count, users, track_id,
                                      source, locator, licence)
                 SELECT ? + {rank}, ?, n.key_kind, n.key, n.count, n.users, {{track_id}}, ?,
                        n.locator, ?"""
    params = [top, dataset, staged.source, staged.licence]
    cut, rows = _cut(con, keys)
    parts = _pieces(con, rows)
    chunks = _ranges(con, last)
    if parts == [None] and len(chunks) <= 1:
        joins, track_id = _resolution(con, staged.kinds, "n", source, cut)
        counts.added = columnar.integer(
            con, f"{insert.format(track_id=track_id)} FROM {source} n {ranked} {joins}",
            params)
    else:
        _resolve_in_parts(con, staged.kinds, f"(SELECT n.* FROM {source} n {ranked})", cut,
                          parts)
        for lo, hi in chunks:
            within = f"first BETWEEN {lo:d} AND {hi:d}"
            counts.added += columnar.integer(
                con, f"""{insert.format(track_id="f.track_id")}
                         FROM (SELECT * FROM {source} WHERE {within}) n {ranked}
                         LEFT JOIN (SELECT * FROM {_FOUND} WHERE {within}) f
                                ON f.first = n.first
                         ORDER BY n.first""", params)
    counts.unchanged = keys - counts.added - counts.updated
    for table in (_NEW, _IDS, _FOUND, _FRESH):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return counts


def _resolve_in_parts(con: columnar.Connection, kinds: Sequence[str], rows: str, cut: bool,
                      parts: list[Part]) -> None:
    """The temporary table ``_FOUND`` (first, track_id) of the ``rows`` (first,
    key_kind, key, ...) whose key names a track, resolved one hash partition at a time:
    each partition's aggregates and joins hold 1/parts of the keys and tracks, so they
    fit in memory where the whole did not (MERGE_BYTES_PER_KEY)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_FOUND}(first BIGINT, track_id BIGINT)")
    for part in parts:
        keys = _of_part(rows, part)
        joins, track_id = _resolution(con, kinds, "n", keys, cut, part)
        con.execute(f"""INSERT INTO {_FOUND}
                        SELECT first, track_id FROM (SELECT n.first, {track_id} AS track_id
                                                     FROM {keys} n {joins})
                        WHERE track_id IS NOT NULL""")


def resolve(con: columnar.Connection) -> int:
    """Attach listen rows not yet attached to the tracks their keys name; return how many.

    Call it after tracks arrive (a MusicBrainz ingest after the listens), inside the
    caller's transaction or on its own.
    """
    rows = con.execute("SELECT key_kind, count(*) FROM listens WHERE track_id IS NULL "
                       "GROUP BY key_kind ORDER BY 1").fetchall()
    kinds = [str(r[0]) for r in rows if r[0] in _TRACKS]
    if not kinds:
        return 0
    cut, size = _cut(con, sum(int(r[1]) for r in rows if r[0] in _TRACKS))
    # Listens that arrived before their tracks (a whole listens dump, then the
    # MusicBrainz dump) are as many as a merge's keys: resolved one hash partition at a
    # time for the same reason (MERGE_BYTES_PER_KEY).
    attached = 0
    for part in _pieces(con, size):
        keys = f"(SELECT * FROM listens l WHERE l.track_id IS NULL AND {_part('l.key', part)})"
        joins, track_id = _resolution(con, kinds, "l", keys, cut, part)
        attached += columnar.integer(
            con,
            f"""UPDATE listens SET track_id = r.track_id
                FROM (SELECT l.id, {track_id} AS track_id FROM {keys} l {joins}) r
                WHERE listens.id = r.id AND r.track_id IS NOT NULL""")
    return attached
