"""The status ledger: exactly one status per track, and why (owner of ``ledger``).

Every write to the ``ledger`` table goes through this module: select's
:func:`apply_ledger`, the audio stage's :func:`sync_selection` and
:func:`record_outcomes`, the takedown list's :func:`sync_exclusions` and
``phono gc``'s :func:`note_audio_removed`.

Statuses:

* ``todo`` — selected, audio not produced yet;
* ``wanted`` — selected, but no file of it is held: the archive's acquisition
  list (``phono ledger --status wanted --csv``). Not an error; once a file is
  ingested, the next selection makes it ``todo``;
* ``success`` / ``error_<reason>`` — written by the audio stage for selected tracks;
* ``skipped_duplicate`` — written by the audio stage: the track's source (or archive)
  bytes are already archived for another selected track; ``detail`` names it;
* ``skipped_isrc_has_download`` — another track with the same ISRC (transitively)
  is selected; ``detail`` names it by its key;
* ``skipped_low_priority`` — not selected; ``detail`` says why: ``beyond_coverage``
  (listened, but past the coverage cut), ``below_priority_threshold`` (no listens,
  secondary priority under the threshold), ``over_budget`` or ``not_held`` (only
  held tracks are taken: ``--all``, or no listen data);
* ``excluded`` — matches an exclusion; never selected.

Re-selection rules (so audio work is never lost):

* a track still selected keeps ``success`` / ``error_*``; one newly selected whose
  ``audio_file`` row exists becomes ``success`` again; otherwise ``todo`` if a
  source file is held, ``wanted`` if not (``error_no_source``, what older
  versions recorded for the latter, is not kept);
* a track that leaves the selection takes its new ``skipped_*`` / ``excluded``
  status; its ``audio_file`` row and file are left alone (select never deletes
  audio) and ``detail`` gains ``; audio_file kept`` so the packer and the curator
  can see it. Only the ``selection`` table decides what is packed.

``updated_at`` changes only when status or detail change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from phonotheque.catalogue.store import Store, now_iso
from phonotheque.errors import InputError
from phonotheque.sources.bounds import track_listens_sql

FIXED_STATUSES = (
    "todo", "wanted", "success", "skipped_isrc_has_download", "skipped_low_priority",
    "excluded", "skipped_duplicate",
)
# What the audio stage may write for a selected track (select writes the rest).
AUDIO_OUTCOMES = ("success", "todo", "wanted", "skipped_duplicate")


def is_valid_status(status: str) -> bool:
    return status in FIXED_STATUSES or (status.startswith("error_") and len(status) > 6)


# An audio outcome the next selection keeps (a finished file, or a failure not to
# retry blindly). error_no_source is not one: it is now the ``wanted`` status.
_KEPT = r"""(old.status = 'success' OR (old.status LIKE 'error\_%' ESCAPE '\'
                                     AND old.status != 'error_no_source'))"""


def ledger_rows_sql(held_only: str, audio_files: str, with_old: bool = False, *,
                    tracks: str = "sel_track", reps: str = "sel_rep",
                    selected: str = "selection", over: str = "sel_over",
                    old: str = "ledger") -> str:
    """The plan's status and detail for every track, from select's temp tables
    (``sel_track``, ``sel_rep``, ``sel_over``), the new ``selection`` and the old
    ``ledger``: one SELECT both engines run (DuckDB's columnar select too, see
    ``catalogue/bulk_selection.py``). ``held_only`` is the parameter that says the
    selection took only held tracks (a track left out for having no file says
    ``not_held``); ``audio_files`` the relation with one row per track that has a file.
    ``with_old`` adds the old row's ``old_status``, ``old_detail`` and ``old_updated_at``
    (NULL for a track without one), for a caller that rewrites the ledger whole.

    ``tracks``, ``reps``, ``selected``, ``over`` and ``old`` name the relations read for
    ``sel_track``, ``sel_rep``, ``selection``, ``sel_over`` and the old ``ledger``: a
    caller may give subqueries that cut them to a range of track ids (DuckDB's ledger
    is written range by range, :mod:`.bulk_selection`)."""
    old_cols = (" old.status AS old_status, old.detail AS old_detail, "
                "old.updated_at AS old_updated_at," if with_old else "")
    return rf"""SELECT track_id, status,
               CASE WHEN kept AND status NOT IN ('todo', 'success')
                         AND status NOT LIKE 'error\_%' ESCAPE '\'
                    THEN coalesce(detail || '; ', '') || 'audio_file kept'
                    ELSE detail END AS detail{
                    ", old_status, old_detail, old_updated_at" if with_old else ""}
        FROM (
          SELECT st.track_id,{old_cols}
                 af.track_id IS NOT NULL AS kept,
                 CASE
                   WHEN st.excluded <> 0 THEN 'excluded'
                   WHEN s.track_id IS NOT NULL AND r.rep_id != st.track_id
                     THEN 'skipped_isrc_has_download'
                   WHEN s.track_id IS NOT NULL THEN
                     CASE WHEN {_KEPT} THEN old.status
                          WHEN af.track_id IS NOT NULL THEN 'success'
                          WHEN st.size IS NULL THEN 'wanted'
                          ELSE 'todo' END
                   ELSE 'skipped_low_priority'
                 END AS status,
                 CASE
                   WHEN st.excluded <> 0 THEN 'exclusion'
                   WHEN s.track_id IS NOT NULL AND r.rep_id != st.track_id
                     THEN 'selected track ' || r.rep_key || ' has the same ISRC'
                   WHEN s.track_id IS NOT NULL THEN
                     CASE WHEN {_KEPT} THEN old.detail
                          WHEN af.track_id IS NOT NULL THEN 'audio_file present'
                          WHEN st.size IS NULL THEN 'no source audio file held'
                          END
                   WHEN o.track_id IS NOT NULL THEN 'over_budget'
                   WHEN {held_only} AND st.size IS NULL THEN 'not_held'
                   WHEN coalesce(r.grp_listens, st.listens) > 0 THEN 'beyond_coverage'
                   ELSE 'below_priority_threshold'
                 END AS detail
          FROM {tracks} st
          LEFT JOIN {reps} r ON r.track_id = st.track_id
          LEFT JOIN {selected} s ON s.track_id = coalesce(r.rep_id, st.track_id)
          LEFT JOIN {over} o ON o.track_id = coalesce(r.rep_id, st.track_id)
          LEFT JOIN {old} old ON old.track_id = st.track_id
          LEFT JOIN {audio_files} af ON af.track_id = st.track_id)"""


def apply_ledger(conn: sqlite3.Connection, held_only: bool = False) -> None:
    """Write every track's status from the plan's temp tables (``sel_track``,
    ``sel_rep``, ``sel_over``) and the new ``selection``; one pass in track id order.

    ``held_only``: the selection took only held tracks, so a track left out for
    having no file says ``not_held``."""
    conn.execute(
        f"""INSERT INTO ledger(track_id, status, detail, updated_at)
            SELECT track_id, status, detail, :now
            FROM ({ledger_rows_sql(":held_only", "audio_file")}) WHERE true
            ON CONFLICT(track_id) DO UPDATE SET
              status = excluded.status, detail = excluded.detail,
              updated_at = excluded.updated_at
            WHERE (ledger.status, ledger.detail) IS NOT (excluded.status, excluded.detail)""",
        {"now": now_iso(), "held_only": int(held_only)},
    )


def status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Tracks per status (index scan of ``ledger_status``)."""
    return {
        row[0]: int(row[1])
        for row in conn.execute("SELECT status, count(*) FROM ledger GROUP BY status ORDER BY 1")
    }


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    track_id: int
    key: str
    title: str
    artist_credit: str | None
    status: str
    detail: str | None
    updated_at: str
    rank: int | None
    band: int | None
    tier: str | None
    est_bytes: int | None
    listens: int
    mbid: str | None
    isrcs: tuple[str, ...]

    def export_row(self) -> dict[str, object]:
        """What a curator needs to find the track (the wanted list's columns)."""
        return {"mbid": self.mbid, "isrc": " ".join(self.isrcs), "title": self.title,
                "artist": self.artist_credit, "listens": self.listens,
                "status": self.status, "detail": self.detail, "rank": self.rank,
                "key": self.key}


