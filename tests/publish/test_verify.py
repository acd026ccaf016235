"""phono verify: every file against the published sha256 and merkle root; problems by path."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.pack.packer import PackOptions
from phonotheque.publish.export import PARQUET_TABLES
from phonotheque.publish.verify import VerifyOptions, verify
from phonotheque.publish.waves import ReleaseOptions, release
from phonotheque.workspace import Workspace
from tests import sigint
from tests.publish.archive import make_archive


@pytest.fixture
def download(ws: Workspace, data: Path, tmp_path: Path) -> Path:
    """A released archive and a 'download' of all its torrents (real copies, not links)."""
    make_archive(ws, data, patch_every=3)
    release(ws, ReleaseOptions(pack_options=PackOptions(max_files=4)))
    dl = tmp_path / "download"
    dl.mkdir()
    for p in ws.torrents.iterdir():
        if p.name.startswith("."):
            continue
        if p.is_dir():
            shutil.copytree(p, dl / p.name, copy_function=shutil.copyfile)
        else:
            shutil.copyfile(p, dl / p.name)  # .torrent files beside their data are ignored
    return dl


def _data_folders(dl: Path) -> list[Path]:
    return sorted(p for p in dl.iterdir() if p.is_dir() and "_data__" in p.name)


def test_clean_download_verifies(ws: Workspace, download: Path) -> None:
    report = verify(download, VerifyOptions(ws.publish))
    assert report.ok, report.problems
    # data folders, AAC metadata files and the database torrent (via its .torrent)
    assert len(report.folders) == 5 + 5 + 1
    assert report.files_checked == report.files_ok == 13 + 5 + 1 + len(PARQUET_TABLES)
    one = _data_folders(download)[0]
    assert verify(one, VerifyOptions(ws.publish)).ok  # DATA_DIR = one torrent's folder


def test_damage_is_named_by_path(ws: Workspace, download: Path) -> None:
    folders = _data_folders(download)
    f0 = sorted(folders[0].iterdir())
    truncated, corrupt = f0[0], f0[1]
    truncated.write_bytes(truncated.read_bytes()[:-10])
    raw = bytearray(corrupt.read_bytes())
    raw[len(raw) // 2] ^= 1
    corrupt.write_bytes(bytes(raw))
    (folders[0] / "notes.txt").write_text("hi")
    missing = sorted(folders[2].iterdir())[0]
    missing.unlink()
    folders[1].rename(download / "my music")
    (download / "stray.bin").write_bytes(b"?")

    report = verify(download, VerifyOptions(ws.publish))
    assert not report.ok
    kinds = {(p.kind, p.path) for p in report.problems}
    rel = lambda p: p.relative_to(download).as_posix()  # noqa: E731
    assert ("truncated", rel(truncated)) in kinds
    assert ("corrupt", rel(corrupt)) in kinds
    assert ("unexpected", rel(folders[0] / "notes.txt")) in kinds
    assert ("missing", rel(missing)) in kinds
    assert ("unexpected", "stray.bin") in kinds
    renamed = [f for f in report.folders if f.renamed]
    assert [(f.found_as, f.torrent) for f in renamed] == [("my music", folders[1].name)]


def test_cli_exit_codes(ws: Workspace, download: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["verify", str(download), "--against", str(ws.publish)])
    assert ok.exit_code == 0, ok.output
    assert "everything matched" in ok.output
    victim = sorted(_data_folders(download)[0].iterdir())[0]
    victim.write_bytes(victim.read_bytes()[::-1])
    bad = runner.invoke(main, ["verify", str(download), "-w", str(ws.root), "--json"])
    assert bad.exit_code == 4
    assert victim.name in bad.output and '"ok": false' in bad.output


def test_merkle_root_is_checked(ws: Workspace, download: Path) -> None:
    db = ws.publish / "metadata.sqlite"
    conn = sqlite3.connect(db)
    path = conn.execute("SELECT path FROM file ORDER BY path LIMIT 1").fetchone()[0]
    conn.execute("UPDATE file SET btv2_root = ? WHERE path = ?", ("00" * 32, path))
    conn.commit()
    conn.close()
    report = verify(download, VerifyOptions(ws.publish))
    assert [(p.kind, p.path.split("/")[-1]) for p in report.problems] == [("root_mismatch", path)]


def test_rebuild_originals(ws: Workspace, download: Path, tmp_path: Path) -> None:
    out = tmp_path / "originals"
    report = verify(download, VerifyOptions(ws.publish, rebuild_originals=True, rebuild_dir=out))
    assert report.ok and report.originals_checked == report.originals_ok == 3
    with ws.store(readonly=True) as store:
        want = {r[0] for r in store.query(
            "SELECT original_sha256 FROM audio_file WHERE patch_path IS NOT NULL")}
    import hashlib
    got = {hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}
    assert got == want
    # a damaged patch: the rebuild fails and says which file
    patch = sorted(download.rglob("*.zstdpatch"))[0]
    raw = bytearray(patch.read_bytes())
    raw[-5] ^= 0xFF
    patch.write_bytes(bytes(raw))
    bad = verify(download, VerifyOptions(ws.publish, rebuild_originals=True))
    assert not bad.ok and bad.originals_ok == 2
    assert any(p.kind == "corrupt" and p.path.endswith(patch.name) for p in bad.problems)


def test_obsolete_folder_is_named(ws: Workspace, download: Path) -> None:
    from phonotheque.model import Exclusion

    with ws.store() as store:
        isrc = store.scalar("SELECT isrc FROM track_isrc ORDER BY track_id LIMIT 1")
        store.add_exclusion(Exclusion("isrc", isrc, "takedown"))
    report_r = release(ws)
    assert report_r.pack is not None
    old, new = report_r.pack.rebuilt[0]
    report = verify(download / old, VerifyOptions(ws.publish))
    assert not report.ok
    assert [(f.obsolete, f.superseded_by) for f in report.folders] == [(True, new)]


def test_nothing_published_here_is_refused(ws: Workspace, tmp_path: Path) -> None:
    from phonotheque.errors import InputError, WorkspaceError

    with pytest.raises(WorkspaceError):
        verify(tmp_path, VerifyOptions(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    ws_pub = ws.publish
    (ws_pub / "x").mkdir()
    with pytest.raises((InputError, WorkspaceError)):
        verify(empty, VerifyOptions(ws_pub))


def test_readable_layout_download_verifies(ws: Workspace, data: Path, tmp_path: Path) -> None:
    make_archive(ws, data, patch_every=3)
    release(ws, ReleaseOptions(pack_options=PackOptions(layout="readable", max_files=100)))
    report = verify(ws.torrents, VerifyOptions(ws.publish, rebuild_originals=True))
    assert report.ok, report.problems
    assert report.originals_ok == 3
    folder = next(p for p in ws.torrents.iterdir() if p.is_dir() and "_data__" in p.name)
    dl = tmp_path / "dl"
    shutil.copytree(folder, dl / "Renamed Album Dump", copy_function=shutil.copyfile)
    bad = verify(dl, VerifyOptions(ws.publish))
    assert [(f.renamed, f.torrent) for f in bad.folders] == [(True, folder.name)]
    assert not bad.problems and not bad.ok


@pytest.mark.parametrize("column,value", [
    ("path", "../../outside.txt"), ("path", "/etc/passwd"), ("path", "a//b"),
])
def test_hostile_published_paths_are_refused(ws: Workspace, download: Path, column: str,
                                             value: str) -> None:
    from phonotheque.errors import InputError

    conn = sqlite3.connect(ws.publish / "metadata.sqlite")
    first = conn.execute("SELECT path FROM file ORDER BY path LIMIT 1").fetchone()[0]
    conn.execute(f"UPDATE file SET {column} = ? WHERE path = ?", (value, first))
    conn.commit()
    conn.close()
    with pytest.raises(InputError, match="unsafe"):
        verify(download, VerifyOptions(ws.publish))


def test_against_a_folder_named_with_uri_characters(ws: Workspace, download: Path,
                                                    tmp_path: Path) -> None:
    """'#', '?' and '%' in the publish path are escaped in the SQLite URI (issue 12 §4)."""
    odd = tmp_path / "pub#x?mode=rwc%41"
    shutil.copytree(ws.publish, odd)
    report = verify(download, VerifyOptions(odd))
    assert report.ok, report.problems
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pub")) == [odd.name]
    r = CliRunner().invoke(main, ["verify", str(download), "--against", str(odd)])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "pub").exists()  # no empty database created beside it


def test_file_row_naming_a_missing_torrent_is_an_integrity_error(
    ws: Workspace, download: Path
) -> None:
    db = ws.publish / "metadata.sqlite"
    with sqlite3.connect(db) as conn:
        tid, path = conn.execute("SELECT torrent_id, path FROM file LIMIT 1").fetchone()
        conn.execute("UPDATE file SET torrent_id = 999999 WHERE path = ? AND torrent_id = ?",
                     (path, tid))
    r = CliRunner().invoke(main, ["verify", str(download), "--against", str(ws.publish)])
    assert r.exit_code == 4, r.output
    assert f"file row {path!r} names torrent 999999" in r.output
    assert "Traceback" not in r.output


def test_workspace_in_a_folder_with_uri_characters(tmp_path: Path, data: Path) -> None:
    from phonotheque.ingest import ingest

    ws = Workspace.create(tmp_path / "w#s?x%20")
    assert ingest(ws, "tags", [data / "beets" / "full.flac"]).added > 0
    with ws.store(readonly=True) as s:
        assert s.scalar("SELECT count(*) FROM source_audio") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w#s?x%20"]


def test_summary_counts_problems_not_files(ws: Workspace, download: Path) -> None:
    """The one-line summary says how many problems the table lists (not 'n-1/n files ok')."""
    folder = _data_folders(download)[0]
    victim, gone = sorted(folder.iterdir())[:2]
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 1
    victim.write_bytes(bytes(raw))
    gone.unlink()
    (folder / "notes.txt").write_text("hi")
    (download / "stray.bin").write_bytes(b"?")
    res = CliRunner().invoke(main, ["verify", str(download), "--against", str(ws.publish)],
                             terminal_width=200)
    assert res.exit_code == 4, res.output
    summary = [line for line in res.output.splitlines() if line.startswith("verify:")]
    assert len(summary) == 1, res.output
    assert "4 problems (1 corrupt, 1 missing, 2 unexpected)" in summary[0]
    assert "files ok" not in summary[0]
    ok_dl = CliRunner().invoke(main, ["verify", str(_data_folders(download)[1]),
                                      "--against", str(ws.publish)], terminal_width=200)
    assert ok_dl.exit_code == 0 and "0 problems" in ok_dl.output, ok_dl.output


# A published database whose torrent table is a view that takes minutes to return
# nothing (a recursive count to 10^9): what a hostile or broken download can hold, and
# a statement only an interruption ends in time.
_ENDLESS_TORRENT_VIEW = (
    "CREATE VIEW torrent AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
    "FROM c WHERE i < 1000000000) SELECT i AS id, 'x' AS name, 'data' AS kind, "
    "0 AS obsolete, NULL AS superseded_by FROM c WHERE i < 0")
_VERIFY_CHILD = (
    "import signal, sys\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # as on a terminal\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from phonotheque.cli import main\n"
    "print('ready', flush=True)\n"
    "main(['verify', sys.argv[1], '--against', sys.argv[2]])\n")


def test_ctrl_c_stops_verify_reading_the_published_database(tmp_path: Path) -> None:
    """`phono verify` read the published database on a plain sqlite3 connection, which
    runs no signal handler during a statement: Ctrl-C during a long one (a downloaded
    database is not trusted) waited for it to end. It must stop within a second, exit
    130 "interrupted", no traceback. In a child process of its own, SIGINT unblocked and
    Python's own handler put back (see tests/test_cli_scripting.py's Ctrl-C test)."""

    pub = tmp_path / "publish"
    pub.mkdir()
    conn = sqlite3.connect(pub / "metadata.sqlite")
    conn.executescript(
        f"{_ENDLESS_TORRENT_VIEW};\n"
        "CREATE TABLE file(torrent_id, path, size, sha256, btv2_root, original_sha256, "
        "patch_path);\n"
        "CREATE TABLE aux_file(torrent_id, path, size, sha256, btv2_root);\n")
    conn.close()
    data = tmp_path / "download"
    data.mkdir()
    rc, err, took = sigint.interrupt_child([_VERIFY_CHILD, str(data), str(pub)])
    sigint.assert_interrupted(rc, err)
    assert took < 5, took


def test_ctrl_c_stops_verify_hashing_large_files(tmp_path: Path) -> None:
    """`phono verify` hashes a torrent's files in a thread pool; on Ctrl-C the pool's exit
    waited for every hash already running to reach its file's end (two 3 GiB files:
    exit 130 1.6-4.6 s after the signal). The hashes stop between two reads: exit 130
    within a second, "interrupted", no traceback. Sparse files: no disk used."""

    pub = tmp_path / "publish"
    pub.mkdir()
    data = tmp_path / "download" / "big"
    data.mkdir(parents=True)
    size = 64 * 2**30  # minutes of hashing on any machine
    conn = sqlite3.connect(pub / "metadata.sqlite")
    conn.executescript(
        "CREATE TABLE torrent(id INTEGER PRIMARY KEY, name, kind, obsolete, superseded_by);\n"
        "CREATE TABLE file(torrent_id, path, size, sha256, btv2_root, original_sha256, "
        "patch_path);\n"
        "CREATE TABLE aux_file(torrent_id, path, size, sha256, btv2_root);\n"
        "INSERT INTO torrent VALUES (1, 'big', 'data', 0, NULL);\n")
    for name in ("a.bin", "b.bin"):
        with open(data / name, "wb") as f:
            f.truncate(size)
        conn.execute("INSERT INTO file VALUES (1, ?, ?, ?, NULL, NULL, NULL)",
                     (name, size, "0" * 64))
    conn.commit()
    conn.close()
    rc, err, took = sigint.interrupt_child(
        [_VERIFY_CHILD, str(data.parent), str(pub)],
        after=1)  # hashing both files
    sigint.assert_interrupted(rc, err)
    assert took < 5, took
