"""The selection plan and the record of select runs (owner of ``selection``, ``select_run``).

``phono select`` computes its plan set-based in temporary tables and hands the
result over as a query (:func:`replace_selection`), so hundreds of millions of
rows never pass through Python; each run that reaches a new plan is recorded
(:func:`add_run`). Both run inside select's one write transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from phonotheque.catalogue.store import now_iso

COLUMNS = ("track_id", "rank", "band", "cum_share", "tier", "est_bytes", "priority",
           "cum_bytes")


@dataclass(frozen=True, slots=True)
class SelectRun:
    """One ``phono select``: its options, what it reached and the coverage curve (JSON)."""

    options: str
    result: str
    curve: str


def replace_selection(conn: sqlite3.Connection, rows_sql: str,
                      params: Mapping[str, Any]) -> None:
    """Replace the whole selection by the rows of ``rows_sql``, a SELECT of
    :data:`COLUMNS` in that order, best in track id order."""
    # The rank index is dropped for the bulk insert (rows arrive in track id order,
    # which is random in rank order) and rebuilt by one sort afterwards.
    conn.execute("DROP INDEX IF EXISTS selection_rank")
    conn.execute("DELETE FROM selection")
    conn.execute(f"INSERT INTO selection({', '.join(COLUMNS)}) {rows_sql}", params)
    conn.execute("CREATE INDEX selection_rank ON selection(rank)")


def last_run(conn: sqlite3.Connection) -> SelectRun | None:
    """The newest recorded run, or None if the catalogue was never selected."""
    row = conn.execute(
        "SELECT options, result, curve FROM select_run ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else SelectRun(row[0], row[1], row[2])


def last_run_id(conn: sqlite3.Connection) -> int:
    """Id of the newest recorded run (0 if none): it changes only when the plan does."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM select_run").fetchone()[0])


def add_run(conn: sqlite3.Connection, started_at: str, run: SelectRun) -> None:
    conn.execute(
        "INSERT INTO select_run(started_at, finished_at, options, result, curve) "
        "VALUES (?,?,?,?,?)",
        (started_at, now_iso(), run.options, run.result, run.curve),
    )
