"""Executors: the same pure function on the inline, local-pool and Dask implementations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phonotheque.executors import DaskExecutor, InlineExecutor, LocalExecutor, make_executor
from tests.require import require_module


def _square(x: int) -> tuple[int, int]:
    return x, x * x


def _pid(_: int) -> int:
    return os.getpid()


@pytest.mark.parametrize("kind", ["inline", "local"])
def test_map_unordered_all_results(kind: str) -> None:
    ex = InlineExecutor() if kind == "inline" else LocalExecutor(2, window=3)
    with ex:
        got = sorted(ex.map_unordered(_square, range(50)))
    assert got == [(i, i * i) for i in range(50)]


def test_local_pool_uses_other_processes() -> None:
    with LocalExecutor(2) as ex:
        pids = set(ex.map_unordered(_pid, range(20)))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_lazy_consumption() -> None:
    """Only a window of items is pulled ahead: memory stays flat for huge inputs."""
    pulled = []

    def items():  # type: ignore[no-untyped-def]
        for i in range(1000):
            pulled.append(i)
            yield i

    with LocalExecutor(1, window=2) as ex:
        it = ex.map_unordered(_square, items())
        next(it)
        assert len(pulled) <= 4
        it.close()


def test_make_executor() -> None:
    assert isinstance(make_executor(0), InlineExecutor)
    ex = make_executor(1)
    assert isinstance(ex, LocalExecutor) and ex.workers == 1
    ex.close()


@pytest.fixture(scope="module")
def dask_client():  # type: ignore[no-untyped-def]
    distributed = require_module("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_map_unordered(dask_client) -> None:  # type: ignore[no-untyped-def]
    ex = DaskExecutor(client=dask_client, window=3)
    assert ex.workers == 2 and "dask" in ex.description
    assert sorted(ex.map_unordered(_square, range(30))) == [(i, i * i) for i in range(30)]
    assert os.getpid() not in set(ex.map_unordered(_pid, range(6)))
    ex.close()  # does not close a client it did not open
    assert dask_client.status == "running"


def test_dask_audio_stage_matches_inline(dask_client, tmp_path: Path, data: Path) -> None:  # type: ignore[no-untyped-def]
    from phonotheque.audio import AudioOptions, run_audio
    from phonotheque.workspace import Workspace

    from .audio.conftest import Entry, add_tracks

    sounds = data / "debian-sounds" / "freedesktop-stereo"
    names = ["bell.oga", "complete.oga", "message.oga", "dialog-warning.oga"]
    results = []
    for mode in ("inline", "dask"):
        ws = Workspace.create(tmp_path / mode)
        add_tracks(ws, [Entry(sounds / n, "original" if i == 0 else "reencode")
                        for i, n in enumerate(names)]
                   + [Entry(data / "mutagen" / "too-short.mp3")])
        ex = InlineExecutor() if mode == "inline" else DaskExecutor(client=dask_client)
        report = run_audio(ws, AudioOptions(), ex)
        assert report.succeeded == len(names) and report.errors["undecodable"] == 1
        with ws.store(readonly=True) as store:
            results.append([tuple(r) for r in store.query(
                "SELECT track_id, tier, path, sha256, original_sha256, size FROM audio_file "
                "ORDER BY track_id")])
    assert results[0] == results[1]


def _die(x: int) -> int:
    if x == 3:
        os._exit(1)  # a worker killed mid-item (OOM killer, SIGKILL)
    return x


def test_dead_worker_is_a_clear_error() -> None:
    from phonotheque.errors import PhonoError

    with LocalExecutor(2) as ex, pytest.raises(PhonoError, match="worker process died"):
        list(ex.map_unordered(_die, range(10)))
