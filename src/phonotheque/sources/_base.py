"""What every source shares: the reader interface, its options, and line/archive helpers.

A source turns input files into model records. It never touches SQLite: it
yields :mod:`phonotheque.model` records, :class:`~phonotheque.model.Reject` for
input it refuses, and :class:`~phonotheque.model.Checkpoint` markers that tell
the store how far the records yielded so far reach, so a killed run resumes.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import lzma
import os
import posixpath
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, cast

from phonotheque.errors import InputError, wrap_os_error
from phonotheque.model import Checkpoint, Record, Reject

STAGE = "ingest"

# How often (in input lines) line-oriented readers yield a checkpoint. The store
# keeps the last one per batch, so this only bounds how much a resumed run redoes.
CHECKPOINT_EVERY = 256

KnownFile = Callable[[str, int, int], bool]


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Per-run options a reader may use; each reader ignores what does not concern it."""

    key: str | None = None  # listens: key column (isrc, recording_mbid, track_id)
    count_column: str | None = None  # listens: count column
    dataset: str | None = None  # listens: dataset name (default: the file stem)
    # tags: ``known(path, size, mtime_ns)`` says a file is already in the catalogue
    # unchanged, so it is not opened again.
    known: KnownFile | None = None
    tmp_dir: Path | None = None  # mbdump: where the temporary join database goes


@dataclass(frozen=True, slots=True)
class Input:
    """One unit of input with its identity for checkpoints."""

    path: Path
    source: str  # checkpoint key: the absolute path, printable
    size: int
    mtime_ns: int
    # bytes the progress bar can count for this input (None: unknown, e.g. archives)
    progress_size: int | None = None
    # why it cannot be read (a file of a folder that is a broken link, a loop, a pipe):
    # never opened, its ``file`` reject is all it gives (:func:`unreadable`), on both paths
    problem: str | None = None


class Source(Protocol):
    """A kind of input, registered by name in :data:`phonotheque.sources.SOURCES`."""

    kind: str
    licence: str | None
    # True if :meth:`read` can start at a checkpoint offset; otherwise a partial
    # input is read again from the start, which is safe because upserts are idempotent.
    resumable: bool
    # True if a finished input must be read again anyway, because its size and
    # mtime do not show changes inside it (a folder tree of audio files).
    always_rescan: bool
    # Where ``phono build`` runs this kind among the others (lower first).
    ingest_order: int
    # Records per transaction at most (None: the caller's batch size), for sources
    # whose records are slow to make.
    max_batch: int | None

    def score(self, path: Path, header: bytes) -> int:
        """How sure this source is that it reads ``path`` (0: not at all; highest wins).

        ``header`` is the file's first bytes (empty for a folder), read once for all
        sources, as mutagen's ``score()`` does.
        """
        ...

    def inputs(self, paths: Sequence[Path]) -> list[Input]:
        """Expand the paths the user gave into inputs; raise InputError if one is unusable."""
        ...

    def read(
        self, item: Input, options: ReadOptions, start: int = 0, line: int = 0
    ) -> Iterator[Record]:
        """Yield records, rejects and checkpoints for ``item``, from byte ``start``."""
        ...


# -- helpers ------------------------------------------------------------------


