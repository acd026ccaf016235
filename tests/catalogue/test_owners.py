"""One owner per catalogue table: only the owner module under ``catalogue/`` writes it.

Scans the source for SQL writes (INSERT / REPLACE / UPDATE / DELETE) and fails on
any against a catalogue table outside its owner, so the rule stays true.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from phonotheque.catalogue import bulk, schema
from phonotheque.catalogue.store import Store

SRC = Path(__file__).resolve().parents[2] / "src" / "phonotheque"

CATALOGUE_TABLES = frozenset(re.findall(r"CREATE TABLE (\w+)\(", "\n".join(schema.MIGRATIONS)))
COLUMNAR_TABLES = frozenset(re.findall(r"CREATE TABLE (\w+)\(", "\n".join(bulk.MIGRATIONS)))


def _columnar(rel: str) -> bool:
    """Modules that write the columnar catalogue (catalogue.duckdb), not catalogue.sqlite."""
    return rel.startswith("catalogue/bulk")

# SQL keywords are upper case in this code base; `DO UPDATE SET` yields "SET", no table.
_WRITE = re.compile(
    r"\b(?:INSERT(?:\s+OR\s+[A-Z]+)?\s+INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)\s+"
    r"((?:\w+\.)?\w+)")

# Modules whose unqualified writes go to another database than the catalogue (the
# published metadata.sqlite; the MusicBrainz staging file); a write there to the
# ATTACHed catalogue (``cat.<table>``) still counts.
OTHER_DATABASE = {"publish/export.py", "sources/mbdump.py"}


def _writes(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    out = []
    for m in _WRITE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        out.append((line, m.group(1)))
    return out


def _catalogue_writes(rel: str, path: Path) -> list[tuple[int, str]]:
    """Writes to catalogue.sqlite's tables (in a ``catalogue/bulk*`` module, only those
    through the ATTACHed ``cat``)."""
    found = []
    for line, target in _writes(path):
        if "." in target:
            db, table = target.split(".", 1)
            if db in ("cat", "main") and table in CATALOGUE_TABLES:
                found.append((line, table))
        elif target in CATALOGUE_TABLES and rel not in OTHER_DATABASE and not _columnar(rel):
            found.append((line, target))
    return found


def _columnar_writes(path: Path) -> list[tuple[int, str]]:
    return [(line, t) for line, t in _writes(path) if "." not in t and t in COLUMNAR_TABLES]


def _modules() -> list[tuple[str, Path]]:
    return sorted((p.relative_to(SRC).as_posix(), p) for p in SRC.rglob("*.py"))


def test_the_scan_sees_catalogue_tables() -> None:
    assert {"ledger", "audio_file", "torrent", "selection", "track"} <= CATALOGUE_TABLES
    assert _WRITE.findall("conn.execute('UPDATE ledger SET x = 1')") == ["ledger"]
    assert _WRITE.findall("INSERT OR IGNORE INTO reject(a) VALUES (1)") == ["reject"]
    assert _WRITE.findall("ON CONFLICT(k) DO UPDATE SET a = 1") == ["SET"]


def test_no_catalogue_writes_outside_catalogue() -> None:
    bad = [
        f"{rel}:{line}: writes {table}"
        for rel, path in _modules()
        if not rel.startswith("catalogue/")
        for line, table in _catalogue_writes(rel, path)
    ]
    assert not bad, "raw SQL writes outside the owner module:\n" + "\n".join(bad)


def test_every_table_has_exactly_one_owner() -> None:
    owners: dict[str, set[str]] = {}
    for rel, path in _modules():
        if rel.startswith("catalogue/") and rel != "catalogue/schema.py":
            for _, table in _catalogue_writes(rel, path):
                owners.setdefault(table, set()).add(rel)
    shared = {t: sorted(m) for t, m in owners.items() if len(m) > 1}
    assert not shared, f"tables written by more than one owner module: {shared}"


def test_every_columnar_table_has_exactly_one_owner() -> None:
    owners: dict[str, set[str]] = {}
    for rel, path in _modules():
        if _columnar(rel):
            for _, table in _columnar_writes(path):
                owners.setdefault(table, set()).add(rel)
    shared = {t: sorted(m) for t, m in owners.items() if len(m) > 1}
    assert not shared, f"columnar tables written by more than one module: {shared}"
    documented = _documented_owners("## Who owns which columnar table")
    wrong = {t: (documented.get(t), sorted(m)) for t, m in owners.items()
             if documented.get(t) not in m}
    assert not wrong, f"docs/architecture.md (documented, actual owner) disagree: {wrong}"


def _documented_owners(heading: str = "## Who owns which table") -> dict[str, str]:
    """Table -> owner module from a docs/architecture.md section ("Who owns which table")."""
    text = (SRC.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    out: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[1].startswith("`catalogue/"):
            for table in re.findall(r"`(\w+)`", cells[0]):
                out[table] = cells[1].strip("`")
    return out


def test_architecture_doc_names_each_tables_owner() -> None:
    owners = {table: rel for rel, path in _modules()
              if rel.startswith("catalogue/") and rel != "catalogue/schema.py"
              for _, table in _catalogue_writes(rel, path)}
    documented = _documented_owners()
    assert set(documented) == CATALOGUE_TABLES, (
        f"docs/architecture.md misses {sorted(CATALOGUE_TABLES - set(documented))}, "
        f"names unknown {sorted(set(documented) - CATALOGUE_TABLES)}")
    wrong = {t: (documented[t], owners.get(t)) for t in documented if owners.get(t) != documented[t]}
    assert not wrong, f"docs/architecture.md (documented, actual owner) disagree: {wrong}"


def test_owner_writes_join_the_callers_transaction(tmp_path: Path) -> None:
    """A stage groups several owners' writes into one commit; a failure undoes them all."""
    with Store(tmp_path / "c.sqlite", create=True) as store:
        with pytest.raises(RuntimeError), store.transaction():
            store.set_meta("a", "1")
            with store.transaction():  # what an owner function does inside
                store.set_meta("b", "2")
            raise RuntimeError("stage failed after both writes")
        assert store.get_meta("a") is None and store.get_meta("b") is None
        with store.transaction(), store.transaction():
            store.set_meta("c", "3")
        assert store.get_meta("c") == "3"
