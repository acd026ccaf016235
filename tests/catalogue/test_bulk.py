"""The columnar catalogue (catalogue.duckdb): created, converted with ids kept, guarded."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from phonotheque.catalogue import bulk
from phonotheque.errors import BusyError, SchemaTooNew, WorkspaceError
from phonotheque.workspace import Workspace
from tests.select_helpers import lb_top_records

REPO = Path(__file__).resolve().parents[2]


def test_init_engine_duckdb_makes_an_empty_columnar_workspace(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    assert ws.engine == "duckdb" and ws.columnar.is_file()
    con = bulk.open_bulk(ws.root)
    try:
        for table in bulk.BULK_TABLES:
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        assert bulk.schema_version(con) == bulk.SCHEMA_VERSION
    finally:
        con.close()
    # idempotent, and it stays columnar
    assert Workspace.create(ws.root).engine == "duckdb"
    with pytest.raises(WorkspaceError, match="cannot go back"):
        Workspace.create(ws.root, engine="sqlite")


def test_converting_a_sqlite_workspace_keeps_every_row_and_id(ws: Workspace) -> None:
    with ws.store() as store:
        store.write(lb_top_records())
    assert ws.engine == "sqlite"
    Workspace.create(ws.root, engine="duckdb")
    assert ws.engine == "duckdb"
    con = bulk.open_bulk(ws.root)
    try:
        with sqlite3.connect(ws.catalogue) as conn:
            for table in bulk.BULK_TABLES:
                want = sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                got = sorted((tuple(r) for r in con.execute(f"SELECT * FROM {table}").fetchall()),
                             key=repr)
                assert got == want, table
        tracks = con.execute("SELECT count(*) FROM track").fetchone()
        assert tracks is not None and tracks[0] > 0
    finally:
        con.close()
    assert not list(ws.root.glob(".catalogue.duckdb.new*"))


def test_a_newer_columnar_schema_is_refused(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    con = bulk.open_bulk(ws.root)
    con.execute("UPDATE bulk_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaTooNew, match="99"):
        bulk.open_bulk(ws.root)


def test_a_sqlite_workspace_is_not_opened_as_columnar(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="not a columnar workspace"):
        bulk.open_bulk(ws.root)


def test_a_second_writer_is_told_the_catalogue_is_busy(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from phonotheque.catalogue import bulk; "
         f"c = bulk.open_bulk({str(ws.root)!r}); print('open', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, cwd=REPO, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(BusyError, match="another phono process"):
            bulk.open_bulk(ws.root)
    finally:
        holder.kill()
        holder.wait()


def test_cli_init_engine(tmp_path: Path) -> None:
    phono = [str(REPO / ".venv" / "bin" / "phono")]
    out = subprocess.run([*phono, "init", str(tmp_path / "w"), "--engine", "duckdb"],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "engine: duckdb" in out.stdout
    back = subprocess.run([*phono, "init", str(tmp_path / "w"), "--engine", "sqlite"],
                          capture_output=True, text=True, cwd=REPO)
    assert back.returncode == 3 and "cannot go back" in back.stderr
    assert "Traceback" not in back.stderr


def test_checkpoints_round_trip_and_commit_with_the_transaction(tmp_path: Path) -> None:
    from phonotheque.model import Checkpoint

    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    con = bulk.open_bulk(ws.root)
    try:
        cp = Checkpoint("a.jsonl", "musicbrainz", 10, done=True, line=3, size=10, mtime_ns=5)
        con.execute("BEGIN TRANSACTION")
        bulk.save_checkpoint(con, cp)
        con.execute("ROLLBACK")
        assert bulk.checkpoint(con, "a.jsonl") is None
        bulk.save_checkpoint(con, cp)
        bulk.save_checkpoint(con, cp)
        assert bulk.checkpoint(con, "a.jsonl") == cp
        assert con.execute("SELECT count(*) FROM ingest_checkpoint").fetchone() == (1,)
    finally:
        con.close()