def utf8_path(path: os.PathLike[str] | str) -> bool:
    """Whether ``path``'s text is UTF-8. A Linux file name may hold any byte; Python keeps
    one that is not UTF-8 as a lone surrogate, which DuckDB (SQL text) and Arrow (its path
    argument) cannot take: they are given a file object, or the input goes to a reader
    that can, instead."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(path: str | bytes | os.PathLike[str]) -> str:
    """A path as text SQLite can store and a terminal can show.

    File names on Linux are bytes; names that are not UTF-8 come back from
    ``os.fsdecode`` with lone surrogates, which cannot be encoded. Those bytes
    are shown as ``\\xNN`` escapes instead; control characters are escaped too.
    """
    text = os.fsdecode(path)
    raw = text.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "backslashreplace")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        text = "".join(c if ord(c) >= 32 and ord(c) != 127 else repr(c)[1:-1] for c in text)
    return text


def is_printable_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def file_input(path: Path, *, progress: bool = True) -> Input:
    """An :class:`Input` for one regular file; raises InputError if it is missing or unreadable."""
    try:
        st = path.stat()
    except OSError as exc:
        raise wrap_os_error(exc, printable(path)) from exc
    if not stat.S_ISREG(st.st_mode):
        raise InputError(printable(path), "not a regular file")
    absolute = Path(os.path.abspath(path))
    return Input(
        absolute, printable(absolute), st.st_size, st.st_mtime_ns,
        st.st_size if progress else None,
    )


def expand_files(paths: Sequence[Path], suffixes: tuple[str, ...]) -> list[Input]:
    """Files given directly, plus files with one of ``suffixes`` inside given folders (sorted)."""
    out: list[Input] = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.name.lower().endswith(suffixes))
            inside = [i for i in map(_found_input, found) if i is not None]
            if not inside:
                raise InputError(printable(p), f"no input files ({', '.join(suffixes)}) inside")
            out.extend(inside)
        else:
            out.append(file_input(p))
    return out


def _found_input(path: Path) -> Input | None:
    """The input for a file named like one found in a folder: None for a folder (its
    files are found too); one with its :attr:`Input.problem` for what is not a regular
    file (see :func:`found_entry`), so it is a reject naming it, never skipped silently,
    and a pipe is never opened (it would wait for ever)."""
    try:
        st, problem = found_entry(path)
    except OSError as exc:
        raise wrap_os_error(exc, printable(path)) from exc
    if st is None:
        return None
    if problem is None:
        return file_input(path)
    absolute = Path(os.path.abspath(path))
    return Input(absolute, printable(absolute), st.st_size, st.st_mtime_ns, 0, problem)


def found_entry(path: str | os.PathLike[str]) -> tuple[os.stat_result | None, str | None]:
    """What an entry found in a folder is, for every folder reader (one rule, both engines).

    ``(stat, None)`` for a regular file, a symbolic link to one being that file;
    ``(None, None)`` for a folder that is not a link (the reader walks it); else
    ``(stat, why it is not read)``: a symbolic link to nothing, a loop of links, a
    symbolic link to a folder (not walked: it could lead back up, or to the same files
    twice; give its folder as an input instead), a pipe or a device (never opened: a pipe
    would wait for ever). The stat is the link's own when its target cannot be reached.
    Raises the ``OSError`` of an entry that cannot be looked at for another reason
    (e.g. permission), for the caller to name.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        try:
            link = os.lstat(path)
        except OSError:  # removed meanwhile
            raise exc from None
        if not stat.S_ISLNK(link.st_mode):
            raise
        target = printable(os.readlink(path))
        why = ("a loop of links" if exc.errno == errno.ELOOP
               else "which names no file" if exc.errno in (errno.ENOENT, errno.ENOTDIR)
               else exc.strerror or str(exc))
        return link, f"a symbolic link to {target}, {why}: not read"
    if stat.S_ISREG(st.st_mode):
        return st, None
    if stat.S_ISDIR(st.st_mode):
        if not os.path.islink(path):
            return None, None
        target = printable(os.readlink(path))
        return st, (f"a symbolic link to a folder ({target}): not walked into; give that "
                    "folder as an input to read it")
    return st, "not a regular file (a pipe or device): not read"


def unreadable(item: Input, kind: str) -> Iterator[Record]:
    """What an input with a :attr:`Input.problem` gives: its ``file`` reject, and the
    checkpoint marking it done (a re-run skips it until it changes)."""
    yield reject(item.source, "file", item.problem or "cannot be read")
    yield checkpoint(item, kind, item.size, 0, done=True)


def reject(source: str, locator: str, reason: str, kept: bool = False) -> Reject:
    """A refused input, or with ``kept`` a value dropped from a record that is stored."""
    return Reject(STAGE, source, locator, reason, kept)


