"""Run a select test module on both engines: ``from tests.select_engines import engine``.

The fixture is autouse and parametrised: each test of the importing module runs on
a SQLite workspace and on a columnar one (``phono init --engine duckdb``), so the
exact expectations, written against the SQLite catalogue, hold on DuckDB alike and
the test bodies stay as they are.

On the columnar run every ``select()`` is wrapped (:func:`columnar_select`): the
catalogue the test built (and changed) through the Store is converted afresh into
catalogue.duckdb (ids kept), with the ledger as it stands in catalogue.sqlite (a
test may have recorded audio outcomes there); select then runs entirely on DuckDB,
and its ``selection`` and ``ledger`` are copied back into catalogue.sqlite, where
the test reads them with its usual SQL. The copy is exact (every column), so a
difference in what DuckDB wrote fails the test as it would on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from phonotheque.catalogue import bulk
from phonotheque.catalogue.selection import COLUMNS
from phonotheque.catalogue.store import Store
from phonotheque.select import SelectOptions, SelectReport, plan
from phonotheque.select.plan import Progress

_COLUMNAR = plan.ENGINES["duckdb"]


def convert_afresh(root: Path) -> None:
    """Make catalogue.duckdb a copy of catalogue.sqlite's bulk tables, selection and
    ledger (the conversion copies all three)."""
    bulk.path(root).unlink(missing_ok=True)
    con = bulk.open_bulk(root, create=True)
    try:
        bulk.convert_from_sqlite(con)
    finally:
        con.close()


def copy_back(store: Store) -> None:
    """Copy the columnar selection and ledger into catalogue.sqlite (for the test's SQL).

    Through the store's own connection: two SQLite libraries in one process (Python's
    and DuckDB's extension) must not both write one file (their locks do not see each
    other), so DuckDB only reads here."""
    con = bulk.open_bulk(store.path.parent)
    try:
        tables = {table: (cols, con.execute(f"SELECT {cols} FROM {table} ORDER BY track_id"
                                            ).fetchall())
                  for table, cols in (("selection", ", ".join(COLUMNS)),
                                      ("ledger", "track_id, status, detail, updated_at"))}
    finally:
        con.close()
    with store.transaction() as conn:
        for table, (cols, rows) in tables.items():
            conn.execute(f"DELETE FROM {table}")
            marks = ", ".join("?" * len(cols.split(", ")))
            conn.executemany(f"INSERT INTO {table}({cols}) VALUES ({marks})", rows)


def columnar_select(store: Store, opts: SelectOptions, progress: Progress | None
                    ) -> SelectReport:
    root = store.path.parent
    convert_afresh(root)
    report = _COLUMNAR(store, opts, progress)
    copy_back(store)
    return report


# DuckDB verifies its 50 MB SQLite extension's signature on every connection (about
# 0.3 s, 2 s on a machine loaded by 50 processes), three per select here: the columnar
# half runs with -m slow (and the property test's 80 selections may take their time),
# while tests/test_select_engines.py compares the engines on every run.
PARAMS = ["sqlite", pytest.param("duckdb", marks=[pytest.mark.slow, pytest.mark.timeout(3600)])]


@pytest.fixture(autouse=True, params=PARAMS)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "duckdb":
        for name in ("sqlite", "duckdb"):
            monkeypatch.setitem(plan.ENGINES, name, columnar_select)
        # The ledger in ranges of 3 track ids, so these small catalogues cross ranges
        # (groups with their representative in another range) as a big one does.
        monkeypatch.setattr(bulk, "RANGE_IDS", 3)
    yield request.param
