"""Pack with folders built by workers (local processes, a Dask LocalCluster) = pack in-process."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phonotheque.errors import TorrentError
from phonotheque.executors import DaskExecutor, Executor, LocalExecutor
from phonotheque.pack.folder_job import FolderJob, Member, run_folder_job
from phonotheque.pack.packer import PackOptions, pack
from phonotheque.progress import ProgressEvent
from phonotheque.torrent import TorrentOptions
from phonotheque.workspace import Workspace
from tests.publish.archive import make_archive
from tests.publish.helpers import tree_hashes
from tests.require import require_module

distributed = require_module("distributed")


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _damage(ws: Workspace) -> list[str]:
    """One missing file and one changed after the audio stage: both must be rejected."""
    with ws.store(readonly=True) as store:
        paths = [r[0] for r in store.query("SELECT path FROM audio_file ORDER BY id")]
    (ws.root / paths[1]).unlink()
    raw = bytearray((ws.root / paths[5]).read_bytes())
    raw[-1] ^= 0xFF
    (ws.root / paths[5]).write_bytes(bytes(raw))
    return [paths[1], paths[5]]


def _catalogue(ws: Workspace) -> dict[str, list[tuple[object, ...]]]:
    with ws.store(readonly=True) as store:
        return {
            "torrent": [tuple(r) for r in store.query("SELECT * FROM torrent ORDER BY id")],
            "torrent_file": [tuple(r) for r in store.query(
                "SELECT * FROM torrent_file ORDER BY torrent_id, path")],
            "audio_file": [tuple(r) for r in store.query(
                "SELECT id, btv2_root FROM audio_file ORDER BY id")],
            # created_at is the wall clock; id order is the order rejects were recorded
            "reject": [tuple(r) for r in store.query(
                "SELECT id, stage, source, locator, reason FROM reject ORDER BY id")],
        }


def _pack(tmp_path: Path, data: Path, name: str, executor: Executor | None) -> Any:
    ws = Workspace.create(tmp_path / name)
    make_archive(ws, data, patch_every=3)
    bad = _damage(ws)
    report = pack(ws, PackOptions(max_files=3), executor=executor)
    assert {r.source for r in report.rejects} == set(bad)
    with ws.store(readonly=True) as store:
        infohashes = [tuple(r) for r in store.query(
            "SELECT name, infohash_v1, infohash_v2 FROM torrent ORDER BY id")]
    torrent_files = {k: v for k, v in tree_hashes(ws.torrents).items() if k.endswith(".torrent")}
    summary = (report.new_folders, report.rebuilt, report.tracks_packed, report.files_packed,
               report.bytes_packed, [(r.source, r.locator, r.reason) for r in report.rejects])
    return infohashes, torrent_files, tree_hashes(ws.torrents), _catalogue(ws), summary


def test_dask_pack_is_byte_identical_to_inline(tmp_path: Path, data: Path,
                                               dask_client: Any) -> None:
    inline = _pack(tmp_path, data, "inline", None)
    dask = _pack(tmp_path, data, "dask", DaskExecutor(client=dask_client, window=2))
    infohashes, torrent_files, payload, catalogue, summary = inline
    assert len(infohashes) >= 8 and len(torrent_files) >= 8  # data + AAC metadata + art
    assert dask[0] == infohashes
    assert dask[1] == torrent_files
    assert dask[2] == payload
    assert dask[3] == catalogue
    assert dask[4] == summary


def test_local_process_pool_pack_is_byte_identical_to_inline(tmp_path: Path,
                                                             data: Path) -> None:
    inline = _pack(tmp_path, data, "inline", None)
    with LocalExecutor(2) as ex:
        assert _pack(tmp_path, data, "local", ex) == inline


def test_worker_errors_keep_their_type(ws: Workspace, data: Path, dask_client: Any) -> None:
    make_archive(ws, data, n=3)
    # 12345 is not a valid piece length: the worker's TorrentError comes back as one
    with pytest.raises(TorrentError, match="piece length"):
        pack(ws, PackOptions(piece_length=12345), executor=DaskExecutor(client=dask_client))
    # the planned folder stays unbuilt, with no half folder under its final name
    with ws.store(readonly=True) as store:
        assert store.scalar("SELECT count(*) FROM torrent WHERE built = 0") == 1
    assert not [p for p in ws.torrents.iterdir() if p.is_dir()]


def test_job_result_is_small_and_carries_the_torrent(tmp_path: Path, data: Path) -> None:
    """What travels back from a worker: the metainfo and per-member facts, not the payload."""
    root = tmp_path / "root"
    (root / "audio").mkdir(parents=True)
    src = sorted((data / "debian-sounds" / "freedesktop-stereo").glob("*.oga"))[:2]
    members = []
    for i, p in enumerate(src):
        raw = p.read_bytes()
        (root / "audio" / p.name).write_bytes(raw)
        members.append(Member(i + 1, f"audio/{p.name}", f"x/{p.name}", "audio", len(raw),
                              hashlib.sha256(raw).hexdigest()))
    members.append(Member(3, "../outside.oga", "x/outside.oga", "audio", 1, "0" * 64))
    job = FolderJob(7, str(root), "torrents/f", "torrents/f.torrent", tuple(members),
                    TorrentOptions(name="f"))
    result = run_folder_job(job)
    assert result.error is None and result.metainfo is not None
    assert (root / "torrents" / "f.torrent").read_bytes() == result.metainfo
    assert [(d.audio_file_id, d.problem) for d in result.dropped] == [
        (3, "path is not inside the workspace")]
    assert sorted(os.listdir(root / "torrents" / "f" / "x")) == sorted(p.name for p in src)
    assert result.hashed_bytes == 2 * sum(m.size for m in members[:2])


def test_interrupted_distributed_pack_resumes_to_the_same_bytes(tmp_path: Path,
                                                                data: Path) -> None:
    ref = Workspace.create(tmp_path / "ref")
    make_archive(ref, data, patch_every=3)
    pack(ref, PackOptions(max_files=3))

    ws = Workspace.create(tmp_path / "ws")
    make_archive(ws, data, patch_every=3)
    finished = 0

    def stop_after_first_folder(event: ProgressEvent) -> None:
        nonlocal finished
        if event.done > finished:  # a folder's bytes were counted: it is built
            finished += 1
            if finished == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), LocalExecutor(2, window=2) as ex:
        pack(ws, PackOptions(max_files=3), progress=stop_after_first_folder, executor=ex)
    with ws.store(readonly=True) as store:
        built = store.scalar("SELECT count(*) FROM torrent WHERE kind = 'data' AND built = 1")
        planned = store.scalar("SELECT count(*) FROM torrent WHERE kind = 'data' AND built = 0")
    assert built == 1 and planned >= 2
    # a leftover of a worker killed mid-folder: swept, and the folder rebuilt
    (ws.torrents / ".phonotheque_leftover.tmp-99999").mkdir()
    (ws.torrents / ".phonotheque_leftover.tmp-99999" / "half.oga").write_bytes(b"x")
    with LocalExecutor(2) as ex:
        resumed = pack(ws, PackOptions(max_files=3), executor=ex)
    assert resumed.resumed and len(resumed.new_folders) == planned
    assert tree_hashes(ws.torrents) == tree_hashes(ref.torrents)
