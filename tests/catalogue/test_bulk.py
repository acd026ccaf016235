"""The columnar catalogue (catalogue.duckdb): created, converted with ids kept, guarded."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from phonotheque.catalogue import bulk, columnar
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
    from phonotheque.select import SelectOptions, select

    with ws.store() as store:
        store.write(lb_top_records())
    select(ws, SelectOptions())  # a plan and a ledger to carry over too
    assert ws.engine == "sqlite"
    Workspace.create(ws.root, engine="duckdb")
    assert ws.engine == "duckdb"
    con = bulk.open_bulk(ws.root)
    try:
        with sqlite3.connect(ws.catalogue) as conn:
            for table in bulk.CONVERTED_TABLES:
                want = sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                got = sorted((tuple(r) for r in con.execute(f"SELECT * FROM {table}").fetchall()),
                             key=repr)
                assert got == want, table
        for table in ("track", "selection", "ledger"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table  # type: ignore[index]
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


def _hold(ws: Workspace, readonly: bool) -> subprocess.Popen[str]:
    """Another process holding the columnar catalogue open (read-only or read-write)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from phonotheque.catalogue import bulk; "
         f"c = bulk.open_bulk({str(ws.root)!r}, readonly={readonly}); "
         "print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, cwd=REPO, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
    return holder


def _stats(ws: Workspace, command: str = "stats") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / ".venv" / "bin" / "phono"), command, "--json",
                           "-w", str(ws.root)], capture_output=True, text=True)


def test_readers_run_beside_each_other(tmp_path: Path) -> None:
    """phono stats and phono ledger open the columnar catalogue read-only: another
    reader does not lock them out (a read-write open would get BusyError here)."""
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    holder = _hold(ws, readonly=True)
    try:
        got = _stats(ws)
        assert got.returncode == 0, got.stderr
        assert '"tracks": 0' in got.stdout
        ledger = _stats(ws, "ledger")
        assert ledger.returncode == 0, ledger.stderr
        con = bulk.open_bulk(ws.root, readonly=True)
        con.close()
    finally:
        holder.kill()
        holder.wait()


def test_a_reader_during_a_writer_is_told_the_catalogue_is_busy(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    holder = _hold(ws, readonly=False)
    try:
        got = _stats(ws)
        assert got.returncode == 7, got.stdout + got.stderr  # BusyError
        assert "another phono process is using the columnar catalogue" in got.stderr
        assert "Traceback" not in got.stderr
    finally:
        holder.kill()
        holder.wait()


def test_a_writer_during_a_reader_is_told_the_catalogue_is_busy(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    holder = _hold(ws, readonly=True)
    try:
        with pytest.raises(BusyError, match="another phono process"):
            bulk.open_bulk(ws.root)
    finally:
        holder.kill()
        holder.wait()


def test_a_read_only_open_writes_nothing(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    before = bulk.path(ws.root).read_bytes()
    con = bulk.open_bulk(ws.root, readonly=True)
    try:
        with pytest.raises(columnar.Error):
            con.execute("INSERT INTO bulk_meta VALUES ('x', 'y')")
        with pytest.raises(columnar.Error):
            con.execute("DELETE FROM cat.exclusion")
    finally:
        con.close()
    assert bulk.path(ws.root).read_bytes() == before


def test_a_reader_refuses_a_newer_schema(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    con = bulk.open_bulk(ws.root)
    con.execute("UPDATE bulk_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaTooNew, match="99"):
        bulk.open_bulk(ws.root, readonly=True)


def test_duckdb_draws_no_progress_bar(tmp_path: Path) -> None:
    """DuckDB's own progress bar (on by default, in a process whose stdout is a pipe too,
    for a query past 2 s) wrote to stdout: under load the holder's open above printed it
    before its 'open' line, and it would corrupt ``--json`` output. Checked in a child
    process (under pytest DuckDB's default is already off), on the connection and on a
    cursor (the stages' threads use cursors); a query slow enough to draw the bar costs
    seconds, and lowering progress_bar_time turns the bar back on."""
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    out = subprocess.run(
        [sys.executable, "-c",
         "from phonotheque.catalogue import bulk; "
         f"c = bulk.open_bulk({str(ws.root)!r}); "
         "q = \"SELECT current_setting('enable_progress_bar')\"; "
         "print(c.execute(q).fetchone()[0], c.cursor().execute(q).fetchone()[0])"],
        capture_output=True, cwd=REPO, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_converted_workspace_does_not_read_its_inputs_again(ws: Workspace) -> None:
    """The inputs' checkpoints come along: after `phono init --engine duckdb` on an ingested
    workspace, ingesting the same files again skips them (before, every input was read
    again from its first line: hours at 100 M tracks, for nothing) and publish's built_at,
    which reads the newest checkpoint, does not move."""
    from phonotheque.ingest import ingest
    from tests.conftest import DATA

    inputs = [DATA / "picard" / "ws_data"]
    first = ingest(ws, "musicbrainz", inputs)
    assert first.read > 0 and all(s.status == "read" for s in first.sources)
    with sqlite3.connect(ws.catalogue) as conn:
        want = sorted(conn.execute("SELECT * FROM ingest_checkpoint").fetchall())
    Workspace.create(ws.root, engine="duckdb")
    again = ingest(ws, "musicbrainz", inputs)
    assert [s.status for s in again.sources] == ["skipped"] * len(first.sources)
    assert again.read == 0
    con = bulk.open_bulk(ws.root, readonly=True)
    try:
        got = sorted(tuple(r) for r in con.execute(
            'SELECT source, kind, size, mtime_ns, "offset", line, done, updated_at '
            "FROM ingest_checkpoint").fetchall())
    finally:
        con.close()
    assert got == want


def test_an_exclusion_refused_as_busy_changes_nothing(tmp_path: Path) -> None:
    """`phono exclude add` while another phono run held catalogue.duckdb exited 7 (busy,
    "wait for it to finish") after it had already put the entry on the list in
    catalogue.sqlite: the track stayed unflagged in catalogue.duckdb, so the next
    `phono release` published it with its file and magnet, and the takedown as listed
    (`exclusion` table) beside it. A busy refusal must change nothing (add or remove)."""
    from importlib import resources

    from phonotheque import columnar_ingest, exclusions

    demo = Path(str(resources.files("phonotheque") / "demo_data"))
    ws = Workspace.create(tmp_path / "w", engine="duckdb")
    columnar_ingest.ingest(ws, "musicbrainz", [demo / "musicbrainz" / "mbdump-sample.jsonl"])
    money = "7fef22bd-76aa-4803-b56b-93a5d6e70662"  # one track of the demo catalogue
    holder = _hold(ws, readonly=False)
    try:
        with ws.store() as store, pytest.raises(BusyError, match="another phono process"):
            exclusions.add(store, "mbid", money, "takedown request")
        with ws.store(readonly=True) as store:
            assert store.exclusions() == []  # not listed: the refusal changed nothing
    finally:
        holder.kill()
        holder.wait()
    with ws.store() as store:  # the re-run the message asks for
        change = exclusions.add(store, "mbid", money, "takedown request")
    assert change.added and change.matched == 1 and change.excluded == 1
    holder = _hold(ws, readonly=False)
    try:
        with ws.store() as store, pytest.raises(BusyError, match="another phono process"):
            exclusions.remove(store, "mbid", money)
        with ws.store(readonly=True) as store:
            assert [e.value for e in store.exclusions()] == [money]  # still listed
    finally:
        holder.kill()
        holder.wait()