EXPORT_COLUMNS = ("mbid", "isrc", "title", "artist", "listens", "status", "detail", "rank",
                  "key")

_COLS = f"""l.track_id, t.key, t.title, t.artist_credit, l.status, l.detail, l.updated_at,
           s.rank, s.band, s.tier, s.est_bytes,
           (SELECT {track_listens_sql("count")} FROM listens x WHERE x.track_id = l.track_id),
           t.mbid,
           (SELECT group_concat(isrc, ' ') FROM (SELECT isrc FROM track_isrc i
                                                 WHERE i.track_id = l.track_id ORDER BY isrc))"""


def _entry(row: Any) -> LedgerEntry:
    (track_id, key, title, artist, status, detail, updated_at, rank, band, tier, est_bytes,
     listens, mbid, isrcs) = row
    return LedgerEntry(track_id, key, title, artist, status, detail, updated_at, rank, band,
                       tier, est_bytes, listens, mbid, tuple(isrcs.split()) if isrcs else ())


def ledger_entries(store: Store, status: str | None = None, limit: int | None = 50,
                   offset: int = 0) -> list[LedgerEntry]:
    """Tracks with their status: selected ones in rank order, then the others by id.

    ``status`` may end in ``*`` to match a prefix (``error_*``, ``skipped_*``).
    Walks the rank index, then the ledger in id order, stopping at ``limit``:
    no sort of the whole ledger, so it answers at once on 10⁸ tracks.
    """
    where, params = _status_filter(status)
    cond = where.replace("WHERE", "AND") if where else ""
    cols = _COLS
    want = -1 if limit is None else limit
    # CROSS JOIN keeps selection as the outer loop, walked by rank
    rows = store.conn.execute(
        f"""SELECT {cols} FROM selection s CROSS JOIN ledger l ON l.track_id = s.track_id
            JOIN track t ON t.id = l.track_id WHERE 1 {cond}
            ORDER BY s.rank LIMIT ? OFFSET ?""", [*params, want, offset]).fetchall()
    if limit is None or len(rows) < limit:
        selected = 0
        if offset:
            selected = int(store.scalar(
                f"""SELECT count(*) FROM selection s CROSS JOIN ledger l
                    ON l.track_id = s.track_id WHERE 1 {cond}""", params))
        rest = -1 if limit is None else limit - len(rows)
        rows += store.conn.execute(
            f"""SELECT {cols} FROM ledger l JOIN track t ON t.id = l.track_id
                LEFT JOIN selection s ON s.track_id = l.track_id
                WHERE s.track_id IS NULL {cond}
                ORDER BY l.track_id LIMIT ? OFFSET ?""",
            [*params, rest, max(offset - selected, 0)]).fetchall()
    return [_entry(row) for row in rows]


