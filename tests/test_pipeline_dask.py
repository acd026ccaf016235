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

distributed = require_module("distributed")

PHONO = str(Path(__file__).parents[1] / ".venv" / "bin" / "phono")
EPOCH = "1767225600"


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


def test_build_on_a_cluster_equals_a_local_build(tmp_path: Path, dask_client: Any) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    sources = [str(s) for s in demo_sources()]
    trees = {}
    with distributed.get_task_stream(dask_client) as stream:
        for name, extra in (("local", ["--workers", "2"]),
                            ("dask", ["--scheduler", dask_client.scheduler.address])):
            ws = tmp_path / name
            run = subprocess.run([PHONO, "build", "-w", str(ws), *extra, *sources],
                                 env=env, capture_output=True, text=True, timeout=120)
            assert run.returncode in (0, 10), run.stdout + run.stderr
            trees[name] = _tree(ws / "publish")
    assert len(trees["local"]) > 10
    assert trees["dask"] == trees["local"]
    # both stages really ran on the cluster's workers
    ran = {t["key"].split("-")[0] for t in stream.data}
    assert {"run_item", "run_folder_job"} <= ran, ran
