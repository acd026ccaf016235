"""One rule for a damaged catalogue, on both engines and every command.

A workspace's catalogue file that is not a readable database of ours (empty, a header
overwritten, cut short, a damaged block) is exit 3 with one line naming the file and
saying "not a readable ... catalogue", as the SQLite engine always said of
catalogue.sqlite (docs/cli.md, exit codes). A real I/O failure stays exit 5. Real files,
damaged on disk, read by the real commands.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.ingest import ingest
from phonotheque.workspace import Workspace
from tests import require

DEMO = Path(__file__).parents[1] / "src" / "phonotheque" / "demo_data"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small catalogue (the demo's MusicBrainz sample and listens) on each engine."""
    made: dict[str, Path] = {}
    for engine in ("sqlite", "duckdb"):
        ws = Workspace.create(tmp_path_factory.mktemp(engine) / "ws", engine=engine)
        ingest(ws, "musicbrainz", [DEMO / "musicbrainz" / "mbdump-sample.jsonl"])
        ingest(ws, "listens", [DEMO / "listens.csv"])
        assert ws.engine == engine
        made[engine] = ws.root
    return made


def _copy(built: dict[str, Path], engine: str, to: Path) -> Path:
    shutil.copytree(built[engine], to, symlinks=True)
    return to


def _overwrite(path: Path, offset: int, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(bytes((i * 37 + 11) & 0xFF for i in range(size)))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _garbage_header(path: Path) -> None:
    _overwrite(path, 0, 4096)


def _cut_at(share: float) -> Callable[[Path], None]:
    def cut(path: Path) -> None:
        os.truncate(path, int(path.stat().st_size * share))
    return cut


def _middle_block(path: Path) -> None:
    """Overwrite one block in the middle: a DuckDB block (256 KiB after its 12 KiB of
    headers) or a SQLite page (4 KiB)."""
    size = path.stat().st_size
    if path.suffix == ".duckdb":
        blocks = (size - 12288) // 262144
        _overwrite(path, 12288 + blocks // 2 * 262144, 262144)
    else:
        _overwrite(path, size // 4096 // 2 * 4096, 4096)


#: A cut near the end may spare every block a command reads (compare reads a few
#: tables): DuckDB finds no damage there and the command's answer is right, so the cuts
#: here fall where each command reads.
DAMAGES = {"empty": _empty, "garbage header": _garbage_header, "cut at 10%": _cut_at(0.1),
           "cut at 50%": _cut_at(0.5)}
#: (engine, damaged file): the bulk file of each engine, and the columnar workspace's
#: catalogue.sqlite (its operational tables: ledger, rejects, progress).
FILES = [("sqlite", "catalogue.sqlite"), ("duckdb", "catalogue.duckdb"),
         ("duckdb", "catalogue.sqlite")]
COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "stats": lambda ws, other: ["stats", "-w", str(ws)],
    "ledger": lambda ws, other: ["ledger", "--json", "-w", str(ws)],
    "select": lambda ws, other: ["select", "-w", str(ws)],
    "ingest listens": lambda ws, other: ["ingest", "listens", "--force", "-w", str(ws),
                                         str(DEMO / "listens.csv")],
    "compare": lambda ws, other: ["compare", str(ws), str(other)],
}


def _says_damaged(out: object, file: Path, what: str) -> None:
    output = out.output  # type: ignore[attr-defined]
    assert out.exit_code == 3, (what, output, out.exception)  # type: ignore[attr-defined]
    assert "Traceback" not in output, output
    assert f"{file}: not a readable" in output and "catalogue" in output, (what, output)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("engine,name", FILES, ids=[f"{e}-{n}" for e, n in FILES])
def test_a_damaged_catalogue_is_exit_3_naming_it_on_both_engines(
        built: dict[str, Path], tmp_path: Path, engine: str, name: str, command: str) -> None:
    """Before, the same damage gave a different answer by engine and command: on a
    columnar workspace an empty, overwritten or short catalogue.duckdb was exit 2 ("DuckDB
    cannot open it") or exit 5 ("DuckDB failed while ...", a storage error sending the user
    to their disk) depending on where the cut fell; an empty catalogue.sqlite was a
    traceback (sqlite3.OperationalError: no such table: meta) on both engines; compare on
    a columnar workspace said exit 2 of a damaged catalogue.sqlite. Now exit 3 naming it."""
    other = built["sqlite" if engine == "duckdb" else "duckdb"]
    for what, damage in DAMAGES.items():
        ws = _copy(built, engine, tmp_path / what.replace(" ", "-").replace("%", ""))
        damage(ws / name)
        out = CliRunner().invoke(main, COMMANDS[command](ws, other))
        _says_damaged(out, ws / name, what)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_damaged_block_of_catalogue_duckdb_is_exit_3_not_storage(
        built: dict[str, Path], tmp_path: Path, command: str) -> None:
    """A block of catalogue.duckdb overwritten (DuckDB opens the file, then finds the
    block's checksum wrong when it reads it) was exit 5, "storage"."""
    ws = _copy(built, "duckdb", tmp_path / "ws")
    db = ws / "catalogue.duckdb"
    whole = db.read_bytes()
    hit = 0
    for block in range((len(whole) - 12288) // 262144):  # every block, one at a time
        db.write_bytes(whole)
        _overwrite(db, 12288 + block * 262144, 262144)
        out = CliRunner().invoke(main, COMMANDS[command](ws, built["sqlite"]))
        if out.exit_code != 0:  # a block this command reads
            _says_damaged(out, db, f"block {block}")
            hit += 1
    assert hit, "no block this command reads was damaged"


def test_a_damaged_duckdb_header_is_not_another_process_holding_the_file(
        built: dict[str, Path], tmp_path: Path) -> None:
    """catalogue.duckdb's main header overwritten past its magic (its storage version):
    DuckDB says 'Corrupt database file: ... in block at location 0', and the 'lock' in
    'block' made every command exit 7, "another phono process is using the columnar
    catalogue; wait for it to finish": a user would wait for ever."""
    ws = _copy(built, "duckdb", tmp_path / "ws")
    db = ws / "catalogue.duckdb"
    with open(db, "r+b") as fh:
        fh.seek(12)
        fh.write(struct.pack("<Q", 999))
    for command in ("stats", "select", "ingest listens", "compare"):
        out = CliRunner().invoke(main, COMMANDS[command](ws, built["sqlite"]))
        _says_damaged(out, db, command)
        assert "another phono process" not in out.output


def _make_read_only(path: Path) -> None:
    """A file no process may write, root included (chattr +i), else chmod."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        return
    chattr = require.require_tool("chattr")
    if subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False).returncode:
        require.missing("a file system where chattr +i makes a file read-only for root")


def _writable_again(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
    path.chmod(0o644)


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_a_read_only_catalogue_is_storage_when_writing_and_readable_when_reading(
        built: dict[str, Path], tmp_path: Path, engine: str) -> None:
    """A catalogue file that may not be written is a storage error (exit 5) for a command
    that writes it, as on the SQLite engine; catalogue.duckdb said exit 2 ("DuckDB cannot
    open it", bad input). A reader still reads it (exit 0)."""
    ws = _copy(built, engine, tmp_path / "ws")
    db = ws / ("catalogue.duckdb" if engine == "duckdb" else "catalogue.sqlite")
    _make_read_only(db)
    try:
        assert CliRunner().invoke(main, COMMANDS["stats"](ws, ws)).exit_code == 0
        out = CliRunner().invoke(main, COMMANDS["select"](ws, ws))
        assert out.exit_code == 5, (out.output, out.exception)
        assert str(db) in out.output, out.output
    finally:
        _writable_again(db)


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_a_damaged_page_of_catalogue_sqlite_read_mid_command_is_exit_3(
        built: dict[str, Path], tmp_path: Path, engine: str) -> None:
    """A page of catalogue.sqlite overwritten past its schema (the open checks only the
    schema): `phono publish` and `pack` read it mid-command and ended in a traceback,
    sqlite3.DatabaseError 'database disk image is malformed', exit 1, on both engines
    (catalogue.sqlite holds the ledger on a columnar workspace too). Now exit 3 naming
    the file, as when the open finds the damage."""
    ws = _copy(built, engine, tmp_path / "ws")
    db = ws / "catalogue.sqlite"
    whole = db.read_bytes()
    pages = len(whole) // 4096
    for page in range(pages // 2, pages):  # past the schema; up to the first page read
        db.write_bytes(whole)
        _overwrite(db, page * 4096, 4096)
        out = CliRunner().invoke(main, ["publish", "--no-parquet", "-w", str(ws)])
        if out.exit_code != 0:
            _says_damaged(out, db, f"page {page} of {pages}")
            break
    else:
        pytest.fail("publish read none of the damaged pages")
