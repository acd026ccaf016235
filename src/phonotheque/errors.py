"""One error hierarchy for the whole toolkit.

Every error says ``<subject>: <problem>`` and keeps the offending value as an
attribute, so the CLI can print it and tests can assert on it. ``OSError`` is
translated where the I/O happens, with the path added (see :func:`wrap_os_error`).
"""

from __future__ import annotations

import errno as _errno
from pathlib import Path


class PhonoError(Exception):
    """Root of every error the library raises on purpose."""

    exit_code = 1

    def __init__(self, subject: object, problem: str) -> None:
        self.subject = subject
        self.problem = problem
        super().__init__(f"{subject}: {problem}")


class InputError(PhonoError):
    """An input (file, dump line, option value) is malformed or unusable."""

    exit_code = 2


class InvalidISRC(InputError):
    """A string is not an ISRC."""


class UnsupportedInput(InputError):
    """We cannot read this kind of input."""


class WorkspaceError(PhonoError):
    """The workspace is missing, not a workspace, or of an unknown schema."""

    exit_code = 3


class DamagedCatalogue(WorkspaceError):
    """A workspace's catalogue file (catalogue.sqlite, catalogue.duckdb) is not a readable
    database of ours: empty, cut short, a damaged block, not a database at all. Exit 3 like
    any file that is not a workspace's, on both engines and every command; a real I/O
    failure (EIO, disk full, a read-only file being written) is a :class:`StorageError`."""


class SchemaTooNew(WorkspaceError):
    """The catalogue was written by a newer phono than this one."""


class IntegrityError(PhonoError):
    """Data does not match what was recorded (hash mismatch, missing file)."""

    exit_code = 4


class StorageError(PhonoError):
    """Writing output failed: disk full, read-only destination, permissions."""

    exit_code = 5


class ToolError(PhonoError):
    """An external tool (ffmpeg, ...) is missing or failed."""

    exit_code = 6


class BusyError(PhonoError):
    """Another phono run holds the workspace (its lock); try again when it has finished."""

    exit_code = 7


class TorrentError(InputError):
    """A torrent file is not valid bencode or not a valid torrent."""


# -- classifying OS and SQLite errors ------------------------------------------
# One table for the whole toolkit (README: exit 2 bad input, 5 storage). The same
# errno means different things depending on the direction of the I/O: a source
# file we may not read is one bad input (reported, the run carries on), while an
# output folder we may not write stops the run like a full disk does.

#: Storage whatever the direction: out of space or quota, file-size limit, read-only mount.
STORAGE_ERRNOS = frozenset({_errno.ENOSPC, _errno.EDQUOT, _errno.EFBIG, _errno.EROFS})
#: About the path itself (missing, not a folder, too long, a loop): always bad input.
PATH_ERRNOS = frozenset({_errno.ENOENT, _errno.ENOTDIR, _errno.EISDIR, _errno.ENAMETOOLONG,
                         _errno.ELOOP, _errno.EEXIST, _errno.ENOTEMPTY})
# Everything else (EACCES, EPERM, EIO, ESTALE, ...) depends on the direction: storage
# when writing, bad input (that one file) when reading.


def os_error_class(errno: int | None, *, writing: bool) -> type[PhonoError]:
    """Which of our errors an ``OSError`` with ``errno`` is (see the table above)."""
    if errno in STORAGE_ERRNOS:
        return StorageError
    if errno in PATH_ERRNOS:
        return InputError
    return StorageError if writing else InputError


def is_storage_error(exc: OSError, *, writing: bool) -> bool:
    """True if ``exc`` should stop the run as a :class:`StorageError`."""
    return os_error_class(exc.errno, writing=writing) is StorageError


def wrap_os_error(exc: OSError, path: Path | str, *, writing: bool = False) -> PhonoError:
    """Translate an ``OSError`` raised while touching ``path`` into our hierarchy.

    ``writing`` says whether ``path`` was being written (an output) or read (an
    input); see :func:`os_error_class` for what each errno becomes.
    """
    reason = exc.strerror or str(exc)
    problem = f"cannot write: {reason}" if writing else reason
    return os_error_class(exc.errno, writing=writing)(path, problem)


# SQLite's primary result codes (the low byte of ``sqlite_errorcode``).
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL = 8, 10, 11, 13
_SQLITE_NOTADB = 26


def sqlite_damage(exc: Exception, path: Path | str) -> DamagedCatalogue | None:
    """A SQLite error saying the database file is damaged (SQLITE_CORRUPT: 'database disk
    image is malformed'; SQLITE_NOTADB: 'file is not a database'), as a
    :class:`DamagedCatalogue` naming ``path``; None for every other error. By SQLite's
    result code, not its message text."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int) or code & 0xFF not in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return None
    return DamagedCatalogue(path, f"not a readable SQLite catalogue: {exc}")


def wrap_sqlite_error(exc: Exception, path: Path | str) -> StorageError | None:
    """A SQLite error meaning the database file cannot be written, as a StorageError.

    Decided by SQLite's result code, not by its message text; None for every other
    error (a bad query, a corrupt file, ...), which the caller handles.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    primary = code & 0xFF
    if primary == _SQLITE_FULL:
        return StorageError(path, "No space left on device (database write failed; nothing "
                                  "half-written was kept)")
    if primary == _SQLITE_READONLY:
        return StorageError(path, "read-only destination: cannot write the database")
    if primary == _SQLITE_IOERR:
        return StorageError(path, f"I/O error writing the database ({exc})")
    return None
