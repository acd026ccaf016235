"""Atomic output files, stale-temp cleanup, content-addressed paths, quarantine.

Every output is written to a temporary name in its final folder, fsynced, then
renamed; a crash leaves at worst a ``.*.part`` file, which the next run deletes
before starting. Output paths are made from hashes only, so no tag text (however
hostile: ``../``, NUL, 300-byte names, look-alike characters) ever reaches a path.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from pathlib import Path

from phonotheque.atomic import fsync_dir
from phonotheque.errors import InputError, PhonoError, StorageError

TEMP_SUFFIX = ".part"
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM,
                   errno.EIO, errno.EFBIG}


def write_error(exc: OSError, path: Path | str) -> PhonoError:
    """An ``OSError`` raised while *writing* ``path``: storage problems stop the run."""
    reason = exc.strerror or str(exc)
    if exc.errno in _STORAGE_ERRNOS:
        return StorageError(path, f"cannot write: {reason}")
    return InputError(path, f"cannot write: {reason}")


def content_path(root: Path, kind: str, sha256: str, ext: str) -> Path:
    """``root/<kind>/<sha256[:2]>/<sha256>.<ext>``."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256) or not re.fullmatch(r"[a-z0-9]{1,10}", ext):
        raise ValueError(f"bad content address {sha256!r}.{ext!r}")
    return root / kind / sha256[:2] / f"{sha256}.{ext}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``: temp file in the same folder, fsync, rename, fsync folder."""
    folder = path.parent
    tmp = folder / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(folder)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise write_error(exc, path) from exc


def clean_stale_temps(root: Path) -> int:
    """Delete temp files (``.*.part``) left under ``root`` by an interrupted run."""
    removed = 0
    if not root.is_dir():
        return 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                try:
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise write_error(exc, os.path.join(dirpath, name)) from exc
    return removed


def safe_name(text: str, limit: int = 80) -> str:
    """A file-name-safe rendering of ``text``: ASCII letters, digits, ``._-`` only."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "file"
    return name[:limit]


def quarantine(quarantine_dir: Path, track_id: int, source: Path | None, reason: str,
               detail: str) -> Path:
    """Copy ``source`` (if it is a regular file) into quarantine with a reason file.

    Names are ``<track_id>-<safe source name>``; the reason file is
    ``<name>.reason.txt``. Idempotent: a re-run overwrites the same two files.
    """
    base = f"{track_id}-{safe_name(source.name if source else 'no-source')}"
    target = quarantine_dir / base
    text = f"track_id: {track_id}\nsource: {source}\nreason: error_{reason}\ndetail: {detail}\n"
    try:
        quarantine_dir.mkdir(parents=True, exist_ok=True)
        if source is not None and source.is_file() and not target.exists():
            tmp = quarantine_dir / f".{base}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"
            try:
                shutil.copyfile(source, tmp)
                os.replace(tmp, target)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
                    raise
                # an unreadable source cannot be copied: the reason file says why
                text += f"copy: not copied ({exc.strerror or exc})\n"
    except OSError as exc:
        raise write_error(exc, target) from exc
    write_atomic(quarantine_dir / f"{base}.reason.txt", text.encode("utf-8", "replace"))
    return target
