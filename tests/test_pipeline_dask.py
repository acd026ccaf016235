"""`phono build --scheduler`: audio and per-folder pack hashing on a Dask cluster = a local build."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phonotheque.cli.build_cmds import demo_sources
from tests.require import require_module
from tests.shared_builds import EPOCH, PHONO, frozen_demo, frozen_demo_cmd

distributed = require_module("distributed")


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    # workers inherit the environment they start with: the same fixed clock as the builds
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           dashboard_address=None)
    finally:
        if old is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_on_a_cluster_equals_a_local_build(tmp_path: Path, dask_client: Any,
                                                 tmp_path_factory: pytest.TempPathFactory
                                                 ) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    sources = [str(s) for s in demo_sources()]
    # the local build: `phono build --workers 2`, the run's shared one (tests/shared_builds.py)
    assert frozen_demo_cmd(tmp_path)[-len(sources) - 2:] == ["--workers", "2", *sources]
    trees = {"local": _tree(frozen_demo(tmp_path_factory)[0] / "publish")}
    with distributed.get_task_stream(dask_client) as stream:
        ws = tmp_path / "dask"
        run = subprocess.run([PHONO, "build", "-w", str(ws), "--scheduler",
                              dask_client.scheduler.address, *sources],
                             env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode in (0, 10), run.stdout + run.stderr
        trees["dask"] = _tree(ws / "publish")
    assert len(trees["local"]) > 10
    assert trees["dask"] == trees["local"]
    # both stages really ran on the cluster's workers
    ran = {t["key"].split("-")[0] for t in stream.data}
    assert {"run_item", "run_folder_job"} <= ran, ran
