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


class TorrentError(InputError):
    """A torrent file is not valid bencode or not a valid torrent."""


def wrap_os_error(exc: OSError, path: Path | str) -> PhonoError:
    """Translate an ``OSError`` raised while touching ``path`` into our hierarchy.

    Out-of-space, read-only and permission errors on *writes* are storage problems
    that stop a run; everything else is an input problem about that one path.
    """
    reason = exc.strerror or str(exc)
    if exc.errno in (_errno.ENOSPC, _errno.EROFS, _errno.EDQUOT):
        return StorageError(path, reason)
    return InputError(path, reason)
