"""Atomic file output: build under a temporary name in the same folder, fsync, rename.

A reader (or a crashed run) therefore never sees half a file under its final
name. Temporary names start with ``.`` and contain ``.tmp-`` so that a re-run
can sweep what an interrupted run left behind (:func:`sweep_temporaries`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from phonotheque.errors import wrap_os_error

TMP_MARK = ".tmp-"


def temporary_name(final: Path) -> Path:
    """Where ``final`` is built before it is renamed into place."""
    return final.with_name(f".{final.name}{TMP_MARK}{os.getpid()}")


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; on success it replaces ``final``.

    The body writes whatever it likes to the temporary path (a file, or a folder:
    e.g. SQLite or tarfile that want a path, not a stream). On error the
    temporary is removed and ``final`` is left as it was.
    """
    final = Path(final)
    tmp = temporary_name(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove(tmp)
    except OSError as exc:
        raise wrap_os_error(exc, final) from exc
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        if tmp.is_dir() and final.is_dir():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except OSError as exc:
        _remove(tmp)
        raise wrap_os_error(exc, final) from exc
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_write(final: Path, mode: str = "wb") -> Iterator[IO[bytes]]:
    """Open a temporary file next to ``final`` for writing; rename it into place on success."""
    with atomic_path(final) as tmp:
        try:
            f = open(tmp, mode)  # noqa: SIM115 - closed below, before the rename
        except OSError as exc:
            raise wrap_os_error(exc, final) from exc
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def write_bytes(final: Path, data: bytes) -> None:
    """Atomically replace ``final`` with ``data``; skips the write if it already holds it."""
    final = Path(final)
    try:
        if final.is_file() and final.stat().st_size == len(data) and final.read_bytes() == data:
            return
    except OSError:
        pass
    with atomic_write(final) as f:
        f.write(data)


def sweep_temporaries(folder: Path, recursive: bool = False) -> int:
    """Remove what interrupted atomic writes left in ``folder``; return how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    # Ours (".name.tmp-PID") and the torrent engine's (".name.PID.tmp").
    patterns = [f".*{TMP_MARK}*", ".*.tmp"]
    found: set[Path] = set()
    for pattern in patterns:
        found.update(folder.glob(f"**/{pattern}" if recursive else pattern))
    for p in sorted(found, reverse=True):
        _remove(p)
    return len(found)


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink(missing_ok=True)
    elif p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
