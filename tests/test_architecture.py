"""The package picture of docs/architecture.md, checked: who may import whom.

Every module under ``src/phonotheque`` is parsed (not imported) and every import
of the project is checked against the tables below, function-level imports
included: an import inside a function is still an arrow in the package graph.
When a rule has to change, change it here and in docs/architecture.md together.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import phonotheque

ROOT = Path(phonotheque.__file__).parent

# Layers, lowest first. A unit (a top-level module or package of phonotheque) may
# import units of its own layer and of lower layers, never of a higher one. The
# stage order is the data flow: sources/catalogue -> select -> audio -> pack ->
# publish -> operate (serve, seed, health, gc); pipeline assembles the stages and cli is the shell over it all.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("foundation", frozenset({
        "phonotheque",  # the package itself: __version__
        "errors", "units", "clock", "atomic", "executors", "model", "isrc", "images",
        "sqlite_uri", "progress", "read_ahead", "heap_trim", "interrupts",
    })),
    ("engine", frozenset({"torrent"})),
    ("catalogue", frozenset({
        "sources", "catalogue", "workspace", "ingest", "columnar_ingest", "columnar_tags",
        "exclusions", "synth",
        "compare", "stats",
        "listen_match",
    })),
    ("select", frozenset({"select"})),
    ("audio", frozenset({"audio"})),
    ("pack", frozenset({"pack"})),
    ("publish", frozenset({"publish"})),
    ("operate", frozenset({"serve", "swarm", "gc"})),
    ("assembly", frozenset({"pipeline", "build_settings"})),
    ("cli", frozenset({"cli"})),
)  # fmt: skip

_FOUNDATION = LAYERS[0][1]

# Stricter than the layers: the only units these may import at all.
ONLY: dict[str, frozenset[str]] = {
    # The BitTorrent engine stands alone: errors and the version string, nothing else.
    "torrent": frozenset({"phonotheque", "errors"}),
    # Sources turn inputs into model records; they never touch the catalogue.
    "sources": _FOUNDATION,
    # The catalogue knows no stage, no workspace: only records and the sources' bounds.
    "catalogue": _FOUNDATION | {"sources"},
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    line: int
    target: str  # the imported module, dotted


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (ROOT.parent / rel).with_suffix(".py").is_file() or (ROOT.parent / rel).is_dir()


def _imports(path: Path) -> Iterator[Import]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return _imports_in(tree, module, package)


def _imports_in(tree: ast.AST, module: str, package: str) -> Iterator[Import]:
    # ast.walk: imports inside functions and `if TYPE_CHECKING:` count too.
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                # `from phonotheque.pack import aac` imports the module phonotheque.pack.aac.
                sub = f"{source}.{alias.name}"
                yield Import(module, node.lineno, sub if _is_module(sub) else source)


@cache
def _project_imports() -> tuple[Import, ...]:
    """Every project import under ROOT (parsed once: three tests read them)."""
    found = tuple(
        imp
        for path in sorted(ROOT.rglob("*.py"))
        for imp in _imports(path)
        if imp.target == "phonotheque" or imp.target.startswith("phonotheque.")
    )
    assert len(found) > 100, "the parser found almost no imports: is ROOT right?"
    return found


def unit(dotted: str) -> str:
    """``phonotheque.pack.folders`` -> ``pack``; ``phonotheque`` -> ``phonotheque``."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _layer_of() -> dict[str, int]:
    return {u: i for i, (_name, units) in enumerate(LAYERS) for u in units}


def _where(imp: Import) -> str:
    path = ROOT.parent / Path(*imp.module.split("."))
    shown = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
    return f"{shown.relative_to(ROOT.parent.parent)}:{imp.line} imports {imp.target}"


def test_every_unit_has_a_place_in_the_layers() -> None:
    units = {unit(_module_name(p)) for p in ROOT.rglob("*.py")}
    placed = set(_layer_of())
    missing = sorted(units - placed)
    assert not missing, (
        f"{missing}: give each a layer in LAYERS (tests/test_architecture.py) "
        "and in docs/architecture.md"
    )


def test_no_unit_imports_a_later_layer() -> None:
    layer = _layer_of()
    bad = [
        f"{_where(i)} ({LAYERS[layer[unit(i.module)]][0]} may not import "
        f"{LAYERS[layer[unit(i.target)]][0]})"
        for i in _project_imports()
        if layer.get(unit(i.target), -1) > layer.get(unit(i.module), len(LAYERS))
    ]
    assert not bad, "\n".join(sorted(set(bad)))


def test_restricted_units_import_only_what_they_may() -> None:
    bad = [
        _where(i)
        for i in _project_imports()
        if unit(i.module) in ONLY
        and unit(i.target) != unit(i.module)
        and unit(i.target) not in ONLY[unit(i.module)]
    ]
    assert not bad, "\n".join(sorted(set(bad)))


def test_private_modules_stay_in_their_package() -> None:
    """``pkg/_name.py`` is imported only from inside ``pkg`` (tests aside)."""
    bad = []
    for i in _project_imports():
        parts = i.target.split(".")
        private = [k for k, p in enumerate(parts) if p.startswith("_") and not p.startswith("__")]
        if private:
            owner = ".".join(parts[: private[0]])
            if not (i.module == owner or i.module.startswith(owner + ".")):
                bad.append(_where(i))
    assert not bad, "\n".join(sorted(set(bad)))


def test_docs_table_is_the_layers() -> None:
    """docs/architecture.md's layer table names the same layers and units, in order."""
    doc = (ROOT.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("## Which package may import which", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and cells[0] not in ("Layer", "---"):
            units = re.findall(r"`(\w+)`", cells[1])
            rows.append((cells[0], frozenset(units)))
    assert rows == [(name, units) for name, units in LAYERS]


def test_the_parser_sees_function_level_and_relative_imports() -> None:
    src = (
        "import phonotheque.errors\n"
        "def f():\n"
        "    from phonotheque.publish import export\n"
        "    from ..serve import app\n"
        "    from . import planner\n"
    )
    got = {i.target for i in _imports_in(ast.parse(src), "phonotheque.pack.x", "phonotheque.pack")}
    assert got == {"phonotheque.errors", "phonotheque.publish.export", "phonotheque.serve.app",
                   "phonotheque.pack.planner"}


# Third-party engines opened in exactly one module, so their settings cannot be bypassed:
# DuckDB only with the SQLite extension from the wheel and downloads switched off.
ONE_OPENER: dict[str, str] = {"duckdb": "phonotheque.catalogue.columnar"}


def test_duckdb_is_opened_in_one_module() -> None:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                if top in ONE_OPENER and module != ONE_OPENER[top]:
                    bad.append(f"{path.relative_to(ROOT.parent.parent)}:{node.lineno} imports "
                               f"{top} (only {ONE_OPENER[top]} may)")
    assert not bad, "\n".join(bad)
