"""Ctrl-C stops the database statement that runs, whichever engine and thread runs it.

One mechanism for DuckDB and SQLite connections alike: while a connection registered
here (:func:`track`, :func:`sqlite_connect`) is open, a SIGINT handled by Python's
default handler first calls ``interrupt()`` on every such connection, then does what
:func:`signal.default_int_handler` does (raise KeyboardInterrupt). ``interrupt()`` is safe
from another thread on both engines, so a statement running in a helper thread stops
too, and a pool of such threads (:func:`helpers`) does not wait for a job's statement to
run to its end. Library code here never prints or exits: a CLI command maps what an
interrupted statement raises (:func:`is_interruption`) to "interrupted", exit 130.

Why each part is needed:

- DuckDB's Python client (1.4.4) runs the signal handler during a statement (its loop
  calls PyErr_CheckSignals) and raises RuntimeError("Query interrupted") at once, but a
  task of that statement in one of DuckDB's worker threads ran on to its end unless
  ``interrupt()`` was called, and the next use of the connection waited for it.
- Python's sqlite3 module does not check for signals during a statement: Python runs a
  signal handler only when the statement returns (a ``CREATE INDEX`` over 10 M rows:
  3-17 s). A connection opened by :func:`sqlite_connect` in the main thread has a
  progress handler, a Python function SQLite calls every :data:`_TICK_OPS` virtual
  machine instructions: Python runs a pending signal handler when that function is
  entered, the handler interrupts the connection, and the statement stops with
  ``sqlite3.OperationalError("interrupted")``.
- A statement in a helper thread is not stopped by a KeyboardInterrupt in the main
  thread at all (``ThreadPoolExecutor.__exit__``, and Python's exit, wait for the thread).
- SQLite checks for an interruption between two virtual machine instructions only, and
  some instructions run long: the sort of a ``CREATE INDEX`` (OP_SorterSort, checked on
  SQLite 3.40.1: ``interrupt()`` during it returns only when it ends; 13-17 s at 10 M
  tracks), FTS5's 'optimize'. No statement can be cut there, so a statement that may run
  such an instruction runs in a helper thread (:func:`helpers`, :func:`run`) the caller
  waits on: on Ctrl-C the caller interrupts it, waits a moment (:data:`_GRACE_SECONDS`)
  for it to end and otherwise leaves it behind. Helper threads are daemon threads, so
  Python's exit does not wait for one left inside ``sqlite3_step`` (CPython ends such a
  thread when it asks for the GIL back during finalisation); a process that goes on
  instead has the thread end when its statement's instruction ends (interrupted, its
  connection closed by the job).

The handler is installed only while a registered connection is open, only from the main
thread and only over Python's default handler: a SIGINT ignored (a background job) or
handled by someone else (uvicorn, asyncio, `phono seed`) is left alone, and the default
handler is put back when the last connection goes away (asyncio.run looks for it).
"""

from __future__ import annotations

import queue
import signal
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from typing import Any, TypeVar

_SQLITE_INTERRUPT = 9  # SQLite's result code for an interrupted statement

#: SQLite virtual machine instructions between two calls of the progress handler of a
#: main-thread connection: a Python call every ~0.1-1 ms of a statement (no measurable
#: cost), so Ctrl-C stops it within that much. A single instruction that runs long (the
#: merge of a sort, FTS5's 'optimize') is not cut: SQLite checks between instructions.
_TICK_OPS = 10_000
#: How often :func:`helpers` interrupts the connections again while its jobs end.
_POLL_SECONDS = 0.05
#: How long :func:`helpers` waits, after a Ctrl-C or an error, for its jobs' interrupted
#: statements to end before it leaves the jobs still running behind (one inside a long
#: SQLite instruction, see the module). An interrupted statement stops far sooner
#: otherwise, and a job that ends in time closes its connections before the caller's
#: cleanup (the removal of a temporary database) runs.
_GRACE_SECONDS = 0.5
#: The same for :func:`run`, whose job uses SQLite only (an interrupted SQLite statement
#: stops at its next instruction; a DuckDB job gets the longer wait above, and one left
#: running into Python's exit was never tried).
_RUN_GRACE_SECONDS = 0.1

_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()
# Held while interrupting, and by close() around a close from another thread: interrupt()
# on a connection another thread is closing (with the GIL released) is not safe.
_LOCK = threading.RLock()

C = TypeVar("C")
R = TypeVar("R")


def interrupt_all() -> None:
    """Interrupt the statement of every open registered connection (from any thread)."""
    with _LOCK:
        for con in list(_OPEN):
            try:
                con.interrupt()
            except Exception:  # noqa: BLE001 - closed already (duckdb.Error, sqlite3.Error)
                pass


def _on_sigint(signum: int, frame: Any) -> None:
    interrupt_all()
    signal.default_int_handler(signum, frame)


def track(con: C) -> C:
    """Have a SIGINT interrupt ``con``'s statements while it exists; return ``con``."""
    with _LOCK:
        _OPEN.add(con)
    weakref.finalize(con, _untrack).atexit = False
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _on_sigint)
    return con


def _untrack() -> None:
    # A connection went away: once none is left, Python's default handler goes back (from
    # the main thread only; one dropped in another thread leaves it to the next).
    if (next(iter(_OPEN), None) is None
            and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is _on_sigint):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def close(con: Any) -> None:
    """``con.close()`` for a registered connection closed in a thread other than the main
    one while the main thread may interrupt it (the main thread's own ``close()`` needs
    no care: Python runs the SIGINT handler between its statements, not during one)."""
    with _LOCK:
        _OPEN.discard(con)
        con.close()
    _untrack()


