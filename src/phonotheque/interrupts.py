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

The handler is installed only while a registered connection is open, only from the main
thread and only over Python's default handler: a SIGINT ignored (a background job) or
handled by someone else (uvicorn, asyncio, `phono seed`) is left alone, and the default
handler is put back when the last connection goes away (asyncio.run looks for it).
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
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

_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()
# Held while interrupting, and by close() around a close from another thread: interrupt()
# on a connection another thread is closing (with the GIL released) is not safe.
_LOCK = threading.RLock()

C = TypeVar("C")


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


@contextmanager
def helpers(max_workers: int) -> Iterator[ThreadPoolExecutor]:
    """A thread pool whose jobs stop with the block: when the block raises (Ctrl-C, an
    error), jobs not started are cancelled and the registered connections' statements
    interrupted, again every :data:`_POLL_SECONDS` (a job may start its next statement
    after one), until the running jobs end; then the block's exception goes on. A job's
    connection must be registered (:func:`track`, :func:`sqlite_connect`) for its
    statement to stop. Without an exception, the jobs end as in ``ThreadPoolExecutor``."""
    futures: list[Future[Any]] = []
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        submit = pool.submit

        def submitted(*args: Any, **kwargs: Any) -> Future[Any]:
            future = submit(*args, **kwargs)
            futures.append(future)
            return future

        pool.submit = submitted  # type: ignore[method-assign]
        try:
            yield pool
        except BaseException:
            for future in futures:
                future.cancel()
            while not all(f.done() for f in futures):
                interrupt_all()
                wait(futures, timeout=_POLL_SECONDS)
            raise