def checkpoint(item: Input, kind: str, offset: int, line: int, done: bool = False,
               disk: int | None = None) -> Checkpoint:
    return Checkpoint(
        item.source, kind, offset, done=done, size=item.size, mtime_ns=item.mtime_ns, line=line,
        disk=disk,
    )


# Longest input line read (bytes). A longer line is refused (reject) without
# being held in memory, and reading goes on after it.
MAX_LINE = 64 << 20


def bounded_lines(f: IO[bytes], max_line: int | None = None) -> Iterator[tuple[bytes | None, int]]:
    """Yield ``(raw line, its length)`` from ``f``; ``raw`` is None for a line over ``max_line``.

    ``readline(limit)`` keeps memory bounded by the limit; the rest of an
    overlong line is skipped in 1 MiB steps, so time stays linear in its length.
    """
    limit = MAX_LINE if max_line is None else max_line
    readline = f.readline
    while True:
        raw = readline(limit + 1)
        if not raw:
            return
        if len(raw) <= limit:
            yield raw, len(raw)
            continue
        length = len(raw)
        del raw
        while True:
            rest = readline(1 << 20)
            length += len(rest)
            if not rest or rest.endswith(b"\n"):
                break
        yield None, length


def too_long(length: int) -> str:
    """The reject reason for a line :func:`bounded_lines` refused."""
    return f"line of {length:,} bytes is longer than the limit of {MAX_LINE:,} bytes"


def lines(path: Path, start: int = 0, first_line: int = 0) -> Iterator[tuple[int, int, bytes | None]]:
    """Yield ``(line number, offset after the line, raw line)`` from byte ``start`` on.

    ``raw`` is None for a line longer than :data:`MAX_LINE` (see :func:`bounded_lines`).
    A compressed file (:func:`compressed_suffix`) is decompressed as it is read;
    its offsets count uncompressed bytes, so a resumed read decompresses the
    first ``start`` bytes again and skips them. A file that ends early or is
    corrupt raises :class:`CorruptStream` where it breaks, after the lines before.
    """
    with lines_on_disk(path, start, first_line) as (numbered, _disk):
        yield from numbered


@contextmanager
def lines_on_disk(path: Path, start: int = 0, first_line: int = 0
                  ) -> Iterator[tuple[Iterator[tuple[int, int, bytes | None]], Callable[[], int]]]:
    """:func:`lines`, and a function saying how many bytes of the file on disk have been
    read so far (:func:`disk_position`: a compressed file's progress has no other total)."""
    with open_at(path, start) as f:
        yield _numbered(f, start, first_line), lambda: disk_position(f)


def _numbered(f: IO[bytes], pos: int, n: int) -> Iterator[tuple[int, int, bytes | None]]:
    for raw, length in bounded_lines(f):
        n += 1
        pos += length
        yield n, pos, raw


# Compressed single files (a ``.jsonl.zst``, a ``.csv.gz``), by suffix. Archives
# (``.tar.gz``) are not among them: their readers open them with open_tar_stream.
COMPRESSED_SUFFIXES = (".zst", ".gz", ".bz2", ".xz")


class CorruptStream(InputError):
    """A compressed input ends early (truncated) or does not decompress (corrupt)."""


def compressed_suffix(name: str) -> str | None:
    """The compression suffix of a file name (``.zst``, ``.gz``...), or None."""
    lower = name.lower()
    return next((s for s in COMPRESSED_SUFFIXES if lower.endswith(s)), None)


def without_compression(name: str) -> str:
    """``listens.csv.zst`` -> ``listens.csv``: the name of what is inside."""
    suffix = compressed_suffix(name)
    return name[: -len(suffix)] if suffix else name


def open_at(path: Path, start: int = 0) -> IO[bytes]:
    """:func:`open_input` positioned at uncompressed byte ``start``: a plain file seeks,
    a compressed one is decompressed again and the first ``start`` bytes dropped."""
    f = open_input(path)
    try:
        if start and compressed_suffix(path.name) is None:
            f.seek(start)
        elif start:
            skip(f, start)
    except BaseException:
        f.close()
        raise
    return f