class _SQLiteConnection(sqlite3.Connection):
    """A sqlite3 connection that can be registered (sqlite3.Connection itself takes no
    weak reference) and leaves the registry when closed."""

    def close(self) -> None:
        with _LOCK:
            _OPEN.discard(self)
            super().close()
        _untrack()


def _tick() -> int:
    # Nothing to do: entering a Python function is where Python runs a pending signal
    # handler (_on_sigint), which interrupts this connection's statement.
    return 0


def sqlite_connect(database: Any, **kwargs: Any) -> sqlite3.Connection:
    """``sqlite3.connect(database, **kwargs)``, registered: Ctrl-C interrupts its
    statements (in the main thread through a progress handler, see the module)."""
    conn = sqlite3.connect(database, factory=_SQLiteConnection, **kwargs)
    if threading.current_thread() is threading.main_thread():
        conn.set_progress_handler(_tick, _TICK_OPS)
    return track(conn)


def is_interruption(exc: BaseException) -> bool:
    """Whether ``exc`` is what a Ctrl-C raises: KeyboardInterrupt, DuckDB's
    InterruptException, SQLite's "interrupted" (a statement this module interrupted), or
    any error raised from one of these (DuckDB's RuntimeError("Query interrupted"), a
    library's error wrapping an interrupted statement): an interruption, never a
    storage error."""
    duckdb = sys.modules.get("duckdb")  # never imported here: only if a stage used it
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, KeyboardInterrupt):
            return True
        if isinstance(cause, sqlite3.OperationalError):
            code = getattr(cause, "sqlite_errorcode", None)
            if isinstance(code, int) and code & 0xFF == _SQLITE_INTERRUPT:
                return True
        if duckdb is not None and isinstance(cause, duckdb.InterruptException):
            return True
        cause = cause.__cause__
    return False


class Helpers:
    """What :func:`helpers` yields: ``submit`` as ``ThreadPoolExecutor.submit`` (a
    :class:`~concurrent.futures.Future`, at most ``max_workers`` jobs at once, in the order
    submitted), but in daemon threads: Python's exit does not wait for a job left behind
    (ThreadPoolExecutor's threads it joins, whatever they run)."""

    def __init__(self, max_workers: int) -> None:
        self._max_workers = max_workers
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = 0
        self.futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        future: Future[R] = Future()
        self.futures.append(future)
        self._jobs.put((future, fn, args, kwargs))
        if self._threads < self._max_workers:
            self._threads += 1
            threading.Thread(target=self._work, name=f"phono-helper-{self._threads}",
                             daemon=True).start()
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args, kwargs = job
            del job
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - the caller's, through the Future
                    future.set_exception(exc)
                else:
                    future.set_result(result)
                    del result
            del future, fn, args, kwargs

    def _shutdown(self) -> None:
        for _ in range(self._threads):
            self._jobs.put(None)


def _stop(futures: list[Future[Any]], grace: float) -> None:
    """Cancel the jobs not started and interrupt the registered connections, again every
    :data:`_POLL_SECONDS`, until the running jobs end or ``grace`` seconds pass."""
    for future in futures:
        future.cancel()
    deadline = time.monotonic() + grace
    while not all(f.done() for f in futures):
        left = deadline - time.monotonic()
        if left <= 0:
            return  # left behind: see the module
        interrupt_all()
        wait(futures, timeout=min(_POLL_SECONDS, left))


@contextmanager
def helpers(max_workers: int, *, grace: float = _GRACE_SECONDS) -> Iterator[Helpers]:
    """A pool of helper threads whose jobs stop with the block: when the block raises
    (Ctrl-C, an error), jobs not started are cancelled and the registered connections'
    statements interrupted, again every :data:`_POLL_SECONDS` (a job may start its next
    statement after one), until the running jobs end, or for ``grace`` seconds at most
    (:data:`_GRACE_SECONDS`): a job whose statement runs one long SQLite instruction is
    left behind (see the module); then the block's exception goes on. A job's connection
    must be registered (:func:`track`, :func:`sqlite_connect`) for its statement to stop.
    Without an exception, the block ends when its jobs have ended, as
    ``ThreadPoolExecutor``'s."""
    pool = Helpers(max_workers)
    try:
        yield pool
        wait(pool.futures)  # interruptible (a lock's wait): a Ctrl-C here stops them too
    except BaseException:
        _stop(pool.futures, grace)
        raise
    finally:
        pool._shutdown()


def run(fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)`` in a helper thread the caller waits on: a Ctrl-C stops it
    as in :func:`helpers`, within :data:`_RUN_GRACE_SECONDS` even during a long SQLite
    instruction (the caller's wait is what Ctrl-C interrupts). For work on a SQLite
    database that may run such an instruction (CREATE INDEX, FTS5's 'optimize'): ``fn``
    opens (:func:`sqlite_connect`), uses and closes its connection itself, in its
    thread, so that a connection left behind is never closed under it; it uses no DuckDB
    connection."""
    with helpers(1, grace=_RUN_GRACE_SECONDS) as pool:
        return pool.submit(fn, *args, **kwargs).result()
