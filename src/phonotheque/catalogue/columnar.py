"""The columnar engine: DuckDB over the catalogue, opened in one place.

DuckDB sorts and aggregates on every core and spills to disk past a memory limit,
which SQLite's single-threaded sorter does not (docs/scale.md). This module is the
only one that opens it, so every connection gets the same guarantees:

- **Nothing downloaded at run time.** The SQLite extension comes from the pinned
  ``duckdb-ext-sqlite`` wheel and is LOADed by its file path; DuckDB's automatic
  install and load of known extensions are switched off, so a missing or mismatched
  extension is a :class:`~phonotheque.errors.ToolError`, never a network fetch.
  DuckDB checks the extension's signature once per file and process (``_VERIFIED``).
- **Bounded memory.** ``memory_limit`` comes from the machine (a share of its
  physical memory) or the caller's option, and what does not fit spills into
  ``temp_directory``, which the caller puts inside the workspace. What the C heap
  holds free beside it is returned to the system (:mod:`phonotheque.heap_trim`), and
  so is what DuckDB's own allocator keeps (its background threads; :func:`hand_back_memory`
  once a process's DuckDB work is done).
- **The catalogue is attached read-only** as ``cat`` unless the caller asks to write.
- **Ctrl-C stops the query.** While a connection (or a cursor from :func:`cursor`) is
  open, a SIGINT handled by Python's default handler also interrupts its statement in
  DuckDB's worker threads (:mod:`phonotheque.interrupts` says why that is needed).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phonotheque import heap_trim, interrupts
from phonotheque.errors import (
    BusyError,
    DamagedCatalogue,
    InputError,
    PhonoError,
    StorageError,
    ToolError,
    WorkspaceError,
    wrap_os_error,
)
from phonotheque.sources import printable, utf8_path
from phonotheque.units import format_binary, parse_size

# duckdb is imported when a connection is first opened, not with this module: importing
# it costs about 0.2 s of CPU, which every `phono` command paid (the CLI imports every
# stage) though only a columnar workspace uses it.
if TYPE_CHECKING:
    import duckdb

    #: What other modules annotate DuckDB connections and catch DuckDB errors with
    #: (they never import duckdb themselves: this module opens every connection).
    Connection = duckdb.DuckDBPyConnection
    Error = duckdb.Error
else:
    def __getattr__(name: str) -> Any:
        # ``Connection`` and ``Error`` (above), resolved on first use: an ``except
        # columnar.Error`` clause is only evaluated once something was raised.
        if name not in ("Connection", "Error"):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import duckdb

        globals().update(Connection=duckdb.DuckDBPyConnection, Error=duckdb.Error)
        return globals()[name]

#: The alias the catalogue is attached under (``cat.track``, ``cat.listens``, ...).
CATALOGUE_ALIAS = "cat"
#: Share of the machine's physical memory DuckDB may use when no limit is given.
DEFAULT_MEMORY_SHARE = 0.5
_MIN_MEMORY = 64 * 1024 * 1024  # below this DuckDB cannot run its own operators
#: Above this a limit is refused: DuckDB keeps it in 64 bits, and from just below 2**64
#: bytes on it wraps to nothing (every allocation fails, "failed to pin block"); 1 EiB
#: is far more than any machine, so no real limit is lost.
MAX_MEMORY = 1 << 60

_EXTENSION_PACKAGE = "duckdb_ext"
_EXTENSION_FILE = "sqlite_scanner.duckdb_extension"
_WHEEL = "duckdb-ext-sqlite"


def physical_memory() -> int:
    """Bytes of physical memory on this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_limit(option: int | None = None) -> int:
    """DuckDB's memory limit in bytes: ``option`` if given, else a share of the machine."""
    if option is None:
        return max(_MIN_MEMORY, int(physical_memory() * DEFAULT_MEMORY_SHARE))
    if option < _MIN_MEMORY:
        raise InputError("memory limit", f"{format_binary(option)} is below the minimum of "
                                         f"{format_binary(_MIN_MEMORY)}")
    if option > MAX_MEMORY:
        raise InputError("memory limit", f"{format_binary(option)} is above the maximum of "
                                         f"{format_binary(MAX_MEMORY)}")
    return option


