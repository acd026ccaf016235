"""DuckDB over a real catalogue.sqlite: the extension from the wheel, limits, read-only."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from phonotheque.catalogue import columnar
from phonotheque.errors import DamagedCatalogue, InputError, ToolError
from phonotheque.workspace import Workspace
from tests.select_helpers import lb_top_records

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def filled(ws: Workspace) -> Workspace:
    with ws.store() as store:
        store.write(lb_top_records())
    return ws


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reads_the_catalogue_as_sqlite_does(filled: Workspace) -> None:
    query = ("SELECT t.mbid, l.count, l.users FROM track t JOIN listens l ON l.track_id = t.id "
             "ORDER BY l.count DESC, t.mbid")
    with sqlite3.connect(filled.catalogue) as conn:
        want = conn.execute(query).fetchall()
    assert len(want) == 20
    con = columnar.connect(filled.catalogue, temp_directory=filled.columnar_temp)
    try:
        got = con.execute(query.replace("track t", "cat.track t")
                          .replace("listens l", "cat.listens l")).fetchall()
    finally:
        con.close()
    assert got == want


def test_catalogue_is_attached_read_only(filled: Workspace) -> None:
    with sqlite3.connect(filled.catalogue) as conn:  # settle the WAL into the main file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = _digest(filled.catalogue)
    con = columnar.connect(filled.catalogue, temp_directory=filled.columnar_temp)
    try:
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM cat.listens")
        assert con.execute("SELECT count(*) FROM cat.listens").fetchone() == (20,)
    finally:
        con.close()
    assert _digest(filled.catalogue) == before


def test_writable_attach_writes_the_sqlite_file(filled: Workspace) -> None:
    con = columnar.connect(filled.catalogue, temp_directory=filled.columnar_temp, writable=True)
    try:
        con.execute("CREATE TABLE cat.scratch AS SELECT range AS n FROM range(1000)")
    finally:
        con.close()
    with sqlite3.connect(filled.catalogue) as conn:
        assert conn.execute("SELECT count(*), sum(n) FROM scratch").fetchone() == (1000, 499500)


def test_memory_and_spill_folder_from_the_machine_and_the_option(filled: Workspace) -> None:
    con = columnar.connect(filled.catalogue, temp_directory=filled.columnar_temp,
                           memory_bytes=256 * 1024 * 1024, threads=1)
    try:
        limit, temp, threads, auto_install, auto_load = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory'), "
            "current_setting('threads'), current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions')").fetchone() or ()
    finally:
        con.close()
    assert limit == "256.0 MiB"
    assert Path(temp) == filled.root / "tmp" / "duckdb" and Path(temp).is_dir()
    assert (threads, auto_install, auto_load) == (1, False, False)
    # No option: half of this machine's physical memory.
    half = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    assert columnar.memory_limit() == half
    with pytest.raises(InputError, match="below the minimum"):
        columnar.memory_limit(1024)


def test_extension_comes_from_the_wheel_without_network(filled: Workspace,
                                                        tmp_path: Path) -> None:
    """In a fresh process with an empty home (no ~/.duckdb/extensions), every proxy on a
    closed loopback port and DuckDB's repository pointed there too, the catalogue still
    attaches: the extension is loaded from the installed wheel, nothing is fetched."""
    wheel = columnar.sqlite_extension()
    assert wheel.is_file() and "site-packages" in wheel.parts
    assert wheel.parts[-3:] == (f"v{duckdb.__version__}", "linux_amd64",
                                "sqlite_scanner.duckdb_extension")
    home = tmp_path / "home"
    home.mkdir()
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": f"{REPO / 'src'}:{REPO}",
           "http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead}
    script = (
        "import sys; from pathlib import Path\n"
        "from phonotheque.catalogue import columnar\n"
        "con = columnar.connect(Path(sys.argv[1]), temp_directory=Path(sys.argv[2]))\n"
        f"con.execute(\"SET custom_extension_repository = '{dead}'\")\n"
        "print(con.execute('SELECT count(*) FROM cat.track').fetchone()[0])\n"
        "print(con.execute(\"SELECT loaded FROM duckdb_extensions() "
        "WHERE extension_name = 'sqlite_scanner'\").fetchone()[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(filled.catalogue),
                          str(filled.columnar_temp)], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["20", "True"]
    assert not (home / ".duckdb" / "extensions").exists()


def test_a_mismatched_extension_is_a_clear_error(filled: Workspace,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # As if duckdb had been upgraded without its extension package: the wheel holds
    # v1.4.4 only, so a DuckDB 9.9.9 has no extension to load (and must not fetch one).
    monkeypatch.setattr(duckdb, "__version__", "9.9.9")
    with pytest.raises(ToolError, match=r"no SQLite extension for DuckDB v9\.9\.9 .*v1\.4\.4"):
        columnar.connect(filled.catalogue, temp_directory=filled.columnar_temp)


def test_an_extension_duckdb_cannot_load_is_a_clear_error(filled: Workspace, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    broken = tmp_path / "sqlite_scanner.duckdb_extension"
    broken.write_bytes(b"not an extension")
    monkeypatch.setattr(columnar, "sqlite_extension", lambda con=None: broken)
    with pytest.raises(ToolError, match="cannot load it") as err:
        columnar.connect(filled.catalogue, temp_directory=filled.columnar_temp)
    assert err.value.subject == broken


def _unchecked(ws: Workspace) -> bool:
    """Whether a new connection loaded the extension without checking its signature."""
    con = columnar.connect(ws.catalogue, temp_directory=ws.columnar_temp)
    try:
        row = con.execute("SELECT current_setting('allow_unsigned_extensions')").fetchone()
        assert con.execute("SELECT count(*) FROM cat.track").fetchone() == (20,)
    finally:
        con.close()
    return bool(row and row[0])


def test_the_extension_signature_is_checked_once_per_file_in_a_process(
        filled: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB checks the extension's signature (it hashes all 50 MB: ~0.4 s of CPU) at
    every connection, which a process opening the catalogue several times paid each time.
    The second connection to the same, unchanged file loads it unchecked; another file
    is checked, and a file changed after its check is checked again, and refused when
    its signature no longer matches."""
    monkeypatch.setattr(columnar, "_VERIFIED", set())  # as in a fresh process
    assert not _unchecked(filled)  # the first connection: checked
    assert _unchecked(filled)  # the same file again
    # Another file, in a process of its own: a second copy of the extension loaded in
    # this one made a later import crash (both copies' symbols in one process).
    copy = tmp_path / "ext" / "sqlite_scanner.duckdb_extension"
    copy.parent.mkdir()
    shutil.copyfile(columnar.sqlite_extension(), copy)
    script = (
        "import os, sys; from pathlib import Path\n"
        "import pytest\n"
        "from phonotheque.catalogue import columnar\n"
        "from phonotheque.errors import ToolError\n"
        "from phonotheque.workspace import Workspace\n"
        "from tests.catalogue.test_columnar import _unchecked\n"
        "ws, copy = Workspace(Path(sys.argv[1])), Path(sys.argv[2])\n"
        "columnar.sqlite_extension = lambda con=None: copy\n"
        "print(_unchecked(ws), _unchecked(ws))  # the same bytes: checked, signed\n"
        "data = bytearray(copy.read_bytes())\n"
        "data[-1] ^= 0xFF  # its signature, changed after the check (a new file in its\n"
        "new = copy.with_name('new')  # place: the loaded one stays mapped as it was)\n"
        "new.write_bytes(data)\n"
        "os.replace(new, copy)\n"
        "with pytest.raises(ToolError, match='cannot load it'):\n"
        "    _unchecked(ws)\n"
        "print('refused')\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    out = subprocess.run([sys.executable, "-c", script, str(filled.root), str(copy)],
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == ["False", "True", "refused"]


def test_no_catalogue_or_not_a_catalogue(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such catalogue"):
        columnar.connect(tmp_path / "missing.sqlite", temp_directory=tmp_path / "t")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DamagedCatalogue, match="not a readable SQLite catalogue") as caught:
        columnar.connect(junk, temp_directory=tmp_path / "t")
    assert caught.value.exit_code == 3  # as the SQLite engine says of the same file


def test_running_out_of_memory_names_phono_memory(filled: Workspace) -> None:
    """A real DuckDB out-of-memory error becomes a StorageError telling a phono user
    what to change (PHONO_MEMORY), not DuckDB's `SET memory_limit` advice."""
    from phonotheque.errors import StorageError

    con = columnar.connect(filled.catalogue, temp_directory=filled.columnar_temp,
                           memory_bytes=64 << 20)
    try:
        with pytest.raises(columnar.Error) as caught:
            con.execute("SELECT list(i ORDER BY i DESC) FROM range(200000000) t(i)").fetchall()
    finally:
        con.close()
    err = columnar.failed("catalogue.duckdb", "selecting", caught.value)
    assert isinstance(caught.value, duckdb.OutOfMemoryException), caught.value
    assert isinstance(err, StorageError) and err.exit_code == 5
    # the limit in force (DuckDB's message says it) and a figure above it
    assert "memory limit of 64 MiB while selecting" in err.problem, err.problem
    assert "PHONO_MEMORY=1GiB" in err.problem
    assert "SET memory_limit" not in err.problem
    other = columnar.failed("x", "publishing", duckdb.IOException("IO Error: disk\nmore"))
    assert other.problem == "DuckDB failed while publishing: IO Error: disk"


def test_a_duckdb_error_is_classed_by_what_went_wrong(tmp_path: Path) -> None:
    """Every DuckDB error but out-of-memory became a StorageError (exit 5, "storage"): an
    overflow or a failed conversion sent a user looking at their disk. Real errors now:
    a value DuckDB cannot hold or convert is bad input (exit 2), an I/O error stays
    storage (exit 5), anything else is an error (exit 1)."""
    from phonotheque.errors import InputError, PhonoError, StorageError

    con = duckdb.connect()
    try:
        got = {}
        for name, sql in (
                ("overflow", "SELECT 9223372036854775807::BIGINT + 1"),
                ("conversion", "SELECT CAST('12x' AS BIGINT)"),
                ("io", f"SELECT * FROM read_csv('{tmp_path / 'gone.csv'}')"),
                ("catalog", "SELECT * FROM no_such_table")):
            with pytest.raises(duckdb.Error) as caught:
                con.execute(sql).fetchall()
            got[name] = columnar.failed("catalogue.duckdb", "selecting", caught.value)
    finally:
        con.close()
    for name in ("overflow", "conversion"):
        assert type(got[name]) is InputError and got[name].exit_code == 2, got[name]
    assert type(got["io"]) is StorageError and got["io"].exit_code == 5, got["io"]
    assert type(got["catalog"]) is PhonoError and got["catalog"].exit_code == 1
    assert got["overflow"].problem.startswith("DuckDB failed while selecting: Out of Range")


@pytest.mark.parametrize("limit", [None, 10 << 30])
def test_out_of_memory_advice_is_above_the_limit_in_force(limit: int | None) -> None:
    """A user who already set PHONO_MEMORY=10GiB is told the limit was 10 GiB and to try
    20GiB (was: "e.g. PHONO_MEMORY=8GiB", below what they had), whether the caller
    knows the limit or only DuckDB's message gives it."""
    exc = duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size "
                                      "16.0 MiB (9.9 GiB/10.0 GiB used)\n\nPossible ...")
    err = columnar.failed("catalogue.duckdb", "selecting", exc, limit)
    assert "memory limit of 10 GiB while selecting" in err.problem, err.problem
    assert "PHONO_MEMORY=20GiB" in err.problem and "8GiB" not in err.problem
    odd = columnar.out_of_memory("publishing", "Out of Memory Error", int(2.7 * (1 << 30)))
    assert "of 2.7 GiB" in odd and "PHONO_MEMORY=6GiB" in odd
    unknown = columnar.failed("x", "publishing", duckdb.OutOfMemoryException("Out of Memory"))
    assert "PHONO_MEMORY" in unknown.problem and "8GiB" not in unknown.problem


def test_a_long_statement_prints_nothing(filled: Workspace,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    """DuckDB's client draws a progress bar on stdout for long statements (seen under
    load in `--json` runs); a phono connection never prints."""
    con = columnar.connect(filled.catalogue, temp_directory=filled.columnar_temp)
    try:
        con.execute("SET progress_bar_time = 1")  # draw after 1 ms instead of 2 s
        con.execute("SELECT sum(hash(i)) FROM range(30000000) t(i)").fetchall()
    finally:
        con.close()
    out, _err = capfd.readouterr()
    assert out == ""
