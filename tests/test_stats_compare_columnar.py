"""stats and compare on a columnar workspace run on DuckDB and say what SQLite says.

Each test builds a catalogue in SQLite, converts it (`phono init --engine duckdb`,
ids kept) and then writes stale rows into catalogue.sqlite's bulk tables, as a
columnar ingest leaves them: a figure read from SQLite instead of DuckDB differs.
"""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from phonotheque import exclusions
from phonotheque.cli import main
from phonotheque.compare import compare
from phonotheque.errors import InputError
from phonotheque.ingest import ingest
from phonotheque.model import Listen, Track, TrackISRC
from phonotheque.stats import catalogue_stats
from phonotheque.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
PHONO = str(REPO / ".venv" / "bin" / "phono")
DEMO = Path(str(resources.files("phonotheque") / "demo_data"))
REC = "00000000-0000-4000-8000-0000000000{:02d}"


def _stale(ws: Workspace) -> None:
    with ws.store() as s:
        s.write([Track("stale", "Stale", mbid=REC.format(99)), TrackISRC("stale", "QZZZZ9900001"),
                 Listen("mbid", REC.format(99), 1000, dataset="stale"),
                 Listen("isrc", "QZZZZ9900002", 7, dataset="stale")])


def _columnar(ws: Workspace) -> None:
    Workspace.create(ws.root, engine="duckdb")
    assert ws.engine == "duckdb"
    _stale(ws)


