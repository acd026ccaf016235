"""One classifier for OSError and SQLite errors (errors.py), used by every writer and the CLI.

README's exit codes: 2 bad input, 5 storage. An errno that means "no room" or "read-only"
is storage whatever we were doing; one about the path itself is bad input; the rest
(permissions, I/O errors) is storage when writing an output and bad input when
reading a source.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from phonotheque.atomic import is_temporary, write_bytes
from phonotheque.cli._common import handle_errors
from phonotheque.errors import (
    InputError,
    PhonoError,
    StorageError,
    wrap_os_error,
    wrap_sqlite_error,
)
from tests.require import require_root, require_tmpfs

from .os_helpers import as_nobody, umount

S, I = StorageError, InputError  # noqa: E741


@pytest.mark.parametrize("code,when_reading,when_writing", [
    # no room, or a read-only mount: storage in both directions
    (errno.ENOSPC, S, S),
    (errno.EDQUOT, S, S),
    (errno.EFBIG, S, S),
    (errno.EROFS, S, S),
    # permissions: a source we may not read is one bad input; an output folder we
    # may not write stops the run
    (errno.EACCES, I, S),
    (errno.EPERM, I, S),
    # the device failed: that one source is unreadable / the output cannot be written
    (errno.EIO, I, S),
    (errno.ESTALE, I, S),
    # about the path itself: always bad input
    (errno.ENOENT, I, I),
    (errno.ENOTDIR, I, I),
    (errno.EISDIR, I, I),
    (errno.ENAMETOOLONG, I, I),
    (errno.ELOOP, I, I),
])
def test_errno_classes(code: int, when_reading: type[PhonoError],
                       when_writing: type[PhonoError]) -> None:
    exc = OSError(code, os.strerror(code))
    read = wrap_os_error(exc, "/some/source")
    write = wrap_os_error(exc, "/some/output", writing=True)
    assert type(read) is when_reading and type(write) is when_writing
    assert read.exit_code == (5 if when_reading is S else 2)
    assert write.exit_code == (5 if when_writing is S else 2)
    assert str(read) == f"/some/source: {os.strerror(code)}"
    assert str(write) == f"/some/output: cannot write: {os.strerror(code)}"


def _as_nobody(tmp_path: Path, fn: Callable[[], object]) -> object:
    """``fn``'s result, or its error's (class, exit code, message), run as 'nobody'."""
    require_root("to drop privileges")
    tmp_path.chmod(0o755)

    def run() -> object:
        try:
            return fn()
        except PhonoError as exc:
            return (type(exc).__name__, exc.exit_code, str(exc))

    return as_nobody(run)


def test_real_eacces_writing_an_output_is_storage(tmp_path: Path) -> None:
    """The same EACCES was exit 2 through atomic.py and 5 through the audio writer."""
    out = tmp_path / "root-owned"
    out.mkdir(mode=0o755)
    got = _as_nobody(tmp_path, lambda: write_bytes(out / "x.bin", b"data"))
    assert got == ("StorageError", 5, f"{out / 'x.bin'}: cannot write: Permission denied")
    assert not [p for p in out.iterdir() if is_temporary(p.name)]


def test_real_eacces_reading_a_source_is_bad_input(tmp_path: Path) -> None:
    from phonotheque.audio.reconstruct import rebuild

    secret = tmp_path / "archive.flac"
    secret.write_bytes(b"x")
    secret.chmod(0)
    got = _as_nobody(tmp_path, lambda: rebuild(secret, tmp_path / "p", tmp_path / "o"))
    assert got == ("InputError", 2, f"{secret}: Permission denied")


def test_real_enoent_is_bad_input(tmp_path: Path) -> None:
    from phonotheque.audio.reconstruct import rebuild

    with pytest.raises(InputError, match="No such file"):
        rebuild(tmp_path / "missing.flac", tmp_path / "p", tmp_path / "o")


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    yield require_tmpfs(mnt, "64k")
    umount(mnt)


def test_real_enospc_and_erofs_are_storage(small_tmpfs: Path) -> None:
    with pytest.raises(StorageError, match="No space left on device") as full:
        write_bytes(small_tmpfs / "big.bin", b"x" * 1_000_000)
    assert full.value.exit_code == 5
    assert list(small_tmpfs.iterdir()) == []  # neither the final name nor a temporary
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    with pytest.raises(StorageError, match="Read-only file system"):
        write_bytes(small_tmpfs / "small.bin", b"x")


def test_sqlite_errors_by_result_code(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.commit()
    conn.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as full:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    conn.close()
    storage = wrap_sqlite_error(full.value, db)
    assert isinstance(storage, StorageError) and "No space left on device" in str(storage)

    ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as readonly:
        ro.execute("INSERT INTO t VALUES (1)")
    ro.close()
    storage = wrap_sqlite_error(readonly.value, db)
    assert isinstance(storage, StorageError) and "read-only" in str(storage)

    with pytest.raises(sqlite3.OperationalError) as bad_sql:
        sqlite3.connect(":memory:").execute("SELECT * FROM nowhere")
    assert wrap_sqlite_error(bad_sql.value, db) is None
    assert wrap_sqlite_error(ValueError("database or disk is full"), db) is None


@pytest.mark.parametrize("code,exit_code", [
    (errno.EACCES, 5), (errno.ENOSPC, 5), (errno.EIO, 5), (errno.ENOENT, 2),
])
def test_cli_maps_an_escaped_oserror_with_the_same_table(code: int, exit_code: int) -> None:
    @click.command()
    @handle_errors
    def cmd() -> None:
        raise OSError(code, os.strerror(code), "/out/file")

    result = CliRunner().invoke(cmd, [])
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert os.strerror(code) in result.output
