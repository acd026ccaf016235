"""What a test needs from the machine: skipped where missing, a failure under CI=true.

A developer without chromium or aria2c still gets a useful local run; CI must not
go green on a machine that silently skipped the real-client, browser or
filesystem tests, so there the same absence fails the test and names what to install.
Every test that needs an external tool, an optional module, root or a tmpfs asks here.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

from .os_helpers import mount_tmpfs

_HOW = "./scripts/setup installs it"


def under_ci() -> bool:
    return os.environ.get("CI") == "true"


def missing(what: str) -> NoReturn:
    """Skip the running test because ``what`` is missing; under CI=true, fail it."""
    if under_ci():
        pytest.fail(f"{what} (required under CI=true)", pytrace=False)
    pytest.skip(what, allow_module_level=True)


def require_tool(name: str) -> str:
    """The path of the executable ``name`` (a name on PATH or an absolute path)."""
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed ({_HOW})")
    return found


def require_module(name: str) -> ModuleType:
    """Import ``name`` (a pinned dependency or dev extra), like pytest.importorskip."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"Python module {name} cannot be imported ({exc}; {_HOW})")


def require_root(why: str) -> None:
    """Only root can mount filesystems or drop to another user (CI runs as root)."""
    if os.geteuid() != 0:
        missing(f"needs root {why}")


def require_tmpfs(where: Path, size: str) -> Path:
    """Mount a tmpfs of ``size`` at ``where``; the caller unmounts (os_helpers.umount)."""
    require_root("to mount a tmpfs")
    if not mount_tmpfs(where, size):
        missing(f"cannot mount a tmpfs at {where}")
    return where
