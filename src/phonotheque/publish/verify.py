"""``phono verify DATA_DIR --against publish/``: check downloaded data against what was published.

``DATA_DIR`` is where a BitTorrent client saved one or more of our torrents (or
one torrent's folder itself). Every file is checked against the published
database: size, SHA-256 and BitTorrent v2 merkle root (``pieces root``), read
once for both. Reported by path:

* ``missing`` / ``truncated`` / ``oversized`` / ``corrupt`` (content differs) /
  ``root_mismatch`` (SHA-256 right but merkle root wrong: the published record
  itself is inconsistent) / ``unexpected`` (a file the torrent does not have);
* a folder that is not named like any torrent but holds one torrent's files is
  reported as *renamed* (and checked as that torrent); an obsolete torrent's
  folder is named with what replaced it;
* torrents known only from a ``.torrent`` file in ``publish/torrents/`` (the
  metadata-database torrent) are checked with the torrent engine;
* ``against`` may be the database torrent's folder inside ``DATA_DIR`` (a user who
  downloaded the published torrents has no ``publish/``): that folder is the
  reference, listed as such, not an ``unexpected`` entry.

``--rebuild-originals`` applies each reconstruction patch to its archive file
(:func:`phonotheque.audio.reconstruct.rebuild`) and checks the published
``original_sha256``. The rebuilt originals are written to ``rebuild_dir`` when
given, else to a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from phonotheque import interrupts
from phonotheque.errors import InputError, IntegrityError, PhonoError, WorkspaceError
from phonotheque.progress import ProgressFn, meter
from phonotheque.publish.index import V1_SUFFIX
from phonotheque.sqlite_uri import file_uri
from phonotheque.torrent import PAD_DIR, PiecesRoot, TorrentInfo, read_torrent, verify_torrent

Progress = Callable[..., object]
READ = 4 * 2**20


@dataclass(frozen=True)
class VerifyOptions:
    against: Path  # a publish/ folder: metadata.sqlite and torrents/*.torrent
    rebuild_originals: bool = False
    rebuild_dir: Path | None = None
    workers: int | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    path: str  # relative to DATA_DIR
    kind: str  # missing | truncated | oversized | corrupt | root_mismatch | unexpected |
    #            original_mismatch | rebuild_failed
    detail: str = ""


@dataclass
class FolderResult:
    torrent: str  # the published torrent name
    found_as: str  # the folder or file in DATA_DIR, relative ("." for DATA_DIR itself)
    renamed: bool = False
    obsolete: bool = False
    superseded_by: str | None = None
    files: int = 0
    bytes: int = 0
    # the folder given as ``against`` (a downloaded database torrent): the reference
    # itself, not checked against itself (the BitTorrent client checked its pieces)
    reference: bool = False


@dataclass
class VerifyReport:
    data_dir: Path
    folders: list[FolderResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files_checked: int = 0
    files_ok: int = 0
    bytes_checked: int = 0
    originals_checked: int = 0
    originals_ok: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.folders) and not self.problems and not any(
            f.renamed or f.obsolete for f in self.folders
        )

    def by_kind(self) -> dict[str, list[Problem]]:
        out: dict[str, list[Problem]] = {}
        for p in self.problems:
            out.setdefault(p.kind, []).append(p)
        return out


@dataclass(frozen=True, slots=True)
class _Expected:
    path: str
    size: int
    sha256: str | None
    root: str | None
    original_sha256: str | None = None
    patch_path: str | None = None


@dataclass
class _Torrent:
    id: int | None
    name: str
    multi_file: bool
    obsolete: bool = False
    superseded_by: str | None = None
    files: dict[str, _Expected] = field(default_factory=dict)
    info: TorrentInfo | None = None  # only for torrents known from a .torrent file


def _load(against: Path) -> dict[str, _Torrent]:
    db = against / "metadata.sqlite"
    if not db.is_file():
        raise WorkspaceError(against, "no metadata.sqlite here (give the publish/ folder)")
    try:
        # (registered: Ctrl-C stops a statement of a downloaded, possibly hostile, database)
        conn = interrupts.sqlite_connect(file_uri(db, mode="ro", immutable=1), uri=True)
    except sqlite3.Error as exc:
        raise WorkspaceError(db, f"cannot open: {exc}") from exc
    torrents: dict[str, _Torrent] = {}
    by_id: dict[int, _Torrent] = {}
    try:
        for tid, name, kind, obsolete, sup in conn.execute(
            """SELECT t.id, t.name, t.kind, t.obsolete, s.name FROM torrent t
               LEFT JOIN torrent s ON s.id = t.superseded_by"""
        ):
            t = _Torrent(tid, name, kind == "data", bool(obsolete), sup)
            torrents[name] = by_id[tid] = t
        for tid, path, size, sha, root, orig, patch in conn.execute(
            "SELECT torrent_id, path, size, sha256, btv2_root, original_sha256, patch_path "
            "FROM file"
        ):
            owner = by_id.get(tid)
            if owner is None:
                raise IntegrityError(db, f"file row {path!r} names torrent {tid}, which is "
                                         "not in the torrent table")
            owner.files[path] = _Expected(path, size, sha, root, orig, patch)
        for tid, path, size, sha, root in conn.execute(
            "SELECT torrent_id, path, size, sha256, btv2_root FROM aux_file"
        ):
            if tid in by_id:
                by_id[tid].files.setdefault(path, _Expected(path, size, sha, root))
    except sqlite3.DatabaseError as exc:
        raise WorkspaceError(db, f"not a published metadata database: {exc}") from exc
    finally:
        conn.close()
    # A hostile or broken database must not make us read outside DATA_DIR.
    for t in torrents.values():
        if not _safe_relative(t.name) or "/" in t.name:
            raise InputError(db, f"unsafe torrent name {t.name!r} in the published metadata")
        for rel in t.files:
            if not _safe_relative(rel):
                raise InputError(db, f"unsafe path {rel!r} in the published metadata")
    # Torrents that only have a .torrent file (the database torrent) are checked by it.
    for p in sorted((against / "torrents").glob("*.torrent")):
        name = p.name.removesuffix(".torrent")
        if name in torrents or p.name.endswith(V1_SUFFIX):
            continue  # (a v1 companion has the same payload as the torrent it comes with)
        try:
            info = read_torrent(p)
        except PhonoError:
            continue
        torrents[info.name] = _Torrent(None, info.name, info.multi_file, info=info)
    return torrents


def _safe_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and "\\" not in path and "\x00" not in path \
        and all(part not in ("", ".", "..") for part in parts)


class _Stopped(Exception):
    """A hash given up because the verify stopped (Ctrl-C, an error)."""


def _hash_file(path: Path, progress: Progress | None,
               stop: threading.Event | None = None) -> tuple[str, str | None]:
    """SHA-256 and v2 merkle root of a file, reading it once; given up (:class:`_Stopped`)
    between two reads once ``stop`` is set."""
    sha = hashlib.sha256()
    v2 = PiecesRoot()
    with open(path, "rb") as f:
        while chunk := f.read(READ):
            if stop is not None and stop.is_set():
                raise _Stopped(path)
            sha.update(chunk)
            v2.update(chunk)
            if progress is not None:
                progress(len(chunk))
    root = v2.digest()
    return sha.hexdigest(), root.hex() if root is not None else None


def _walk(folder: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirs, names in os.walk(folder):
        rel_dir = Path(dirpath).relative_to(folder)
        dirs[:] = [d for d in dirs if not (rel_dir == Path(".") and d == PAD_DIR)]
        out.extend((rel_dir / n).as_posix() for n in names)
    return sorted(out)


def verify(data_dir: Path, options: VerifyOptions,
           progress: ProgressFn | None = None) -> VerifyReport:
    """Check ``data_dir`` against the published torrents; progress in bytes hashed."""
    return _verify(data_dir, options, meter(progress, "verify", "B"))


def _verify(data_dir: Path, options: VerifyOptions, progress: Progress | None) -> VerifyReport:
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise InputError(data_dir, "no such file or folder")
    torrents = _load(Path(options.against))
    report = VerifyReport(data_dir)

    # Which torrent is where: DATA_DIR itself, or its entries by name, or by content.
    matches: list[tuple[_Torrent, Path, bool]] = []
    if data_dir.name in torrents and data_dir.is_dir() and torrents[data_dir.name].multi_file:
        matches.append((torrents[data_dir.name], data_dir, False))
    elif data_dir.is_file():
        t = torrents.get(data_dir.name)
        if t is None:
            raise InputError(data_dir, "not a file of any published torrent")
        matches.append((t, data_dir, False))
    else:
        path_index: dict[str, set[str]] = {}
        for t in torrents.values():
            if t.multi_file:
                for p in t.files:
                    path_index.setdefault(p, set()).add(t.name)
        reference = Path(options.against).resolve()
        for entry in sorted(data_dir.iterdir()):
            if entry.suffix == ".torrent" and (entry.name.removesuffix(".torrent") in torrents
                                               or entry.name.removesuffix(V1_SUFFIX) in torrents):
                continue  # the .torrent file saved next to its download
            if entry.is_dir() and entry.resolve() == reference and entry.name not in torrents:
                # verifying a download against the database torrent downloaded with it
                report.folders.append(FolderResult(entry.name, entry.name, reference=True))
                continue
            t = torrents.get(entry.name)
            if t is not None and entry.is_dir() == t.multi_file:
                matches.append((t, entry, False))
                continue
            guess = _guess(entry, torrents, path_index)
            if guess is not None:
                matches.append((guess, entry, True))
            else:
                report.problems.append(Problem(entry.name, "unexpected",
                                               "not part of any published torrent"))
    if not matches:
        raise InputError(data_dir, "holds no folder or file of any published torrent")

    total = sum(t.info.total_size if t.info is not None else sum(e.size for e in t.files.values())
                for t, _p, _r in matches)
    if progress is not None:
        progress(0, total=total)
    for t, where, renamed in matches:
        rel = "." if where == data_dir else where.relative_to(data_dir).as_posix()
        result = FolderResult(t.name, rel, renamed, t.obsolete, t.superseded_by)
        report.folders.append(result)
        if t.info is not None:
            _check_with_torrent(t.info, where, rel, report, result, progress)
        else:
            _check_folder(t, where, rel, report, result, options, progress)
    if options.rebuild_originals:
        _rebuild(matches, data_dir, report, options)
    return report


def _guess(entry: Path, torrents: dict[str, _Torrent],
           path_index: dict[str, set[str]]) -> _Torrent | None:
    """The torrent a renamed folder (or file) most likely is, by the files it holds."""
    if entry.is_dir():
        votes: dict[str, int] = {}
        files = _walk(entry)
        for p in files:
            for name in path_index.get(p, ()):
                votes[name] = votes.get(name, 0) + 1
        if not votes:
            return None
        best = max(sorted(votes), key=lambda n: votes[n])
        return torrents[best] if votes[best] * 2 >= len(files) else None
    size = entry.stat().st_size
    for t in torrents.values():
        if not t.multi_file and t.files:
            (exp,) = t.files.values()
            if exp.size == size and exp.sha256 and _hash_file(entry, None)[0] == exp.sha256:
                return t
    return None


def _check_folder(
    t: _Torrent, where: Path, rel: str, report: VerifyReport, result: FolderResult,
    options: VerifyOptions, progress: Progress | None,
) -> None:
    def shown(p: str) -> str:
        if not t.multi_file:
            return rel
        return p if rel == "." else f"{rel}/{p}"

    if t.multi_file:
        present = set(_walk(where))
        expected = t.files
    else:
        present = {next(iter(t.files))} if t.files else set()
        expected = t.files
    for p in sorted(present - set(expected)):
        report.problems.append(Problem(shown(p), "unexpected", f"not in torrent {t.name}"))
    todo: list[tuple[_Expected, Path]] = []
    for p, exp in sorted(expected.items()):
        file = where.joinpath(*p.split("/")) if t.multi_file else where
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            report.problems.append(Problem(shown(p), "missing", f"{exp.size} bytes expected"))
            continue
        if size < exp.size:
            report.problems.append(Problem(shown(p), "truncated", f"{size} of {exp.size} bytes"))
        elif size > exp.size:
            report.problems.append(Problem(shown(p), "oversized", f"{size} bytes, {exp.size} expected"))
        else:
            todo.append((exp, file))

    # Ctrl-C (or an error) in this thread stops the hashes running in the pool between two
    # reads: the pool's exit waits for them, which was until each file's end (seconds for
    # a file of a few GiB), deaf to the interruption.
    stop = threading.Event()

    def check(item: tuple[_Expected, Path]) -> tuple[_Expected, str, str | None]:
        exp, file = item
        sha, root = _hash_file(file, progress, stop)
        return exp, sha, root

    with ThreadPoolExecutor(max_workers=options.workers or min(4, os.cpu_count() or 1)) as pool:
        try:
            for exp, sha, root in pool.map(check, todo):
                result.files += 1
                result.bytes += exp.size
                report.files_checked += 1
                report.bytes_checked += exp.size
                if exp.sha256 and sha != exp.sha256:
                    report.problems.append(Problem(shown(exp.path), "corrupt",
                                                   f"sha256 {sha}, published {exp.sha256}"))
                elif exp.root and root != exp.root:
                    report.problems.append(Problem(shown(exp.path), "root_mismatch",
                                                   f"merkle root {root}, published {exp.root}"))
                else:
                    report.files_ok += 1
        except BaseException:
            stop.set()
            raise


def _check_with_torrent(
    info: TorrentInfo, where: Path, rel: str, report: VerifyReport, result: FolderResult,
    progress: Progress | None,
) -> None:
    r = verify_torrent(info, where.parent if where.name == info.name else where,
                       progress=progress)

    def shown(p: str) -> str:
        if not info.multi_file:
            return rel
        return p if rel == "." else f"{rel}/{p}"

    for kind, paths in (("missing", r.missing), ("truncated", r.truncated),
                        ("oversized", r.oversized), ("corrupt", r.corrupt),
                        ("unexpected", r.extra)):
        for p in paths:
            if kind == "unexpected" and p.split("/")[0] == PAD_DIR:
                continue
            report.problems.append(Problem(shown(p), kind, f"checked against {info.name}.torrent"))
    bad = len(r.missing) + len(r.truncated) + len(r.oversized) + len(r.corrupt)
    result.files = r.files_checked
    result.bytes = r.bytes_checked
    report.files_checked += r.files_checked
    report.files_ok += r.files_checked - bad
    report.bytes_checked += r.bytes_checked


def _rebuild(matches: list[tuple[_Torrent, Path, bool]], data_dir: Path, report: VerifyReport,
             options: VerifyOptions) -> None:
    try:
        from phonotheque.audio.reconstruct import rebuild
    except ImportError as exc:  # pragma: no cover - the audio stage ships with phono
        raise InputError("--rebuild-originals", f"reconstruction is not available: {exc}") from exc
    bad = {p.path for p in report.problems}
    with tempfile.TemporaryDirectory(prefix="phono-rebuild-") as scratch:
        out_dir = Path(options.rebuild_dir) if options.rebuild_dir else Path(scratch)
        for t, where, _renamed in matches:
            if not t.multi_file:
                continue
            rel = "" if where == data_dir else where.relative_to(data_dir).as_posix() + "/"
            for exp in sorted(t.files.values(), key=lambda e: e.path):
                if not exp.patch_path or not exp.original_sha256:
                    continue
                shown = rel + exp.path
                if shown in bad or rel + exp.patch_path in bad:
                    continue  # already reported; a bad input cannot rebuild
                report.originals_checked += 1
                target = out_dir / t.name / exp.path
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    rebuild(where.joinpath(*exp.path.split("/")),
                            where.joinpath(*exp.patch_path.split("/")), target,
                            expected_sha256=exp.original_sha256)
                except PhonoError as exc:
                    kind = "original_mismatch" if "sha256" in str(exc) else "rebuild_failed"
                    report.problems.append(Problem(shown, kind, exc.problem))
                    continue
                report.originals_ok += 1
