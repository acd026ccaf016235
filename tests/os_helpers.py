"""Real operating-system conditions for tests: a small tmpfs, an unprivileged child."""

from __future__ import annotations

import os
import pickle
import subprocess
from collections.abc import Callable
from pathlib import Path


def mount_tmpfs(where: Path, size: str) -> bool:
    """Mount a tmpfs of ``size`` at ``where`` (root only); False where mounting is denied."""
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       capture_output=True, check=False)
    return r.returncode == 0


def umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def as_nobody(fn: Callable[[], object]) -> object:
    """Run ``fn`` in a forked child that dropped root to 'nobody'; return what it returned.

    Root reads and writes everything, so permissions only apply once dropped. (A fresh
    interpreter cannot run as nobody here: Python lives under /root.) Whatever ``fn``
    needs must be imported before; it must return something picklable.
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(wfd, pickle.dumps(fn()))
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        payload = f.read()
    os.waitpid(pid, 0)
    return pickle.loads(payload)
