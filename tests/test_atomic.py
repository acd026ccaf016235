"""The one atomic writer and its sweeper (phonotheque.atomic)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phonotheque import atomic
from phonotheque.errors import InputError

# Writes half a file through the atomic writer, says so, then waits to be killed.
_HALF_WRITER = """
import sys, time
from pathlib import Path
from phonotheque.atomic import atomic_write
final, ready = Path(sys.argv[1]), Path(sys.argv[2])
with atomic_write(final) as f:
    f.write(b"new" * 300_000)
    f.flush()
    ready.touch()
    time.sleep(120)
    f.write(b"end")
"""


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if atomic.is_temporary(p.name)]


@pytest.mark.parametrize("existing", [None, b"old content"])
def test_sigkill_mid_write_leaves_no_partial_file(tmp_path: Path, existing: bytes | None) -> None:
    final = tmp_path / "out" / "result.bin"
    if existing is not None:
        final.parent.mkdir()
        final.write_bytes(existing)
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", _HALF_WRITER, str(final), str(ready)],
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ready.exists(), proc.stderr.read() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL  # the kill landed, mid-write
    # Half a file was written, but only under a temporary name.
    (tmp,) = _temporaries(final.parent)
    assert tmp.stat().st_size == 900_000
    if existing is None:
        assert not final.exists()
    else:
        assert final.read_bytes() == existing
    assert atomic.sweep_temporaries(final.parent) == 1
    assert _temporaries(tmp_path) == []
    assert (final.read_bytes() if final.exists() else None) == existing


def test_temporary_names_are_unique_within_one_process(tmp_path: Path) -> None:
    """A pid is shared by every writer of one process and repeats across hosts: not unique."""
    final = tmp_path / "a.torrent"
    names = {atomic.temporary_name(final) for _ in range(100)}
    assert len(names) == 100
    for name in names:
        assert name.parent == tmp_path and name.name.startswith(".a.torrent.tmp-")
        assert atomic.is_temporary(name.name)


def test_temporary_name_of_a_long_name_fits_one_component(tmp_path: Path) -> None:
    final = tmp_path / ("é" * 120 + ".torrent")  # 248 bytes in UTF-8
    tmp = atomic.temporary_name(final)
    assert len(tmp.name.encode()) <= 255
    atomic.write_bytes(final, b"data")
    assert final.read_bytes() == b"data" and _temporaries(tmp_path) == []


@pytest.mark.parametrize("name,temporary", [
    (".a.flac.tmp-0123456789abcdef0123456789abcdef", True),
    (".a.flac.tmp-12345", True),                 # earlier versions: pid
    (".a.torrent.12345.tmp", True),              # earlier torrent engine
    (".abc.opus.123.deadbeef.part", True),       # earlier audio stage
    ("a.flac.tmp-1234", False),                  # not hidden: never ours
    (".lock", False),
    (".write-test", False),
    ("notes.tmp", False),
    (".hidden.tmp-nothex", False),
])
def test_is_temporary(name: str, temporary: bool) -> None:
    assert atomic.is_temporary(name) is temporary


def test_sweep_removes_files_and_folders_recursively_only_when_asked(tmp_path: Path) -> None:
    keep = tmp_path / "a" / "kept.opus"
    keep.parent.mkdir()
    keep.write_bytes(b"x")
    (tmp_path / ".top.tmp-abc").write_bytes(b"x")
    (tmp_path / "a" / ".deep.opus.1.ff.part").write_bytes(b"x")
    folder = tmp_path / ".band.tmp-99999"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / ".inner.tmp-1").write_bytes(b"x")
    assert atomic.sweep_temporaries(tmp_path) == 2  # the top file and the folder
    assert (tmp_path / "a" / ".deep.opus.1.ff.part").exists()
    assert atomic.sweep_temporaries(tmp_path, recursive=True) == 1
    assert _temporaries(tmp_path) == [] and keep.read_bytes() == b"x"


def test_write_bytes_replaces_and_can_skip_identical_content(tmp_path: Path) -> None:
    final = tmp_path / "sub" / "index.json"
    assert atomic.write_bytes(final, b"one")
    assert atomic.write_bytes(final, b"two") and final.read_bytes() == b"two"
    before = final.stat().st_mtime_ns
    assert atomic.write_bytes(final, b"two", skip_if_same=True) is False
    assert final.stat().st_mtime_ns == before
    assert atomic.write_bytes(final, b"three", skip_if_same=True)
    assert final.read_bytes() == b"three" and _temporaries(tmp_path) == []


def test_place_file_links_or_copies_atomically(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    linked, copied = tmp_path / "out" / "linked.bin", tmp_path / "out" / "copied.bin"
    atomic.place_file(src, linked)
    atomic.place_file(src, copied, link=False)
    assert os.path.samefile(src, linked) and not os.path.samefile(src, copied)
    assert copied.read_bytes() == b"payload"
    atomic.place_file(src, linked)  # already there: kept
    assert os.path.samefile(src, linked) and _temporaries(tmp_path) == []


def test_failed_body_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    final = tmp_path / "f.txt"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic.atomic_write(final) as f:
        f.write(b"new")
        raise RuntimeError("boom")
    assert final.read_bytes() == b"old" and _temporaries(tmp_path) == []


def test_writing_into_a_file_where_a_folder_should_be_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(InputError) as exc:  # ENOTDIR/EEXIST: about the path, not storage
        atomic.write_bytes(tmp_path / "file" / "out.bin", b"data")
    assert exc.value.exit_code == 2
