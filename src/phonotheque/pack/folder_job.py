"""Building one data folder: a pure, picklable job that any worker can run.

The coordinator (:mod:`.folders`) turns each planned folder into a
:class:`FolderJob` — absolute workspace root, folder and ``.torrent`` paths, the
members with what the catalogue expects of them, the torrent options — and
:func:`build_folder` does all the file work: hard-link (or copy) the members
into a temporary folder, re-check their SHA-256, drop bad members, hash the
torrent, rename the folder into place and write the ``.torrent`` atomically. It
never touches the catalogue; the coordinator records the :class:`FolderResult`.

So on a Dask cluster each folder (up to 100 GB) is read by a worker next to the
storage, and only the small result travels back. Workers must see the workspace
at the same absolute path as the coordinator (shared storage).

A worker killed mid-folder leaves only a temporary (``.<name>.tmp-<uuid>``, see
:mod:`phonotheque.atomic`), which the next ``pack`` sweeps before it rebuilds the
folder (it is still planned-but-unbuilt).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from phonotheque import errors
from phonotheque.atomic import atomic_path, write_bytes
from phonotheque.errors import InputError, PhonoError, wrap_os_error
from phonotheque.pack.steps_common import link, sha256_file
from phonotheque.torrent import TorrentOptions, create_torrent


@dataclass(frozen=True, slots=True)
class Member:
    """One file of a folder, as the catalogue knows it."""

    audio_file_id: int
    src: str  # path of the archive file, relative to the workspace root
    dst: str  # path inside the folder ("/"-separated)
    role: str  # "audio" or "patch"
    size: int  # expected size (audio; a patch's is measured)
    sha256: str | None  # expected digest (audio; a patch's is measured)


@dataclass(frozen=True, slots=True)
class FolderJob:
    torrent_id: int
    root: str  # absolute workspace root
    data_path: str  # the folder, relative to root
    torrent_path: str  # its .torrent, relative to root
    members: tuple[Member, ...]
    torrent: TorrentOptions
    check_sha256: bool = True
    workers: int | None = None  # linking/checking threads; None: up to 8 (the worker's cores)


@dataclass(frozen=True, slots=True)
class Dropped:
    """A member left out of the folder (with its patch or audio file)."""

    audio_file_id: int
    src: str
    problem: str


@dataclass(slots=True)
class FolderResult:
    torrent_id: int
    metainfo: bytes | None = None  # the .torrent written; None: no member was usable
    dropped: list[Dropped] = field(default_factory=list)  # one per bad member, member order
    patch_hashes: dict[str, tuple[str, int]] = field(default_factory=dict)  # dst -> (sha256, size)
    copied: int = 0  # members copied because hard links were impossible
    hashed_bytes: int = 0  # bytes read (sha256 check and torrent hashing)
    # a PhonoError raised by the job, as (class name, subject, problem): exceptions
    # do not all survive pickling, and Dask would wrap them anyway
    error: tuple[str, str, str] | None = None

    @property
    def dropped_ids(self) -> set[int]:
        return {d.audio_file_id for d in self.dropped}

    def raise_error(self) -> None:
        if self.error is None:
            return
        cls = getattr(errors, self.error[0], None)
        if not (isinstance(cls, type) and issubclass(cls, PhonoError)):
            cls = InputError
        raise cls(self.error[1], self.error[2])


ByteProgress = Callable[[int], object]


def run_folder_job(job: FolderJob) -> FolderResult:
    """Executor entry point: :func:`build_folder` without progress; errors come back in the result."""
    try:
        return build_folder(job, None)
    except PhonoError as exc:
        return FolderResult(job.torrent_id, error=(type(exc).__name__, str(exc.subject),
                                                   exc.problem))


def build_folder(job: FolderJob, progress: ByteProgress | None = None) -> FolderResult:
    """Build ``job``'s folder and ``.torrent``; ``progress`` gets bytes read as they are."""
    result = FolderResult(job.torrent_id)
    _build(job, result, progress)
    return result


def _build(job: FolderJob, result: FolderResult, progress: ByteProgress | None) -> None:
    root = Path(job.root)
    final = root / job.data_path

    lock = threading.Lock()

    def count(n: int) -> None:  # called from the linking and hashing threads
        with lock:
            result.hashed_bytes += n
        if progress is not None:
            progress(n)

    with atomic_path(final) as tmp:
        tmp.mkdir()

        def place(m: Member) -> tuple[Member, str | None, bool]:
            parts = Path(m.src).parts
            if not m.src or Path(m.src).is_absolute() or ".." in parts or not parts:
                # The catalogue says files live under the workspace; anything else
                # would put a file from elsewhere on the machine into a torrent.
                return m, "path is not inside the workspace", False
            src = root / m.src
            try:
                size = src.stat().st_size
            except OSError as exc:
                return m, f"{m.role} file unreadable: {exc.strerror or exc}", False
            if m.role == "audio" and size != m.size:
                return m, f"size {size} differs from the catalogue's {m.size}", False
            dst = tmp.joinpath(*m.dst.split("/"))
            try:
                was_copied = link(src, dst)
            except OSError as exc:
                raise wrap_os_error(exc, dst, writing=True) from exc
            if job.check_sha256 or m.role == "patch":
                digest = sha256_file(dst, count if m.role == "audio" else None)
                if m.role == "audio" and digest != m.sha256:
                    dst.unlink()
                    return m, ("content differs from the catalogue's sha256 "
                               "(changed after the audio stage)"), False
                if m.role == "patch":
                    result.patch_hashes[m.dst] = (digest, size)
            return m, None, was_copied

        threads = job.workers or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for m, problem, was_copied in pool.map(place, job.members):  # in member order
                result.copied += was_copied
                if problem is not None:
                    result.dropped.append(Dropped(m.audio_file_id, m.src, problem))
        # A file and its patch travel together: drop both when either is bad.
        gone = result.dropped_ids
        for m in job.members:
            if m.audio_file_id in gone:
                tmp.joinpath(*m.dst.split("/")).unlink(missing_ok=True)
        if any(m.audio_file_id not in gone for m in job.members):
            info = create_torrent(tmp, job.torrent, progress=count)
            write_bytes(root / job.torrent_path, info.metainfo)
            result.metainfo = info.metainfo
    if result.metainfo is None:
        shutil.rmtree(final, ignore_errors=True)
