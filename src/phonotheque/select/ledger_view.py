"""The ledger as ``phono ledger`` reads it, whatever the workspace's engine.

A SQLite workspace keeps ``ledger`` and ``selection`` in catalogue.sqlite
(:mod:`phonotheque.catalogue.ledger`), a columnar one in catalogue.duckdb
(:mod:`phonotheque.catalogue.bulk_selection`); both answer with the same rows in
the same order. :func:`open_ledger` picks the reader by ``Workspace.engine``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from phonotheque.catalogue import bulk, bulk_selection, columnar, ledger
from phonotheque.catalogue.ledger import LedgerEntry
from phonotheque.workspace import Workspace


class LedgerView(Protocol):
    def counts(self) -> dict[str, int]:
        """Tracks per status."""

    def matching(self, status: str | None) -> int:
        """Tracks with ``status`` (a trailing ``*`` matches a prefix)."""

    def entries(self, status: str | None, limit: int | None,
                offset: int) -> list[LedgerEntry]:
        """A page: selected tracks by rank, then the others by track id."""

    def iter(self, status: str | None) -> Iterator[LedgerEntry]:
        """Every matching track, in the order of :meth:`entries`, streamed."""


class _SqliteLedger:
    def __init__(self, ws: Workspace) -> None:
        self.store = ws.store(readonly=True)

    def counts(self) -> dict[str, int]:
        return ledger.status_counts(self.store.conn)

    def matching(self, status: str | None) -> int:
        return ledger.count_matching(self.store, status)

    def entries(self, status: str | None, limit: int | None,
                offset: int) -> list[LedgerEntry]:
        return ledger.ledger_entries(self.store, status, limit, offset)

    def iter(self, status: str | None) -> Iterator[LedgerEntry]:
        return ledger.iter_ledger(self.store, status)

    def close(self) -> None:
        self.store.close()


class _ColumnarLedger:
    def __init__(self, ws: Workspace) -> None:
        self.file = bulk.path(ws.root)
        self.con = bulk.open_bulk(ws.root, readonly=True)  # a reader: beside other readers

    def counts(self) -> dict[str, int]:
        with self._reading():
            return bulk_selection.status_counts(self.con)

    def matching(self, status: str | None) -> int:
        with self._reading():
            return bulk_selection.count_matching(self.con, status)

    def entries(self, status: str | None, limit: int | None,
                offset: int) -> list[LedgerEntry]:
        with self._reading():
            return bulk_selection.ledger_entries(self.con, status, limit, offset)

    def iter(self, status: str | None) -> Iterator[LedgerEntry]:
        with self._reading():
            yield from bulk_selection.iter_ledger(self.con, status)

    @contextmanager
    def _reading(self) -> Iterator[None]:
        # A DuckDB error reading the file (a corrupt or truncated catalogue.duckdb) is
        # the columnar stages' storage error, one line, not a traceback.
        try:
            yield
        except columnar.Error as exc:
            raise columnar.failed(self.file, "reading the ledger", exc) from exc

    def close(self) -> None:
        self.con.close()


_READERS: dict[str, Callable[[Workspace], _SqliteLedger | _ColumnarLedger]] = {
    "sqlite": _SqliteLedger,
    "duckdb": _ColumnarLedger,
}


def open_ledger(ws: Workspace) -> AbstractContextManager[LedgerView]:
    """The workspace's ledger, read-only, for the length of a ``with`` block."""
    return _open(ws)


@contextmanager
def _open(ws: Workspace) -> Iterator[LedgerView]:
    view = _READERS[ws.engine](ws)
    try:
        yield view
    finally:
        view.close()