def memory_in_force(con: Connection) -> int:
    """The memory limit ``con`` runs under, in bytes (as DuckDB reports it: to 4 digits,
    ``286.1 MiB``), for statements that size their work by it."""
    row = con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert row is not None
    return max(_MIN_MEMORY, parse_size(str(row[0])))


def _platform(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("PRAGMA platform").fetchone()
    assert row is not None
    return str(row[0])


@cache
def _this_platform() -> str:
    """DuckDB's name for this platform (asked once: it takes a connection)."""
    import duckdb

    con = duckdb.connect()
    try:
        return _platform(con)
    finally:
        con.close()


def sqlite_extension(con: duckdb.DuckDBPyConnection | None = None) -> Path:
    """The SQLite extension file shipped in the ``duckdb-ext-sqlite`` wheel for this
    DuckDB version and platform; :class:`ToolError` if it is not installed."""
    import duckdb

    version = f"v{duckdb.__version__}"
    platform = _platform(con) if con is not None else _this_platform()
    try:
        root = resources.files(_EXTENSION_PACKAGE) / "extensions"
    except ModuleNotFoundError as exc:
        raise ToolError(_WHEEL, f"not installed (the pinned {_WHEEL} package ships DuckDB's "
                                "SQLite extension; run ./scripts/setup)") from exc
    path = Path(str(root / version / platform / _EXTENSION_FILE))
    if not path.is_file():
        found = sorted(p.name for p in Path(str(root)).iterdir()) if root.is_dir() else []
        raise ToolError(_WHEEL, f"has no SQLite extension for DuckDB {version} on {platform} "
                                f"(it ships {', '.join(found) or 'none'}): install the "
                                "version pinned in pyproject.toml next to duckdb")
    return path


# -- a catalogue file that is not a readable database of ours --------------------------
# DuckDB (1.4) raises the same IOException for a damaged file and for a real I/O failure,
# so they are told apart by what can be checked:
# * before opening, the file's own header: every DuckDB database has the magic "DUCK" at
#   byte 8 of a 4 KiB main header (an empty file, or one overwritten there, has not). Exact.
# * afterwards, DuckDB's message, for what only shows once it reads the file: cut short
#   ("Could not read enough bytes": the file is shorter than its own block list says), a
#   damaged block ("Corrupt database file: computed checksum ..."), another storage
#   version, and what the SQLite extension says of a damaged catalogue.sqlite ("file is
#   not a database", "database disk image is malformed"). DuckDB computes these itself from
#   bytes it did read, so a failing disk (EIO: "Could not read from file ...: Input/output
#   error"), a full disk or a permission refusal never matches them. The words are
#   DuckDB's and could change in another version: an error they miss is then classed as
#   before (exit 5 in a stage, exit 2 where DuckDB refuses to open the file), never as a
#   wrong "damaged"; tests/test_damaged_catalogue.py pins them for the pinned DuckDB.
_MAGIC_OFFSET, _MAGIC = 8, b"DUCK"
_DAMAGED = re.compile(
    r"not a valid DuckDB database file|Could not read enough bytes|Corrupt database file|"
    r"does not match stored checksum|trying to read a database file with version number|"
    r"file is not a database|database disk image is malformed", re.IGNORECASE)
_FILE_NAMED = re.compile(r'(?:from|file) "([^"]+)"')
# The OS's words (strerror) in DuckDB's message when it may not open a file for writing or
# the disk failed: storage when writing (errors.os_error_class's table for these errnos).
_CANNOT_WRITE = re.compile(
    r"Permission denied|Operation not permitted|Read-only file system|No space left|"
    r"Disk quota exceeded|Input/output error|File too large", re.IGNORECASE)
# DuckDB's lock conflict: 'Could not set lock on file "...": Conflicting lock is held in
# ...'. Not any "lock" in the message: "in block at location 0" holds one too.
_LOCK = re.compile(r"could not set lock|conflicting lock", re.IGNORECASE)


def is_damaged(exc: BaseException) -> bool:
    """True if DuckDB's ``exc`` says a database file it read is not readable as one
    (damaged, cut short, another storage version, not a database): see above."""
    return _DAMAGED.search(str(exc)) is not None


def is_lock_conflict(exc: BaseException) -> bool:
    """True if DuckDB's ``exc`` says another process holds the file's lock."""
    return _LOCK.search(str(exc)) is not None


def damaged(path: object, detail: str) -> DamagedCatalogue:
    """The error for a catalogue file that is not a readable database of ours: the same
    words as the SQLite engine's (catalogue.store), "not a readable <kind> catalogue"."""
    suffix = Path(str(path)).suffix
    kind = {".duckdb": "DuckDB ", ".sqlite": "SQLite "}.get(suffix, "")
    return DamagedCatalogue(path, f"not a readable {kind}catalogue (damaged, cut short or "
                                  f"not a database; restore it from a backup): {detail}")


def check_header(path: Path) -> None:
    """Refuse an existing DuckDB file whose header is not DuckDB's (empty, overwritten, not
    a database) before DuckDB opens it: :class:`DamagedCatalogue`. A missing file, or one
    that cannot be read, is left to DuckDB (it says what is wrong)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(_MAGIC_OFFSET)
            magic = fh.read(len(_MAGIC))
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return
    except OSError as exc:
        raise wrap_os_error(exc, path) from exc
    if magic != _MAGIC:
        what = "an empty file" if path.stat().st_size == 0 else "no DuckDB header"
        raise damaged(path, what)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _open_error(path: Path, exc: duckdb.Error, *, writing: bool, verb: str) -> PhonoError:
    """What DuckDB's refusal to open or attach ``path`` is: busy (another process's lock),
    damaged (exit 3), a file it may not write when writing (exit 5), else bad input."""
    import duckdb

    if isinstance(exc, duckdb.IOException) and is_lock_conflict(exc):
        return BusyError(path, "another phono process is using it; wait for it to finish")
    if is_damaged(exc):
        return damaged(path, _first_line(exc))
    if writing and (isinstance(exc, duckdb.PermissionException)
                    or _CANNOT_WRITE.search(str(exc)) is not None):
        return StorageError(path, f"cannot write: DuckDB cannot open it: {_first_line(exc)}")
    return InputError(path, f"DuckDB cannot {verb} it: {exc}")


def failed(subject: object, doing: str, exc: duckdb.Error,
           limit: int | None = None, *, catalogue: Path | None = None) -> PhonoError:
    """The error a stage raises when DuckDB fails while ``doing`` something, of the class
    that says what went wrong (docs/cli.md, exit codes), with DuckDB's first line.

    * Running out of its memory limit (``limit`` bytes if the caller knows it, else the
      figure DuckDB's message gives): a :class:`StorageError` that says what the limit was
      and names the setting a phono user changes, ``PHONO_MEMORY``, with a figure above
      it, not DuckDB's own ``SET memory_limit`` advice.
    * Reading or writing its files failed (an I/O error, disk full, a read-only file, a
      database DuckDB invalidated after such an error): :class:`StorageError` (exit 5).
    * A value it could not convert or hold (a conversion error, an overflow: DuckDB's
      ``DataError``s), which comes of a value in the input or an option:
      :class:`InputError` (exit 2), not a storage problem that sends a user to their disk.
    * Anything else (an internal error, a constraint, a statement it refused): a plain
      :class:`PhonoError` (exit 1, "error"), naming neither the disk nor the input.

    Before all these, a file DuckDB found damaged (:func:`is_damaged`: cut short, a block's
    checksum wrong) is :class:`DamagedCatalogue` (exit 3) naming the file: the one in
    DuckDB's message, else ``catalogue`` (the catalogue the step reads), else ``subject``.
    """
    import duckdb

    first = _first_line(exc)
    if is_damaged(exc):
        # the file DuckDB names, else the catalogue the step reads, else the subject
        named = _FILE_NAMED.search(first)
        where = named.group(1) if named else (catalogue or subject)
        return damaged(where, f"DuckDB failed while {doing}: {first}")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return StorageError(subject, out_of_memory(doing, first, limit or _limit_in(first)))
    problem = f"DuckDB failed while {doing}: {first}"
    if isinstance(exc, (duckdb.IOException, duckdb.FatalException, duckdb.PermissionException)):
        return StorageError(subject, problem)
    if isinstance(exc, duckdb.DataError):
        return InputError(subject, problem)
    return PhonoError(subject, problem)


_GIB = 1 << 30
# DuckDB's out-of-memory message: "... (50.2 MiB/64.0 MiB used)"
_USED = re.compile(r"/\s*([0-9]+(?:\.[0-9]+)?)\s*(bytes|KiB|MiB|GiB|TiB|PiB)\s+used\)")
_BINARY = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": _GIB, "TiB": 1 << 40,
           "PiB": 1 << 50}


def _limit_in(message: str) -> int | None:
    m = _USED.search(message)
    return None if m is None else int(float(m.group(1)) * _BINARY[m.group(2)])


def out_of_memory(doing: str, first: str, limit: int | None) -> str:
    """What to tell a user whose stage ran out of DuckDB's memory ``limit`` (bytes; None
    if unknown): the limit in force and a ``PHONO_MEMORY`` above it (twice it, in whole
    GiB: a user who set 10GiB is not told to try 8GiB)."""
    spills = "(what does not fit spills to <workspace>/tmp/duckdb)"
    if limit is None:
        return (f"DuckDB ran out of its memory limit while {doing} ({first}); give it more "
                f"with PHONO_MEMORY, above the limit in force {spills}")
    more = max(1, math.ceil(2 * limit / _GIB))
    shown = (f"{limit / _GIB:.3g} GiB" if limit >= _GIB else f"{limit / (1 << 20):.3g} MiB")
    return (f"DuckDB ran out of its memory limit of {shown} while {doing} ({first}); give "
            f"it more with PHONO_MEMORY, e.g. PHONO_MEMORY={more}GiB {spills}")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One DuckDB transaction around the block: committed at its end, rolled back if it
    raises (or is interrupted), so a killed or failed step leaves nothing half-written."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


#: The extension files (device, inode, size, mtime) whose signature DuckDB has checked
#: in this process. The check hashes the whole 50 MB file, about 0.4 s of CPU, and DuckDB
#: makes it at every connection: a command or a test opening the catalogue a few times
#: paid it each time. A connection to the same, unchanged file loads it without the check
#: (``allow_unsigned_extensions`` for that connection only; it never LOADs anything else,
#: and autoloading is off); another file, or this one changed in any way, is checked.
_VERIFIED: set[tuple[int, int, int, int]] = set()


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None  # LOAD says what is wrong with it
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def integer(con: Connection, sql: str,
            params: Sequence[object] | Mapping[str, object] = ()) -> int:
    """The integer in the first column of the first row of ``sql``; 0 for no row or NULL
    (a count, a sum or a max over nothing)."""
    row = con.execute(sql, params if isinstance(params, Mapping) else list(params)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def quote(text: str) -> str:
    """``text`` as a SQL string literal (DuckDB takes no parameters where a file name or a
    table function's option goes)."""
    return "'" + text.replace("'", "''") + "'"


def check_path(path: Path) -> None:
    """Refuse a workspace file DuckDB cannot open (a path not UTF-8, :func:`utf8_path`,
    or one holding a ``?``) with a clear error.

    DuckDB (1.4) names a database's write-ahead log by putting ``.wal`` before the first
    ``?`` of its path (``/data/a?b/x.duckdb`` -> ``/data/a.wal?b/x.duckdb``, the rest read
    as URL parameters), so the first commit fails: ``phono init --engine duckdb`` there
    stopped with a traceback and left a SQLite workspace behind."""
    if not utf8_path(path):
        raise WorkspaceError(printable(path), "a columnar workspace needs a path that is "
                             "valid UTF-8 (DuckDB cannot open this one); rename or move it")
    if "?" in str(path):
        raise WorkspaceError(path, "a columnar workspace needs a path without '?' (DuckDB "
                             "cannot write its log there); rename or move it")


def connect(catalogue: Path, *, temp_directory: Path, memory_bytes: int | None = None,
            threads: int | None = None, writable: bool = False,
            database: Path | None = None,
            read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB with ``catalogue`` (a catalogue.sqlite) attached as ``cat``.

    ``database`` is DuckDB's own file (the columnar catalogue, created if missing);
    without it the connection is in memory. ``temp_directory`` (created if missing)
    takes what spills past the memory limit (:func:`memory_limit` of ``memory_bytes``);
    ``threads`` defaults to every core. The catalogue is attached read-only unless
    ``writable``. ``read_only`` opens ``database`` read-only: DuckDB lets one process
    hold a file read-write or any number hold it read-only, so readers (stats) do not
    take the writer's lock from one another.
    """
    import duckdb

    catalogue = Path(catalogue)
    for path in (catalogue, temp_directory, database):
        if path is not None:
            check_path(path)
    heap_trim.start()  # what glibc keeps free counts in the RSS too (heap_trim says why)
    if not catalogue.is_file():
        raise InputError(catalogue, "no such catalogue file")
    try:
        temp_directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise wrap_os_error(exc, temp_directory, writing=True) from exc
    extension = sqlite_extension()
    identity = _identity(extension)
    config: dict[str, Any] = {
        "memory_limit": f"{memory_limit(memory_bytes)}B",
        "temp_directory": str(temp_directory),
        # Never fetch an extension: the one we use is LOADed from the wheel below.
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        # DuckDB checks an extension's signature at every LOAD; see _VERIFIED.
        "allow_unsigned_extensions": identity is not None and identity in _VERIFIED,
        # jemalloc (DuckDB's allocator) returns freed pages on its decay timer from its
        # own threads, not only when a DuckDB thread next allocates: without them the
        # publish's peak RSS ranged 3.5-4.4 GiB at 10 M (3 GiB limit), with them 3.5-3.7
        # (docs/scale.md, session 17).
        "allocator_background_threads": True,
    }
    if threads is not None:
        config["threads"] = threads
    if database is not None:
        check_header(database)
    try:
        con = duckdb.connect(":memory:" if database is None else str(database),
                             read_only=read_only and database is not None, config=config)
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.IOException) and is_lock_conflict(exc):
            raise BusyError(database, "another phono process is using the columnar "
                                      "catalogue; wait for it to finish") from exc
        raise _open_error(Path(str(database)), exc, writing=not read_only,
                          verb="open") from exc
    try:
        # DuckDB draws its own progress bar on stdout for a query past 2 s: library code
        # never prints (it corrupted `--json` output and the first line a caller reads).
        # Session settings (not accepted in the config); cursors inherit them. Both:
        # the bar is switched back on by a caller's SET progress_bar_time, and only
        # the print setting keeps it silent then.
        con.execute("SET enable_progress_bar = false")
        con.execute("SET enable_progress_bar_print = false")
        try:
            con.execute(f"LOAD {quote(str(extension))}")
        except duckdb.Error as exc:
            raise ToolError(extension, f"DuckDB {duckdb.__version__} cannot load it "
                                       f"(a mismatched {_WHEEL}?): {exc}") from exc
        if identity is not None:
            _VERIFIED.add(identity)  # loaded: checked now, or known from a check before
        # SQLite's total() (a float sum that never overflows, 0.0 over no rows), so the
        # catalogue's aggregate SQL reads the same on both engines (stats, listen_match).
        con.execute("CREATE TEMP MACRO total(x) AS coalesce(CAST(sum(x) AS DOUBLE), 0.0)")
        attach(con, catalogue, CATALOGUE_ALIAS, read_only=not writable)
        try:
            # ATTACH is lazy: read the table list now, so a file that is not a
            # catalogue fails here and not in the middle of a stage.
            tables = {row[0] for row in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                [CATALOGUE_ALIAS]).fetchall()}
        except duckdb.Error as exc:
            if is_damaged(exc):
                raise damaged(catalogue, _first_line(exc)) from exc
            raise InputError(catalogue, f"DuckDB cannot read the catalogue: {exc}") from exc
        if "track" not in tables:
            raise damaged(catalogue, "no track table")
    except BaseException:
        con.close()
        raise
    interrupts.track(con)
    return con


def hand_back_memory(con: Connection, limit_bytes: int) -> None:
    """Return to the system the memory DuckDB keeps once its buffers are freed, for a
    process whose DuckDB work is done but which goes on (the publish's SQLite indexes);
    ``limit_bytes`` is the memory limit ``con`` runs under, set back afterwards.

    DuckDB allocates its buffers through its own jemalloc, which keeps freed pages until
    its next activity: during the publish's SQLite phase, with DuckDB idle and no buffer
    in use, 3 GiB stayed in the RSS beside SQLite's sorts (session 17, 10 M tracks).
    Lowering the limit evicts every unpinned buffer, and DuckDB then flushes its
    allocator (measured: 1.9 GB of RSS to 0.16 GB; ``SET threads`` to another count
    flushes too, but keeps cached blocks). Best effort: pinned buffers stay."""
    import duckdb

    try:
        con.execute(f"SET memory_limit = '{_MIN_MEMORY}B'")
    except duckdb.Error:
        pass  # more pinned than the minimum: what could be evicted was
    con.execute(f"SET memory_limit = '{limit_bytes}B'")


# Ctrl-C during a statement: every connection and cursor is registered with
# phonotheque.interrupts (one mechanism for DuckDB and SQLite; it says why DuckDB needs it:
# a task in one of DuckDB's worker threads ran on to its end otherwise).


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con.cursor()`` (a connection of its own to the same database, for another thread
    or a second statement at once), interrupted by Ctrl-C like ``con``."""
    return interrupts.track(con.cursor())


def remove_database(path: Path) -> None:
    """Delete a scratch database file (and DuckDB's ``.wal`` beside it), if present."""
    for file in (path, path.with_name(path.name + ".wal")):
        try:
            file.unlink(missing_ok=True)
        except OSError as exc:
            raise wrap_os_error(exc, file, writing=True) from exc


def attach_scratch(con: duckdb.DuckDBPyConnection, path: Path, alias: str, *,
                   in_memory: bool) -> None:
    """ATTACH a fresh scratch database for a stage's working tables as ``alias``: in
    memory, or the DuckDB file ``path`` (a file left by a killed run is removed first).

    In memory, tables are stored uncompressed and blocks past the memory limit spill to
    the temp directory as they are; in a file they are compressed as they are written.
    Compressing cost more than the statements that filled the tables (at 10 M tracks:
    a plain copy of 5 M track rows, 10.2 CPU s into a file against 2.3 s in memory), but
    at 100 M uncompressed tables would spill tens of GB: the caller chooses in memory
    when its tables fit the memory limit."""
    remove_database(path)
    if in_memory:
        con.execute(f"ATTACH ':memory:' AS {alias}")
    else:
        attach(con, path, alias)


def attach(con: duckdb.DuckDBPyConnection, path: Path, alias: str, *,
           read_only: bool = False) -> None:
    """ATTACH another file as ``alias``: a SQLite file (a scratch or output file, another
    catalogue) or, ending in ``.duckdb``, another columnar catalogue; writable unless
    ``read_only``."""
    import duckdb

    is_duckdb = Path(path).suffix == ".duckdb"
    options = [] if is_duckdb else ["TYPE sqlite"]
    if read_only:
        options.append("READ_ONLY")
    if is_duckdb:
        check_header(Path(path))
    try:
        con.execute(f"ATTACH {quote(str(path))} AS {alias}"
                    + (f" ({', '.join(options)})" if options else ""))
    except duckdb.Error as exc:
        raise _open_error(Path(path), exc, writing=not read_only, verb="attach") from exc