def iter_ledger(store: Store, status: str | None = None) -> Iterator[LedgerEntry]:
    """Every track with ``status`` (same order as :func:`ledger_entries`), streamed:
    for exports of any size (``phono ledger --csv``)."""
    where, params = _status_filter(status)
    cond = where.replace("WHERE", "AND") if where else ""
    for row in store.conn.execute(
            f"""SELECT {_COLS} FROM selection s CROSS JOIN ledger l ON l.track_id = s.track_id
                JOIN track t ON t.id = l.track_id WHERE 1 {cond} ORDER BY s.rank""", params):
        yield _entry(row)
    for row in store.conn.execute(
            f"""SELECT {_COLS} FROM ledger l JOIN track t ON t.id = l.track_id
                LEFT JOIN selection s ON s.track_id = l.track_id
                WHERE s.track_id IS NULL {cond} ORDER BY l.track_id""", params):
        yield _entry(row)


def count_matching(store: Store, status: str | None) -> int:
    where, params = _status_filter(status)
    return int(store.scalar(f"SELECT count(*) FROM ledger l {where}", params))


def _status_filter(status: str | None) -> tuple[str, list[object]]:
    if not status:
        return "", []
    if status.endswith("*"):
        prefix = status[:-1]
        # range scan on ledger_status instead of LIKE
        return "WHERE l.status >= ? AND l.status < ?", [prefix, prefix + "\uffff"]
    return "WHERE l.status = ?", [status]


