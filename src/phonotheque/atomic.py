"""Atomic file output: build under a temporary name in the same folder, fsync, rename.

The one writer of the toolkit: every output file (archive audio, torrents, charts,
published files) goes through it, so a reader (or a crashed run) never sees half a
file under its final name.

Temporary names are ``.<final name>.tmp-<uuid4 hex>``: a random part, not a process
id, because workers on several hosts write into the same shared folders (NFS,
CephFS) where pids collide. The leading ``.`` and the ``.tmp-`` mark let the next
run sweep what an interrupted one left behind (:func:`sweep_temporaries`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from phonotheque.errors import wrap_os_error

TMP_MARK = ".tmp-"
_NAME_MAX = 255  # bytes per path component on every filesystem we write to
_RANDOM_HEX = 32

# What the sweeper removes: our temporaries, and those of earlier versions (the torrent
# engine's ``.<name>.<pid>.tmp`` and the audio stage's ``.<name>.<pid>.<hex>.part``),
# which workspaces written by them may still hold.
_TEMPORARY = re.compile(r"\..+(?:\.tmp-[0-9a-f]+|\.[0-9]+\.tmp|\.part)\Z", re.DOTALL)


def temporary_name(final: Path) -> Path:
    """A fresh name next to ``final`` under which it is built before the rename.

    Unique across processes and hosts (uuid4); long final names are shortened so
    the temporary still fits in one path component.
    """
    final = Path(final)
    suffix = f"{TMP_MARK}{uuid.uuid4().hex}"
    budget = _NAME_MAX - 1 - len(suffix)
    stem = final.name.encode("utf-8", "surrogateescape")[:budget].decode("utf-8", "ignore")
    return final.with_name(f".{stem}{suffix}")


def is_temporary(name: str) -> bool:
    """True if a file named ``name`` is an unfinished atomic write (ours or a legacy one)."""
    return _TEMPORARY.match(name) is not None


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
    temporary is removed and ``final`` is left as it was. An ``OSError`` becomes
    our error for a failed write of ``final`` (see :func:`errors.wrap_os_error`).
    """
    with _atomic(final, sync_file=True) as tmp:
        yield tmp


@contextlib.contextmanager
def _atomic(final: Path, *, sync_file: bool) -> Iterator[Path]:
    final = Path(final)
    tmp = temporary_name(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise wrap_os_error(exc, final, writing=True) from exc
    try:
        yield tmp
        move_into_place(tmp, final, sync=sync_file)
    except OSError as exc:
        _remove(tmp)
        raise wrap_os_error(exc, final, writing=True) from exc
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_write(final: Path, mode: str = "wb") -> Iterator[IO[bytes]]:
    """Open a temporary file next to ``final`` for writing; rename it into place on success."""
    with atomic_path(final) as tmp:
        f = open(tmp, mode)  # noqa: SIM115 - closed below, before the rename
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def write_bytes(final: Path, data: bytes, *, skip_if_same: bool = False) -> bool:
    """Atomically replace ``final`` with ``data``; return False if nothing was written.

    With ``skip_if_same``, a ``final`` that already holds ``data`` is left alone
    (its mtime too), so re-publishing unchanged files changes nothing.
    """
    final = Path(final)
    if skip_if_same:
        try:
            if final.is_file() and final.stat().st_size == len(data) and \
                    final.read_bytes() == data:
                return False
        except OSError:
            pass
    with _atomic(final, sync_file=False) as tmp:  # synced here, through the open descriptor
        # os.write on an O_EXCL descriptor: a name is never opened twice, and a write
        # that the OS cuts short is finished by the loop, not silently truncated.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    return True


def place_file(src: Path, final: Path, *, link: bool = True) -> None:
    """Put a copy of ``src`` at ``final`` atomically: a hard link if ``link`` and possible,
    else a byte copy. A ``final`` that already is ``src`` (same inode or same bytes) is kept.
    """
    src, final = Path(src), Path(final)
    try:
        if final.exists() and (os.path.samefile(src, final) or (
            final.stat().st_size == src.stat().st_size and final.read_bytes() == src.read_bytes()
        )):
            return
    except OSError as exc:
        raise wrap_os_error(exc, src) from exc
    with atomic_path(final) as tmp:
        if link:
            try:
                os.link(src, tmp)
                return
            except OSError:
                pass  # another filesystem, or links refused: copy instead
        shutil.copyfile(src, tmp)


def move_into_place(tmp: Path, final: Path, *, sync: bool = True) -> None:
    """Rename a finished temporary (file or folder, see :func:`temporary_name`) to ``final``.

    For output written by a library that wants a path, or whose final name is known
    only once it is built (e.g. named after its hash); whatever was at ``final`` is
    replaced. A file is fsynced first unless ``sync`` is False (already done).
    """
    tmp, final = Path(tmp), Path(final)
    try:
        if sync and tmp.is_file():
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        if tmp.is_dir() and final.is_dir():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except OSError as exc:
        raise wrap_os_error(exc, final, writing=True) from exc


def sweep_temporaries(folder: Path, recursive: bool = False) -> int:
    """Remove what interrupted atomic writes left in ``folder``; return how many.

    Call it only where no other writer is active (at the start of a stage, under
    its lock): it cannot tell a stale temporary from one being written right now.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for dirpath, dirs, files in os.walk(folder):
        for name in [*files, *dirs]:
            if is_temporary(name):
                p = Path(dirpath, name)
                try:
                    _remove(p)
                except OSError as exc:
                    raise wrap_os_error(exc, p, writing=True) from exc
                removed += 1
        if not recursive:
            break
        dirs[:] = [d for d in dirs if not is_temporary(d)]
    return removed


def discard(tmp: Path) -> None:
    """Remove an unfinished temporary (file or folder); nothing if it is not there."""
    _remove(Path(tmp))


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink(missing_ok=True)
    elif p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
