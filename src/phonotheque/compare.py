"""Coverage of one catalogue by another: which ISRCs and recording MBIDs each lacks.

The comparison ATTACHes both catalogues to one connection and runs set operations
in SQL, so it works at any size without loading either catalogue into Python. Two
SQLite catalogues are compared in SQLite; when either side is columnar
(catalogue.duckdb) both are attached, read-only, to an in-memory DuckDB, which runs
the same SQL text.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from phonotheque.catalogue.store import Store
from phonotheque.errors import InputError, WorkspaceError
from phonotheque.workspace import CATALOGUE, COLUMNAR, check_columnar_present

if TYPE_CHECKING:  # DuckDB is imported only when a columnar catalogue is compared
    from phonotheque.catalogue.columnar import Connection as ColumnarConnection


@dataclass(frozen=True, slots=True)
class KeyOverlap:
    """Overlap of one kind of key (ISRC or recording MBID) between A and B."""

    kind: str
    in_a: int
    in_b: int
    both: int
    only_a: int
    only_b: int
    sample_only_a: list[str] = field(default_factory=list)
    sample_only_b: list[str] = field(default_factory=list)

    @property
    def share_of_a_in_b(self) -> float:
        return self.both / self.in_a if self.in_a else 0.0

    @property
    def share_of_b_in_a(self) -> float:
        return self.both / self.in_b if self.in_b else 0.0


@dataclass(frozen=True, slots=True)
class CompareReport:
    a: str
    b: str
    isrc: KeyOverlap
    mbid: KeyOverlap


_KEYS = {
    "isrc": "SELECT DISTINCT isrc AS k FROM {db}.track_isrc",
    "mbid": "SELECT DISTINCT mbid AS k FROM {db}.track WHERE mbid IS NOT NULL",
}


def catalogue_file(path: Path) -> Path:
    """The file holding the bulk tables of a workspace folder or catalogue file.

    A columnar workspace keeps them in catalogue.duckdb, whose catalogue.sqlite is not
    kept up to date, so its catalogue.sqlite also means its catalogue.duckdb.
    """
    path = Path(path)
    if path.is_dir() and (path / CATALOGUE).is_file():
        check_columnar_present(path)  # a columnar workspace's tracks are not in SQLite
        return path / COLUMNAR if (path / COLUMNAR).is_file() else path / CATALOGUE
    if path.is_file() and path.suffix == ".sqlite":
        columnar = path.with_name(COLUMNAR)
        if path.name == CATALOGUE:
            check_columnar_present(path.parent)
        return columnar if path.name == CATALOGUE and columnar.is_file() else path
    if path.is_file() and path.name == COLUMNAR and path.with_name(CATALOGUE).is_file():
        return path
    raise WorkspaceError(path, "not a workspace, catalogue.sqlite or catalogue.duckdb")


def compare(a: Path, b: Path, *, sample: int = 10, a_name: str = "A",
            b_name: str = "B") -> CompareReport:
    """Compare catalogue ``a`` with catalogue ``b`` (workspace folders or catalogue files;
    both only read)."""
    if sample < 0:  # SQLite reads LIMIT -1 as no limit, DuckDB refuses it
        raise InputError(sample, "the sample size cannot be negative")
    file_a, file_b = catalogue_file(a), catalogue_file(b)
    if file_a.suffix == file_b.suffix == ".sqlite":
        with Store(file_a, readonly=True) as store:
            # Plain path: the store connection is not opened in URI mode. We only read.
            try:
                store.conn.execute("ATTACH DATABASE ? AS other", (str(file_b),))
            except sqlite3.Error as exc:
                raise WorkspaceError(file_b, f"not a readable catalogue: {exc}") from exc
            try:
                _check_catalogue(store.conn, "main", file_a)
                _check_catalogue(store.conn, "other", file_b)
                parts = _overlaps(store.conn, "main", "other", sample)
            finally:
                store.conn.execute("DETACH DATABASE other")
    else:
        from phonotheque.catalogue import columnar

        held = file_a if file_a.suffix == ".duckdb" else file_b
        con = columnar.connect(held.with_name(CATALOGUE),
                               temp_directory=held.parent / "tmp" / "duckdb")
        same = file_b.resolve() == file_a.resolve()  # DuckDB attaches a file only once
        try:
            columnar.attach(con, file_a, "a", read_only=True)
            _check_catalogue(con, "a", file_a)
            _check_columnar_version(con, "a", file_a)
            if not same:
                columnar.attach(con, file_b, "b", read_only=True)
                _check_catalogue(con, "b", file_b)
                _check_columnar_version(con, "b", file_b)
            parts = _overlaps(con, "a", "a" if same else "b", sample)
        except columnar.Error as exc:  # e.g. a corrupt or truncated catalogue.duckdb
            read = ", ".join(str(f) for f in dict.fromkeys((file_a, file_b))
                             if f.suffix == ".duckdb")
            raise columnar.failed(read, "comparing the catalogues", exc) from exc
        finally:
            con.close()
    return CompareReport(a_name, b_name, parts["isrc"], parts["mbid"])


def _check_columnar_version(con: ColumnarConnection, db: str, path: Path) -> None:
    """Refuse a catalogue.duckdb attached as ``db`` whose schema is newer than this phono's,
    as every other reader does (bulk.open_bulk)."""
    if path.suffix == ".duckdb":
        from phonotheque.catalogue import bulk

        bulk.refuse_newer(con, path, db)


def _check_catalogue(conn: sqlite3.Connection | ColumnarConnection, db: str,
                     path: Path) -> None:
    """Refuse, as not a catalogue, a file (any ``.sqlite`` is taken) that lacks the
    tables and columns compared; both engines attach lazily, so this reads them now."""
    if isinstance(conn, sqlite3.Connection):
        errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    else:
        from phonotheque.catalogue import columnar

        errors = (columnar.Error,)
    try:
        for query in _KEYS.values():
            conn.execute(f"SELECT * FROM ({query.format(db=db)}) LIMIT 0").fetchall()
    except errors as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkspaceError(path, f"not a readable catalogue: {first}") from exc


def _overlaps(conn: sqlite3.Connection | ColumnarConnection, a: str, b: str,
              sample: int) -> dict[str, KeyOverlap]:
    return {kind: _overlap(conn, kind, a, b, sample) for kind in _KEYS}


def _overlap(conn: sqlite3.Connection | ColumnarConnection, kind: str, a: str, b: str,
             sample: int) -> KeyOverlap:
    def scalar(sql: str) -> int:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def keys(sql: str) -> list[str]:
        return [r[0] for r in conn.execute(sql, [sample]).fetchall()]

    qa = _KEYS[kind].format(db=a)
    qb = _KEYS[kind].format(db=b)
    in_a = scalar(f"SELECT count(*) FROM ({qa})")
    in_b = scalar(f"SELECT count(*) FROM ({qb})")
    both = scalar(f"SELECT count(*) FROM ({qa} INTERSECT {qb})")
    only_a = keys(f"{qa} EXCEPT {qb} ORDER BY 1 LIMIT ?")
    only_b = keys(f"{qb} EXCEPT {qa} ORDER BY 1 LIMIT ?")
    return KeyOverlap(kind, in_a, in_b, both, in_a - both, in_b - both, only_a, only_b)
