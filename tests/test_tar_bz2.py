"""``.tar.bz2`` dumps (MusicBrainz publishes ``mbdump.tar.bz2``) decompressed by lbzip2 on
every core, and by Python's bz2 where lbzip2 is not installed: the same tables either way,
and a truncated, corrupt or mislabelled archive still gives a clear reject on both engines
(never an empty read)."""

from __future__ import annotations

import bz2
import os
from pathlib import Path

import psutil
import pytest

from phonotheque.ingest import ingest
from phonotheque.sources import open_tar_on_disk
from phonotheque.workspace import Workspace
from tests.require import require_tool
from tests.test_columnar_mbdump import _archive, _compare, _tables


def _tar_bz2(tmp_path: Path, tables: dict[str, bytes], name: str = "mbdump.tar.bz2") -> Path:
    # bzip2 blocks of 100 kB: a big dump spans several
    return _archive(tmp_path, tables, compress=lambda tar: bz2.compress(tar, 1), filename=name)


@pytest.fixture
def no_lbzip2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PATH without lbzip2 (an empty folder): Python's bz2 reads the archive."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def _members(path: Path) -> tuple[dict[str, bytes], set[str], int]:
    """The archive's members, the names of this process's children while reading it, and
    the disk position at the end."""
    got: dict[str, bytes] = {}
    children: set[str] = set()
    with open_tar_on_disk(path) as (tar, disk):
        for member in tar:
            children |= {c.name() for c in psutil.Process().children()}
            f = tar.extractfile(member)
            if f is not None:
                got[member.name] = f.read()
        end = disk.tell()
    return got, children, end


def test_lbzip2_decompresses_a_tar_bz2(tmp_path: Path) -> None:
    require_tool("lbzip2")
    path = _tar_bz2(tmp_path, _tables())
    got, children, end = _members(path)
    assert "lbzip2" in children  # a process of its own, on every core
    assert got["mbdump/recording"] == _tables()["recording"] and len(got) == 9
    assert end == path.stat().st_size  # progress: the child's offset in the file


def test_without_lbzip2_python_reads_the_same(tmp_path: Path, no_lbzip2: None) -> None:
    path = _tar_bz2(tmp_path, _tables())
    got, children, end = _members(path)
    assert "lbzip2" not in children
    assert got["mbdump/recording"] == _tables()["recording"] and len(got) == 9
    assert 0 < end <= path.stat().st_size


def test_a_tar_bz2_dump_gives_the_folder_s_tables_on_both_engines(tmp_path: Path) -> None:
    require_tool("lbzip2")
    got = _compare(tmp_path, _tar_bz2(tmp_path, _tables()))  # row path == columnar path
    assert got["track"] and got["track_isrc"]
    assert not any("archive" in r[3] for r in got["reject"])


def _broken(tmp_path: Path, how: str) -> Path:
    tables = _tables()
    tables["track"] = tables["track"] * 2000  # several bzip2 blocks
    path = _tar_bz2(tmp_path, tables, f"{how}.tar.bz2")
    data = path.read_bytes()
    if how == "truncated":
        data = data[: len(data) * 3 // 4]
    elif how == "corrupt":
        data = data[: len(data) // 2] + bytes(5000) + data[len(data) // 2 + 5000:]
    else:  # bzip2's magic bytes, then something else
        data = b"BZh9" + os.urandom(4000)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("how", ["truncated", "corrupt", "not bzip2"])
@pytest.mark.parametrize("tool", ["lbzip2", "python"])
def test_a_broken_tar_bz2_is_a_clear_reject_on_both_engines(
        tmp_path: Path, request: pytest.FixtureRequest, how: str, tool: str) -> None:
    if tool == "lbzip2":
        require_tool("lbzip2")
    else:
        request.getfixturevalue("no_lbzip2")
    path = _broken(tmp_path, how)
    for engine in ("sqlite", "duckdb"):
        ws = Workspace.create(tmp_path / engine, engine=engine)
        report = ingest(ws, "mbdump", [path])  # no exception: a reject, the run goes on
        assert report.rejected >= 1 and report.new_rejects >= 1, (engine, report)
        with ws.store(readonly=True) as store:
            reasons = [r.reason for r in store.rejects()]
        assert any(r.startswith("truncated or corrupt archive") for r in reasons), reasons
        if tool == "lbzip2":  # lbzip2's own words
            assert any("bzip2 data of" in r for r in reasons), reasons