def open_input(path: Path) -> IO[bytes]:
    """A buffered binary reader of ``path``, decompressed if its name says it is compressed.

    Decompression errors come out as :class:`CorruptStream` naming the file.
    """
    try:
        raw = open(path, "rb", buffering=1 << 20)  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise wrap_os_error(exc, printable(path)) from exc
    suffix = compressed_suffix(path.name)
    if suffix is None:
        return raw
    inner: IO[bytes]
    if suffix == ".zst":
        import pyzstd  # imported here so `phono` starts fast

        inner = cast(IO[bytes], pyzstd.ZstdFile(raw))
    else:
        inner = _STREAM_OPENERS[suffix](raw)
    return io.BufferedReader(_Guarded(inner, raw, printable(path), suffix), 1 << 20)


def disk_position(f: IO[bytes]) -> int:
    """Bytes of the file on disk that reader ``f`` (of :func:`open_input`) has consumed:
    for a compressed file its position in the compressed bytes, which a progress bar can
    count against the file's size (uncompressed offsets have no known total). It runs
    ahead of what was parsed by the decompressor's read-ahead (a buffer)."""
    raw = getattr(f, "raw", None)
    if isinstance(raw, _Guarded):
        return raw.disk_position()
    return f.tell()


def skip(f: IO[bytes], n: int) -> None:
    """Read and drop ``n`` bytes (a decompressed stream cannot seek)."""
    while n > 0:
        got = f.read(min(n, 8 << 20))
        if not got:
            return
        n -= len(got)


_STREAM_OPENERS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    ".gz": lambda f: cast(IO[bytes], gzip.GzipFile(fileobj=f, mode="rb")),
    ".bz2": lambda f: cast(IO[bytes], bz2.BZ2File(f)),
    ".xz": lambda f: cast(IO[bytes], lzma.LZMAFile(f)),
}


def _decompress_errors() -> tuple[type[Exception], ...]:
    import zlib

    import pyzstd

    return (pyzstd.ZstdError, zlib.error, lzma.LZMAError, OSError, ValueError)


