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
statements inside the caller's transaction, with the input's checkpoint
(:func:`~phonotheque.catalogue.bulk.save_checkpoint`) in the same commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from phonotheque.catalogue import bulk, columnar
from phonotheque.catalogue.listens_columnar import STAGING, Staged, stage
from phonotheque.model import Checkpoint
from phonotheque.sources import Input, ReadOptions
from phonotheque.sources.listens import KIND

_NEW = "listens_new"

# The track each key kind resolves to (see the module's docstring); ``{keys}`` is the
# relation of (key_kind, key) to resolve, so each kind looks only at the keys it needs.
_RESOLVE: dict[str, str] = {
    "mbid": "SELECT t.mbid AS key, min(t.id) AS track_id FROM track t "
            "WHERE t.mbid IN (SELECT key FROM {keys} WHERE key_kind = 'mbid') GROUP BY t.mbid",
    "isrc": "SELECT i.isrc AS key, min(i.track_id) AS track_id FROM track_isrc i "
            "WHERE i.isrc IN (SELECT key FROM {keys} WHERE key_kind = 'isrc') GROUP BY i.isrc",
    "track_id": "SELECT CAST(t.id AS VARCHAR) AS key, t.id AS track_id FROM track t "
                "WHERE t.id IN (SELECT TRY_CAST(key AS BIGINT) FROM {keys} "
                "WHERE key_kind = 'track_id')",
    "key": "SELECT t.key AS key, min(t.id) AS track_id FROM track t "
           "WHERE t.key IN (SELECT key FROM {keys} WHERE key_kind = 'key') GROUP BY t.key",
}


@dataclass(slots=True)
class MergeCounts:
    """What one input's merge did (keys, after a repeated key is counted once)."""

    read: int = 0  # accepted input rows
    added: int = 0
    updated: int = 0
    unchanged: int = 0


def _one(con: columnar.Connection, sql: str, params: Sequence[object] = ()) -> int:
    row = con.execute(sql, list(params)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _kinds(con: columnar.Connection, table: str, where: str = "") -> list[str]:
    return [str(r[0]) for r in con.execute(
        f"SELECT DISTINCT key_kind FROM {table} {where} ORDER BY 1").fetchall()]


def _resolved(kinds: list[str], keys: str) -> str:
    """A relation (key_kind, key, track_id) of the keys of ``keys`` that find a track."""
    parts = [f"SELECT '{k}' AS key_kind, key, track_id FROM ({_RESOLVE[k].format(keys=keys)})"
             for k in kinds if k in _RESOLVE]
    if not parts:
        return ("(SELECT CAST(NULL AS VARCHAR) AS key_kind, CAST(NULL AS VARCHAR) AS key, "
                "CAST(NULL AS BIGINT) AS track_id WHERE false)")
    return "(" + " UNION ALL ".join(parts) + ")"


def merge(con: columnar.Connection, staged: Staged) -> MergeCounts:
    """Merge the staging table into ``listens`` (inside the caller's transaction)."""
    counts = MergeCounts(read=staged.rows)
    if not staged.rows:
        return counts
    # One row per key: the last row's values at the first row's place. A file of
    # unique keys (the usual case) skips the grouping.
    distinct = _one(con, f"SELECT count(*) = count(DISTINCT (key_kind, key)) FROM {STAGING}")
    if distinct:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_NEW} AS SELECT pos AS first, key_kind, key, "
                    f"count, users, locator FROM {STAGING}")
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_NEW} AS SELECT min(pos) AS first, key_kind, key, "
            "arg_max(count, pos) AS count, arg_max_null(users, pos) AS users, "
            f"arg_max(locator, pos) AS locator FROM {STAGING} GROUP BY key_kind, key")
    keys = _one(con, f"SELECT count(*) FROM {_NEW}")
    params = [staged.dataset]
    existing = _one(con, "SELECT count(*) FROM listens WHERE dataset = ?", params)
    if existing:
        counts.updated = _one(
            con,
            f"""UPDATE listens SET count = n.count, users = n.users, source = ?,
                  locator = n.locator, licence = ?
                FROM {_NEW} n
                WHERE listens.dataset = ? AND listens.key_kind = n.key_kind
                  AND listens.key = n.key
                  AND (listens.count <> n.count OR listens.users IS DISTINCT FROM n.users)""",
            [staged.source, staged.licence, staged.dataset])
        fresh = ("NOT EXISTS (SELECT 1 FROM listens l WHERE l.dataset = ? "
                 "AND l.key_kind = n.key_kind AND l.key = n.key)")
        fresh_params: list[object] = [staged.dataset]
    else:
        fresh, fresh_params = "true", []
    top = _one(con, "SELECT coalesce(max(id), 0) FROM listens")
    resolved = _resolved(_kinds(con, _NEW), _NEW)
    counts.added = _one(
        con,
        f"""INSERT INTO listens(id, dataset, key_kind, key, count, users, track_id, source,
                                locator, licence)
            SELECT ? + row_number() OVER (ORDER BY n.first), ?, n.key_kind, n.key, n.count,
                   n.users, r.track_id, ?, n.locator, ?
            FROM {_NEW} n LEFT JOIN {resolved} r ON r.key_kind = n.key_kind AND r.key = n.key
            WHERE {fresh}""",
        [top, staged.dataset, staged.source, staged.licence, *fresh_params])
    counts.unchanged = keys - counts.added - counts.updated
    con.execute(f"DROP TABLE {_NEW}")
    return counts


def resolve(con: columnar.Connection) -> int:
    """Attach listen rows not yet attached to the tracks their keys name; return how many.

    Call it after tracks arrive (a MusicBrainz ingest after the listens). It runs in its
    own transaction unless the caller has one open.
    """
    kinds = _kinds(con, "listens", "WHERE track_id IS NULL")
    if not kinds:
        return 0
    pending = "(SELECT key_kind, key FROM listens WHERE track_id IS NULL)"
    return _one(
        con,
        f"""UPDATE listens SET track_id = r.track_id FROM {_resolved(kinds, pending)} r
            WHERE listens.track_id IS NULL AND listens.key_kind = r.key_kind
              AND listens.key = r.key""")


def ingest_input(con: columnar.Connection, item: Input, options: ReadOptions
                 ) -> tuple[Staged, MergeCounts]:
    """Read ``item``, merge it and record its checkpoint, in one transaction.

    The rejects are returned (``Staged.rejects``) for the caller to record in
    catalogue.sqlite's ``reject`` table through its owner.
    """
    staged = stage(con, item, options)
    con.execute("BEGIN TRANSACTION")
    try:
        counts = merge(con, staged)
        bulk.save_checkpoint(con, Checkpoint(item.source, KIND, item.size, done=True,
                                             size=item.size, mtime_ns=item.mtime_ns))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return staged, counts
