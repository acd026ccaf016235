"""Expensive workspaces built once per test run and shared by every pytest-xdist worker.

A build of the demo encodes real audio: seconds of CPU. tests/test_crash.py's reference
and tests/test_pipeline_dask.py's local build are the same frozen-clock build, and each
xdist worker that ran a test of test_crash built its own reference. :func:`built_once`
makes such a workspace once, under a lock file in the run's shared temporary folder;
tests only read it, or :func:`copy` it before changing anything.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from phonotheque.cli.build_cmds import demo_sources

PHONO = str(Path(__file__).parents[1] / ".venv" / "bin" / "phono")
#: The fixed clock of the frozen builds: 2026-01-01T00:00:00Z.
EPOCH = "1767225600"


def _run_folder(factory: pytest.TempPathFactory) -> Path:
    base = factory.getbasetemp()
    # Under xdist each worker's base folder (popen-gwN) is inside the run's folder.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(factory: pytest.TempPathFactory, name: str,
               make: Callable[[Path], str]) -> tuple[Path, str]:
    """The folder ``name`` made by ``make(folder)`` (which returns its output), made by the
    first worker that asks; the others wait for it. Returns (folder, output)."""
    root = _run_folder(factory) / "shared"
    root.mkdir(exist_ok=True)
    folder, output = root / name, root / f"{name}.out"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not output.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a failed attempt's leftovers
            output.write_text(make(folder), encoding="utf-8")
        return folder, output.read_text(encoding="utf-8")


def copy(workspace: Path, dest: Path) -> Path:
    """A private copy of a shared workspace (its relative ``publish`` link kept a link)."""
    shutil.copytree(workspace, dest, symlinks=True)
    return dest


def frozen_demo_cmd(ws: Path) -> list[str]:
    """`phono build` over the bundled demo with two workers."""
    return [PHONO, "build", "-w", str(ws), "--workers", "2",
            *(str(s) for s in demo_sources())]


def frozen_demo(factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An uninterrupted :func:`frozen_demo_cmd` build with SOURCE_DATE_EPOCH=:data:`EPOCH`,
    shared: (its workspace, its stdout). Read it or :func:`copy` it; never change it."""
    def make(ws: Path) -> str:
        env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
        run = subprocess.run(frozen_demo_cmd(ws), env=env, capture_output=True, text=True)
        assert run.returncode in (0, 10), run.stdout + run.stderr  # 10: the broken file
        return run.stdout
    return built_once(factory, "frozen-demo", make)