def sync_selection(store: Store) -> None:
    """For the audio stage: give every selected track a ledger row (``todo``; select
    normally made it already) and mark ``excluded`` the selected tracks that an
    exclusion added since (their audio outcome, other than ``success``, is void)."""
    stamp = now_iso()
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO ledger(track_id, status, updated_at) "
            "SELECT track_id, 'todo', ? FROM selection", (stamp,))
        conn.execute(
            """UPDATE ledger SET status = 'excluded', detail = 'track is on the exclusion list',
                 updated_at = ? WHERE status NOT IN ('success', 'excluded') AND track_id IN (
                 SELECT s.track_id FROM selection s JOIN track t ON t.id = s.track_id
                  WHERE t.excluded = 1)""", (stamp,))


def is_audio_outcome(status: str) -> bool:
    return status in AUDIO_OUTCOMES or (status.startswith("error_") and len(status) > 6)


def record_outcomes(store: Store, outcomes: Iterable[tuple[int, str, str | None]]) -> int:
    """For the audio stage: set ``(track_id, status, detail)`` of selected tracks.

    Only ``success``, ``todo``, ``wanted``, ``skipped_duplicate`` and ``error_<reason>`` may be
    written this way; returns how many rows changed. Joins the caller's transaction
    if one is open (the audio stage records its ``audio_file`` rows in the same one).
    """
    rows = []
    stamp = now_iso()
    for track_id, status, detail in outcomes:
        if not is_audio_outcome(status):
            raise InputError(
                status,
                "audio outcome must be success, todo, wanted, skipped_duplicate or error_<reason>")
        rows.append((status, detail, stamp, track_id, status, detail))
    with store.transaction():
        before = store.conn.total_changes
        store.conn.executemany(
            """UPDATE ledger SET status = ?, detail = ?, updated_at = ?
               WHERE track_id = ? AND (status, detail) IS NOT (?, ?)""",
            rows,
        )
        return store.conn.total_changes - before


def sync_exclusions(store: Store) -> int:
    """Bring the ledger in line with ``track.excluded`` at once, not at the next select.

    A newly excluded track becomes ``excluded`` (``; audio_file kept`` when its file
    is still in audio/, for ``phono gc``); a track no longer excluded gets back what
    select would give it without re-planning: ``success``, ``todo`` or ``wanted``
    while it is still selected, else ``skipped_low_priority`` until ``phono select`` runs again.
    Returns how many rows changed.
    """
    stamp = now_iso()
    with store.transaction() as conn:
        before = conn.total_changes
        conn.execute(
            """UPDATE ledger SET status = 'excluded',
                 detail = 'exclusion' || CASE WHEN EXISTS (
                     SELECT 1 FROM audio_file a WHERE a.track_id = ledger.track_id)
                   THEN '; audio_file kept' ELSE '' END,
                 updated_at = ?
               WHERE status != 'excluded'
                 AND track_id IN (SELECT id FROM track WHERE excluded = 1)""", (stamp,))
        conn.execute(
            """UPDATE ledger SET
                 status = CASE
                   WHEN track_id NOT IN (SELECT track_id FROM selection)
                     THEN 'skipped_low_priority'
                   WHEN track_id IN (SELECT track_id FROM audio_file) THEN 'success'
                   WHEN track_id NOT IN (SELECT track_id FROM source_audio) THEN 'wanted'
                   ELSE 'todo' END,
                 detail = CASE
                   WHEN track_id NOT IN (SELECT track_id FROM selection)
                     THEN 'exclusion removed; run `phono select`'
                   WHEN track_id IN (SELECT track_id FROM audio_file)
                     THEN 'audio_file present'
                   WHEN track_id NOT IN (SELECT track_id FROM source_audio)
                     THEN 'no source audio file held' END,
                 updated_at = ?
               WHERE status = 'excluded'
                 AND track_id IN (SELECT id FROM track WHERE excluded = 0)""", (stamp,))
        return conn.total_changes - before


def note_audio_removed(store: Store, track_ids: Iterable[int]) -> int:
    """For ``phono gc``: say in ``detail`` that an excluded track's audio was deleted."""
    stamp = now_iso()
    with store.transaction() as conn:
        before = conn.total_changes
        conn.executemany(
            """UPDATE ledger SET detail = 'exclusion; audio removed by gc', updated_at = ?
               WHERE track_id = ? AND status = 'excluded'
                 AND detail IS NOT 'exclusion; audio removed by gc'""",
            [(stamp, t) for t in track_ids])
        return conn.total_changes - before
