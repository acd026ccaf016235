"""The takedown list: add and remove exclusions, effective in the catalogue at once.

``phono exclude add/remove`` call :func:`add` and :func:`remove`. Both normalise the
value the same way (an ISRC without hyphens, upper-case; a lower-case MBID; an
absolute path), so that what ``add`` stored ``remove`` finds. Each change flags the
covered tracks (``track.excluded``) and brings their ledger status up to date in
the same run, so that ``phono ledger`` shows it before the next ``phono select``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from phonotheque import isrc as isrc_mod
from phonotheque.catalogue import bulk, bulk_merge, bulk_selection, columnar, ledger
from phonotheque.catalogue.store import Store
from phonotheque.errors import InputError
from phonotheque.model import Exclusion

KINDS = ("isrc", "mbid", "path")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Tracks one exclusion covers, by kind (the same rules as Store.refresh_exclusions).
_MATCHES = {
    "mbid": """SELECT id FROM track WHERE mbid = :v
               UNION SELECT t.id FROM track t JOIN release r ON r.id = t.release_id
                 WHERE r.mbid = :v
               UNION SELECT ta.track_id FROM track_artist ta JOIN artist a ON a.id = ta.artist_id
                 WHERE a.mbid = :v""",
    "isrc": "SELECT track_id FROM track_isrc WHERE isrc = :v",
    "path": """SELECT track_id FROM source_audio
               WHERE path = :v OR substr(path, 1, length(:v) + 1) = rtrim(:v, '/') || '/'""",
}


@dataclass(frozen=True)
class ExclusionChange:
    """What one ``add`` did."""

    kind: str
    value: str  # normalised
    added: bool  # False: the same exclusion was already on the list
    matched: int  # tracks this exclusion covers
    excluded: int  # tracks excluded by the whole list


def normalise(kind: str, value: str) -> str:
    """The stored form of an exclusion value; raises InputError for a malformed one."""
    if kind == "isrc":
        return isrc_mod.parse(value).code
    if kind == "mbid":
        mbid = value.strip().lower()
        if not _UUID.match(mbid):
            raise InputError(value, "not a MusicBrainz MBID (a UUID such as "
                                    "f81d4fae-7dec-11d0-a765-00a0c91e6bf6)")
        return mbid
    if kind == "path":
        if not value.strip():
            raise InputError(value, "empty path")
        return str(Path(value).expanduser().resolve())
    raise InputError(kind, f"unknown exclusion kind (one of {', '.join(KINDS)})")


def matching_tracks(store: Store, kind: str, value: str) -> int:
    """How many tracks the exclusion ``kind``/``value`` (normalised) covers."""
    return int(store.scalar(f"SELECT count(*) FROM ({_MATCHES[kind]})", {"v": value}))


def add(store: Store, kind: str, value: str, reason: str) -> ExclusionChange:
    """Put ``value`` on the takedown list; flag its tracks and update their ledger rows."""
    value = normalise(kind, value)
    if not reason.strip():
        raise InputError(reason, "a takedown needs a reason (it is published)")
    with _columnar(store) as con:  # busy: refused before the list changes
        added = store.add_exclusion(Exclusion(kind, value, reason))
        ledger.sync_exclusions(store)
        excluded = int(store.scalar("SELECT count(*) FROM track WHERE excluded = 1"))
        change = ExclusionChange(kind, value, added, matching_tracks(store, kind, value),
                                 excluded)
        if con is not None:  # a columnar workspace: tracks live there
            return _on_columnar(con, change) or change
        return change


@contextmanager
def _columnar(store: Store) -> Iterator[columnar.Connection | None]:
    """The columnar catalogue of ``store``'s workspace, opened read-write (None for a
    SQLite workspace) before the list changes: while another phono run holds it, the
    change is refused (BusyError) with nothing written, not listed in catalogue.sqlite
    with its tracks left unflagged (a release would publish them, files and all)."""
    root = store.path.parent
    if not bulk.path(root).is_file():
        yield None
        return
    con = bulk.open_bulk(root)
    try:
        yield con
    finally:
        con.close()


def _on_columnar(con: columnar.Connection,
                 change: ExclusionChange | None) -> ExclusionChange | None:
    """After an exclusion changed in a columnar workspace (``con``, its catalogue): flag
    its tracks in the columnar catalogue (``bulk_merge.refresh_excluded``), bring their
    ledger rows up to date (``bulk_selection.sync_exclusions``, in the same transaction)
    and count ``change``'s matches there (the SQLite catalogue holds no tracks in such a
    workspace; a path matches the held files, whose rows stay in catalogue.sqlite:
    ``cat.source_audio``)."""
    with columnar.transaction(con):
        excluded = bulk_merge.refresh_excluded(con)
        bulk_selection.sync_exclusions(con)  # the ledger shows it before the next select
    if change is None:
        return None
    sql = _MATCHES[change.kind].replace(":v", "$v").replace(
        "FROM source_audio", "FROM cat.source_audio")
    row = con.execute(f"SELECT count(*) FROM ({sql})", {"v": change.value}).fetchone()
    matched = int(row[0]) if row else 0
    return replace(change, matched=matched, excluded=excluded)


def remove(store: Store, kind: str, value: str) -> tuple[str, bool]:
    """Take ``value`` off the list; returns (normalised value, whether it was there)."""
    value = normalise(kind, value)
    with _columnar(store) as con:  # busy: refused before the list changes
        removed = store.remove_exclusion(kind, value)
        ledger.sync_exclusions(store)
        if con is not None:
            _on_columnar(con, None)
    return value, removed