def _phono(*args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([PHONO, *args], capture_output=True, text=True, cwd=REPO)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def _stats(ws: Workspace, *args: str) -> str:
    out = CliRunner().invoke(main, ["stats", "-w", str(ws.root), *args])
    assert out.exit_code == 0, out.output
    return out.output


def _demo_catalogue(root: Path) -> Workspace:
    """The demo's MusicBrainz, mbdump and listens data, an exclusion and a reject."""
    ws = Workspace.create(root)
    ingest(ws, "musicbrainz", [DEMO / "musicbrainz" / "mbdump-sample.jsonl"])
    ingest(ws, "mbdump", [DEMO / "mbdump"])
    ingest(ws, "listens", [DEMO / "listens.csv", DEMO / "listenbrainz-top-recordings.json"])
    bad = root.parent / "bad.csv"
    bad.write_text("isrc,count\nGBAHS1400099,1\nnot-an-isrc,3\n")
    ingest(ws, "listens", [bad])
    with ws.store() as s:
        isrc = s.scalar("SELECT isrc FROM track_isrc ORDER BY isrc LIMIT 1")
        exclusions.add(s, "isrc", isrc, "test takedown")
    return ws


def test_stats_of_the_converted_demo_catalogue_are_the_same_table_and_json(
        tmp_path: Path) -> None:
    ws = _demo_catalogue(tmp_path / "ws")
    before = catalogue_stats(ws)
    assert before.tracks and before.excluded_tracks and before.rejects
    assert before.listen_match.matched and before.listen_match.unmatched
    table, doc = _stats(ws), _stats(ws, "--json")
    _columnar(ws)
    assert catalogue_stats(ws) == before
    assert _stats(ws) == table
    assert _stats(ws, "--json") == doc
    assert orjson.loads(doc)["tracks"] == before.tracks


def test_listen_totals_past_64_bits_saturate_on_duckdb_too(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    with ws.store() as s, s.transaction():
        for i in range(1, 5):
            s.conn.execute("INSERT INTO track(key, title, mbid) VALUES (?, ?, ?)",
                           (REC.format(i), f"t{i}", REC.format(i)))
        tid = {r["key"]: r["id"] for r in s.query("SELECT id, key FROM track")}
        for i, count in ((1, 2**62), (2, 2**62), (3, 2**62), (4, 5)):
            for dataset in ("a", "b"):
                s.conn.execute(
                    "INSERT INTO listens(dataset, key_kind, key, count, track_id) "
                    "VALUES (?, 'mbid', ?, ?, ?)", (dataset, REC.format(i), count,
                                                    tid[REC.format(i)]))
    before = catalogue_stats(ws)
    _columnar(ws)
    after = catalogue_stats(ws)
    assert after.total_listens == 2**63 - 1
    assert after == before
    assert orjson.loads(_stats(ws, "--json"))["total_listens"] == 2**63 - 1


def test_compare_across_engines_gives_the_sqlite_answer(tmp_path: Path) -> None:
    a = _demo_catalogue(tmp_path / "a")
    b = Workspace.create(tmp_path / "b")
    ingest(b, "musicbrainz", [DEMO / "musicbrainz" / "mbdump-sample.jsonl"])
    with b.store() as s:  # B lacks one of A's recordings and has one A lacks
        s.write([Track("extra", "Extra", mbid=REC.format(1)), TrackISRC("extra", "QZZZZ9900003")])
    want = compare(a.root, b.root, sample=3)
    assert want.isrc.only_a and want.isrc.only_b and want.mbid.only_a
    same = compare(a.root, a.root)
    _columnar(a)
    assert compare(a.root, b.root, sample=3) == want  # A columnar, B SQLite
    assert compare(a.catalogue, b.catalogue, sample=3) == want  # its catalogue.sqlite means A
    assert compare(a.root, a.root) == same  # the same columnar catalogue on both sides
    _columnar(b)
    assert compare(a.root, b.root, sample=3) == want  # both columnar
    assert compare(a.columnar, b.root, sample=3) == want
    cli = _phono("compare", "--json", "--sample", "3", str(a.root), str(b.root))
    got = orjson.loads(cli.stdout)
    assert got["isrc"]["only_a"] == want.isrc.only_a
    assert got["mbid"]["sample_only_b"] == want.mbid.sample_only_b



def test_compare_refuses_a_negative_sample_on_either_engine(tmp_path: Path) -> None:
    """`--sample -1` listed every key on SQLite and was a DuckDB traceback (exit 1) once
    a side was columnar: a usage error on both."""
    a = _demo_catalogue(tmp_path / "a")
    b = Workspace.create(tmp_path / "b")
    args = ["compare", "--sample", "-1", str(a.root), str(b.root)]
    outs = [CliRunner().invoke(main, args)]
    _columnar(a)
    outs.append(CliRunner().invoke(main, args))
    for out in outs:
        assert out.exit_code == 2, out.output
        assert "--sample" in out.output
    with pytest.raises(InputError):
        compare(a.root, b.root, sample=-1)


def test_compare_with_a_sqlite_file_that_is_not_a_catalogue_exits_3(tmp_path: Path) -> None:
    """compare takes any .sqlite file: one without the catalogue's tables, or not SQLite
    at all, was a traceback (exit 1) on both engines, also with a columnar side."""
    ws = _demo_catalogue(tmp_path / "ws")
    other = tmp_path / "other.sqlite"
    subprocess.run(["sqlite3", str(other), "CREATE TABLE foo(a)"], check=True)
    text = tmp_path / "text.sqlite"
    text.write_text("not a database\n")
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    for engine in ("sqlite", "duckdb"):
        if engine == "duckdb":
            _columnar(ws)
        for bad in (other, text, empty):
            for args in ((ws.root, bad), (bad, ws.root)):
                out = CliRunner().invoke(main, ["compare", *map(str, args)])
                assert out.exit_code == 3, (engine, bad.name, out.output, out.exception)
                assert bad.name in out.output, out.output


def test_a_truncated_catalogue_duckdb_is_an_error_not_a_traceback_for_every_reader(
        tmp_path: Path) -> None:
    """A catalogue.duckdb cut short (a disk full during a copy, a partial restore) that
    DuckDB still opens failed on the first block past the end a reader read: `phono
    stats`, `ledger`, `compare` and `publish` (its first read of the catalogue) ended in
    a traceback of DuckDB's IOException, exit 1, wherever the file was cut (in the
    schema version's read or in the command's own queries). Now every reader says "not a
    readable DuckDB catalogue" naming the file, exit 3, wherever the cut falls (it was
    exit 5, "DuckDB failed while ...", or exit 2 where DuckDB refused to open it)."""
    ws = _demo_catalogue(tmp_path / "ws")
    _columnar(ws)
    other = _demo_catalogue(tmp_path / "other")
    _columnar(other)
    db = ws.root / "catalogue.duckdb"
    whole = db.read_bytes()
    for share in (0.1, 0.2, 0.4, 0.6, 0.8):
        db.write_bytes(whole[:int(len(whole) * share) // 4096 * 4096])
        for args in (["stats", "-w", str(ws.root)], ["stats", "--json", "-w", str(ws.root)],
                     ["ledger", "-w", str(ws.root)], ["ledger", "--csv", "-w", str(ws.root)],
                     ["ledger", "--json", "-w", str(ws.root)],
                     ["compare", str(ws.root), str(other.root)],
                     ["compare", str(other.root), str(db)],
                     ["publish", "-w", str(ws.root)]):
            out = CliRunner().invoke(main, args)
            # a damaged catalogue: exit 3 naming it, as the SQLite engine (tests/
            # test_damaged_catalogue.py); it was exit 2 or 5 by where the cut fell
            assert out.exit_code == 3, (share, args, out.output, out.exception)
            assert f"{db}: not a readable DuckDB catalogue" in out.output, (share, args,
                                                                            out.output)


def test_compare_refuses_a_columnar_workspace_whose_catalogue_duckdb_is_gone(
        tmp_path: Path) -> None:
    """Every command exits 3 on a columnar workspace whose catalogue.duckdb is missing (or
    a folder where it was): its tracks live there. `phono compare` opens no Workspace,
    read the stale catalogue.sqlite as a SQLite workspace's and exited 0 with its figures
    as the workspace's (counts a user would believe)."""
    ws = _demo_catalogue(tmp_path / "ws")
    _columnar(ws)
    other = _demo_catalogue(tmp_path / "other")
    db = ws.root / "catalogue.duckdb"
    whole = db.read_bytes()
    for gone in ("missing", "a folder"):
        db.unlink()
        if gone == "a folder":
            db.mkdir()
        for args in ([ws.root, other.root], [other.root, ws.root], [ws.catalogue, other.root]):
            out = CliRunner().invoke(main, ["compare", *map(str, args)])
            assert out.exit_code == 3, (gone, args, out.output, out.exception)
            assert "catalogue.duckdb is missing" in out.output, (gone, out.output)
        if gone == "a folder":
            db.rmdir()
        db.write_bytes(whole)
    assert CliRunner().invoke(main, ["compare", str(ws.root), str(other.root)]).exit_code == 0


def test_compare_refuses_a_columnar_catalogue_of_a_newer_schema(tmp_path: Path) -> None:
    """Every reader refuses a catalogue written by a newer phono (exit 3, "newer than this
    phono understands"), and compare does on a SQLite workspace; on a columnar one it
    read on and exited 0, whether catalogue.duckdb's schema version (bulk_meta) or its
    catalogue.sqlite's (user_version) was the newer."""
    import sqlite3

    import duckdb

    other = _demo_catalogue(tmp_path / "other")
    for newer in ("catalogue.duckdb", "catalogue.sqlite"):
        ws = _demo_catalogue(tmp_path / newer)
        _columnar(ws)
        if newer == "catalogue.duckdb":
            con = duckdb.connect(str(ws.columnar))
            con.execute("UPDATE bulk_meta SET value = '999' WHERE key = 'schema_version'")
            con.close()
        else:
            conn = sqlite3.connect(ws.catalogue)
            conn.execute("PRAGMA user_version = 999")
            conn.close()
        for args in ([ws.root, other.root], [other.root, ws.root]):
            out = CliRunner().invoke(main, ["compare", *map(str, args)])
            assert out.exit_code == 3, (newer, args, out.output, out.exception)
            assert f"{ws.root / newer}: " in out.output, out.output
            assert "newer than this phono understands" in out.output, out.output
