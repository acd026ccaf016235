"""Listen counts on the columnar path (``phono ingest listens``).

CSV (also ``.csv.gz``/``.csv.zst``), Parquet and JSON Lines listens are read by DuckDB
and checked in SQL; JSON documents and the lines SQL does not count are read by the
row reader's code and bulk-inserted (:mod:`phonotheque.catalogue.listens_columnar`
says which and why). The merge is
:func:`phonotheque.catalogue.bulk_listens.merge`: counts replaced per dataset and
key, ids in input order, track ids resolved as the SQLite path resolves them.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from phonotheque.catalogue import bulk_listens, columnar, listens_columnar
from phonotheque.columnar_ingest import StageContext, Staged
from phonotheque.sources import Input
from phonotheque.sources.listens import KIND


@dataclass(slots=True)
class ListensStaged(Staged):
    """The runner's view (rows read, rejects) plus what the merge needs."""

    listens: listens_columnar.Staged | None = None


class ListensReader:
    kind = KIND
    resumable = False  # one part per input

    def stage(self, con: columnar.Connection, item: Input,
              ctx: StageContext) -> Generator[Staged, None, None]:
        staged = listens_columnar.stage(con, item, ctx.options)
        yield ListensStaged(read=staged.rows, rejects=staged.rejects, listens=staged)

    def prepare(self, con: columnar.Connection, staged: Staged, tmp: Path) -> None:
        """Nothing: the listens merge is one statement per table (bulk_listens)."""

    def merge(self, con: columnar.Connection, staged: Staged) -> dict[str, list[int]]:
        assert isinstance(staged, ListensStaged) and staged.listens is not None
        counts = bulk_listens.merge(con, staged.listens)
        # Not in a finally: after a failed statement DuckDB refuses every other one in the
        # transaction, so dropping the staging there raised "Current transaction is
        # aborted" in place of the error that says what failed (an out-of-memory at a low
        # PHONO_MEMORY, measured). The next input's stage() drops it; closing frees it.
        listens_columnar.release(con)
        return {"listens": [counts.added, counts.updated, counts.unchanged]}


READER = ListensReader()