class _Guarded(io.RawIOBase):
    """A decompressing reader whose decompression errors become :class:`CorruptStream`."""

    def __init__(self, inner: IO[bytes], raw: IO[bytes], source: str, suffix: str) -> None:
        self._inner = inner
        self._raw = raw
        self._source = source
        self._suffix = suffix

    def readable(self) -> bool:
        return True

    def disk_position(self) -> int:
        return self._raw.tell()

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        try:
            # readinto1: what one step decompresses. readinto would try to fill ``b``
            # and, at a truncated end, drop what it had decompressed before the error.
            return self._inner.readinto1(b)  # type: ignore[attr-defined, no-any-return]
        except EOFError as exc:
            raise CorruptStream(self._source, f"truncated {self._suffix} file "
                                              f"(ends before its end marker): {exc}") from exc
        except _decompress_errors() as exc:
            # bz2 and gzip report bad data as OSError without errno; a read error of
            # the disk has one and is named as such.
            if type(exc) is OSError and exc.errno is not None:
                raise wrap_os_error(exc, self._source) from exc
            raise CorruptStream(self._source, f"corrupt {self._suffix} data: "
                                              f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._raw.close()
            super().close()


# Compressed tar streams by magic bytes -> opener of a decompressing file object.
_COMPRESSED: tuple[tuple[bytes, Callable[[IO[bytes]], IO[bytes]]], ...] = (
    (b"\xfd7zXZ\x00", lambda f: cast(IO[bytes], lzma.open(f))),
    (b"\x1f\x8b", lambda f: cast(IO[bytes], gzip.open(f))),
    (b"BZh", lambda f: cast(IO[bytes], bz2.open(f))),
)


@contextmanager
def open_tar_stream(path: Path) -> Iterator[tarfile.TarFile]:
    """A streaming ``TarFile`` over a plain, xz, gzip or bzip2 tar archive.

    Decompression is done here, not by ``tarfile``'s ``r|*`` mode: that one keeps
    each decompressed block in one buffer and copies what is left of it on every
    read, so a block that decompresses to a long run (a 64 MiB line) is copied
    over and over (quadratic). The standard decompressing readers bound each step.
    """
    with open_tar_on_disk(path) as (tar, _disk):
        yield tar


class DiskPosition(Protocol):
    """How many bytes of a file on disk have been read (its ``tell()``)."""

    def tell(self) -> int: ...


#: Debian's parallel bzip2 (``scripts/setup`` installs it): a ``.tar.bz2`` archive (the
#: format of MusicBrainz's ``mbdump.tar.bz2``, several GB) is decompressed on every core
#: by it, where Python's bz2 uses one. Measured on 2 cores, a synthetic 1 M-recording dump
#: (87 MB of bzip2, 324 MiB of tables): Python's bz2 8.6 s, lbzip2 3.5 s (2026-12-03).
#: Without it (not on PATH) Python's bz2 reads the archive, as before.
LBZIP2 = "lbzip2"


class _Offset:
    """The offset of a file descriptor another process reads (they share it)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)


class _Lbzip2(io.RawIOBase):
    """The decompressed bytes of the bzip2 file ``path``, from an ``lbzip2`` process that
    reads it (on every core) through a file descriptor of its own: :attr:`disk` tells how
    far into the file the process has read (the child shares the descriptor's offset).

    lbzip2's exit status says whether the data was whole: a truncated or corrupt file
    raises an OSError without errno (as Python's bz2 reports bad data) once its output
    ends, with lbzip2's message; what it decompressed before stays read.
    """

    def __init__(self, path: Path, exe: str) -> None:
        self._path = path
        self._source = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        try:
            self._proc = subprocess.Popen(
                [exe, "--decompress", "--stdout", "-n", str(os.cpu_count() or 1)],
                stdin=self._source, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                bufsize=0)
        except BaseException:
            self._source.close()
            raise
        self.disk: DiskPosition = _Offset(self._source.fileno())

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        out = cast(io.FileIO, self._proc.stdout)  # bufsize=0: the pipe's raw file
        n = out.readinto(b)
        if not n:  # its output has ended: whole only if lbzip2 says so
            err = self._proc.stderr.read() if self._proc.stderr is not None else b""
            if self._proc.wait() != 0:
                why = err.decode("utf-8", "replace").strip().replace("lbzip2: stdin: ", "")
                raise OSError(f"bzip2 data of {printable(self._path)}: "
                              f"{why or f'lbzip2 exit {self._proc.returncode}'}")
        return n or 0

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._proc.poll() is None:  # stopped early (the tar's end, an error): done
                self._proc.kill()
            self._proc.wait()
            for pipe in (self._proc.stdout, self._proc.stderr):
                if pipe is not None:
                    pipe.close()
        finally:
            self._source.close()
            super().close()


@contextmanager
def open_tar_on_disk(path: Path) -> Iterator[tuple[tarfile.TarFile, DiskPosition]]:
    """:func:`open_tar_stream`'s ``TarFile`` and the archive file on disk under it,
    whose ``tell()`` says how many bytes of the (compressed) file have been read (the
    progress of a 10 GB dump). A bzip2 archive is decompressed by :data:`LBZIP2` when
    it is installed."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise wrap_os_error(exc, printable(path)) from exc
    with raw:
        head = raw.read(6)
        raw.seek(0)
        exe = shutil.which(LBZIP2) if head.startswith(b"BZh") else None
        if exe is not None:
            try:
                child = _Lbzip2(path, exe)
            except OSError as exc:
                raise wrap_os_error(exc, printable(path)) from exc
            with child, io.BufferedReader(child, 1 << 20) as buffered, \
                    tarfile.open(fileobj=buffered, mode="r|") as tar:
                yield tar, child.disk
            return
        opener = next((o for magic, o in _COMPRESSED if head.startswith(magic)), None)
        stream = raw if opener is None else opener(raw)
        with stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            yield tar, raw


#: The most links followed from one archive member to the file it names (more: a loop).
_MAX_HOPS = 16


class _At:
    """A disk position that stays where the first pass over an archive ended (a second
    pass reads members a link names: progress does not go back)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def tell(self) -> int:
        return self.at


def _link_target(member: tarfile.TarInfo) -> str | None:
    """The normalised archive path a link member names, None if it points outside the
    archive (an absolute path, or above its top)."""
    link = member.linkname
    if link.startswith("/"):
        return None
    if member.issym():  # relative to the link's folder
        link = posixpath.join(posixpath.dirname(posixpath.normpath(member.name)), link)
    target = posixpath.normpath(link)
    return None if target == ".." or target.startswith("../") else target


def archive_members(path: Path, reject_source: str, wanted: Callable[[str], str | None],
                    unread: str
                    ) -> Iterator[tuple[str, tarfile.TarInfo, IO[bytes] | Reject, DiskPosition]]:
    """The members of the archive ``path`` a reader reads: those whose name ``wanted``
    gives a key (a dump table, an entity), as ``(key, the member, its bytes or the
    reject saying why they cannot be read, the archive's disk position)``.

    A wanted member that is a link (hard or symbolic) gives the bytes of the file it
    names in the archive, read in a second pass over it (the archive is a stream); a link
    to a path outside the archive is never followed, and one naming no file of the
    archive, a loop of links or a wanted member of another kind (a folder, a device) is a
    reject naming the member (``unread`` ends its reason: what is not read): it is never
    lost silently. Regular members come first, in the archive's order, then the links',
    in theirs. Errors of the archive itself are raised (the callers say where it
    broke)."""
    links: dict[str, tarfile.TarInfo] = {}  # every link of the archive, by normalised name
    files: set[str] = set()
    pending: list[tuple[str, tarfile.TarInfo]] = []  # (key, link)
    end: DiskPosition = _At(0)
    with open_tar_on_disk(path) as (tar, disk):
        for member in tar:
            name = posixpath.normpath(member.name)
            if member.islnk() or member.issym():
                links[name] = member
            elif member.isfile():
                files.add(name)
            key = wanted(member.name)
            if key is None:
                continue
            if member.isfile():
                found = tar.extractfile(member)
                if found is not None:
                    yield key, member, found, disk
            elif member.islnk() or member.issym():
                pending.append((key, member))
            else:
                yield key, member, reject(
                    reject_source, printable(member.name),
                    f"not a file (a folder, device or pipe): {unread}"), disk
        end = _At(disk.tell())
    todo: list[tuple[str, str, tarfile.TarInfo]] = []  # (target, key, link)
    for key, member in pending:
        target, why = _follow(member, links, files, unread)
        if target is None:
            yield key, member, reject(reject_source, printable(member.name), why), end
        else:
            todo.append((target, key, member))
    while todo:  # a pass reads each file once: two links to one file take two passes
        later: list[tuple[str, str, tarfile.TarInfo]] = []
        with open_tar_on_disk(path) as (tar, _disk):
            for member in tar:
                name = posixpath.normpath(member.name)
                if not member.isfile():
                    continue
                mine = [w for w in todo if w[0] == name]
                if not mine:
                    continue
                later += mine[1:]
                _, key, link = mine[0]
                todo = [w for w in todo if w[0] != name]
                found = tar.extractfile(member)
                if found is not None:
                    yield key, link, found, end
        todo = later


def _follow(member: tarfile.TarInfo, links: dict[str, tarfile.TarInfo], files: set[str],
            unread: str) -> tuple[str | None, str]:
    """The archive file a link member names, following links (or None and why not)."""
    kind = "symbolic link" if member.issym() else "hard link"
    first = printable(member.linkname)
    seen: set[str] = set()
    while True:
        target = _link_target(member)
        if target is None:
            return None, f"a {kind} to {first}, outside the archive: not followed, {unread}"
        if target in files:
            return target, ""
        if target not in links:
            return None, f"a {kind} to {first}, which is not a file in the archive: {unread}"
        if target in seen or len(seen) >= _MAX_HOPS:
            return None, f"a {kind} to {first}: a loop of links, {unread}"
        seen.add(target)
        member = links[target]
