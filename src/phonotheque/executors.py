"""Run a pure per-item function on one machine or on a Dask cluster.

Heavy per-file work (audio encoding, hashing) is written as a pure function of
one picklable item that returns a picklable result and never touches the
catalogue. An :class:`Executor` runs such a function over an iterable of items
and yields results *as they complete* (not in input order); the caller — the
coordinator — alone writes the catalogue.

Three implementations share the interface:

* :class:`InlineExecutor` — in this process, one item at a time (debugging,
  tests that monkeypatch, ``--workers 0``);
* :class:`LocalExecutor` — a process pool sized to the machine's cores (default);
* :class:`DaskExecutor` — a ``distributed`` cluster (``--scheduler tcp://host:8786``).

Every implementation keeps only a bounded number of items in flight, so an
iterable of millions of items is consumed lazily and memory stays flat.

Running on several machines (shared storage)
--------------------------------------------
Every machine needs the same phonotheque version, ffmpeg, and the workspace and
source files mounted at the *same absolute paths* (NFS, CephFS, ...); workers
write archive files straight into the workspace, the coordinator alone writes
the catalogue::

    # scheduler (any machine)
    dask scheduler --port 8786
    # each worker machine: one single-threaded process per core (the work is
    # ffmpeg subprocesses + Python, so processes beat threads)
    dask worker tcp://SCHEDULER:8786 --nworkers auto --nthreads 1
    # the coordinator (where catalogue.sqlite lives; SQLite wants local disk)
    phono audio -w /shared/my-archive --scheduler tcp://SCHEDULER:8786
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from phonotheque.errors import InputError, PhonoError

T = TypeVar("T")
R = TypeVar("R")


class Executor:
    """Runs ``fn`` over ``items``; results come back in completion order."""

    #: how many items run at the same time (used to size in-flight windows and reports)
    workers: int = 1
    #: a short human description for reports ("local pool, 2 processes", ...)
    description: str = ""

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers and connections (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineExecutor(Executor):
    """Run every item in the calling process, in order."""

    def __init__(self) -> None:
        self.workers = 1
        self.description = "inline (this process)"

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        for item in items:
            yield fn(item)


def _worker_init() -> None:
    """Pool initializer: ignore Ctrl-C, and die with the coordinator.

    Ctrl-C reaches the whole process group; only the coordinator should react (it
    records what finished and stops). Ignored signals stay ignored across exec, so
    the ffmpeg a worker is running finishes its file instead of failing it.
    ``PR_SET_PDEATHSIG`` asks Linux to SIGKILL the worker when the coordinator dies:
    otherwise workers of a coordinator killed with SIGKILL would finish their item
    as orphans and race the re-run for the same output files.
    """
    import signal as _signal

    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: best effort only
        pass


class LocalExecutor(Executor):
    """A process pool on this machine (``workers`` defaults to the number of cores)."""

    def __init__(self, workers: int | None = None, *, window: int | None = None) -> None:
        n = workers if workers and workers > 0 else (os.cpu_count() or 1)
        self.workers = n
        self.window = window or 2 * n
        self.description = f"local pool, {n} process{'es' if n != 1 else ''}"
        # "spawn": workers start clean, without the coordinator's SQLite handle or
        # the progress bar's thread (forking a threaded process can deadlock).
        self._pool = cf.ProcessPoolExecutor(
            max_workers=n,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
        )

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        pending: set[cf.Future[R]] = set()
        it = iter(items)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.window:
                    try:
                        item = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    pending.add(self._pool.submit(fn, item))
                if not pending:
                    return
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        except BrokenProcessPool as exc:
            # A worker was killed (OOM killer, SIGKILL): stop; a re-run resumes. The pool
            # may say so from result() or, if it noticed first, from the next submit().
            raise PhonoError("local pool", f"a worker process died: {exc}") from exc
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """A Dask ``distributed`` cluster: ``DaskExecutor("tcp://host:8786")`` or an existing client.

    Workers must have phonotheque installed and see the same paths as the
    coordinator (shared storage): items carry absolute paths, and outputs are
    written by the workers straight into the workspace.
    """

    def __init__(
        self, address: str | None = None, *, client: Any = None, window: int | None = None
    ) -> None:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - distributed is a dependency
            raise PhonoError("dask", "the 'distributed' package is not installed") from exc
        self._own_client = client is None
        if client is None:
            if not address:
                raise InputError("--scheduler", "a Dask scheduler address is required")
            try:
                client = Client(address, timeout="20s")
            except OSError as exc:
                raise InputError(address, f"cannot reach the Dask scheduler: {exc}") from exc
        self.client = client
        threads = sum(self.client.nthreads().values()) or 1
        self.workers = threads
        self.window = window or 4 * threads
        self.description = f"dask {self.client.scheduler.address}, {threads} threads"

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        from distributed import as_completed

        it = iter(items)
        futures = []
        for item in it:
            futures.append(self.client.submit(fn, item, pure=False))
            if len(futures) >= self.window:
                break
        if not futures:
            return
        ac = as_completed(futures)
        try:
            for fut in ac:
                try:
                    result = fut.result()
                except Exception as exc:  # KilledWorker, lost connection, ...
                    raise PhonoError("dask", f"a task failed on the cluster: {exc!r}") from exc
                fut.release()
                # keep the window full: one new item for each finished one
                for item in it:
                    ac.add(self.client.submit(fn, item, pure=False))
                    break
                yield result
        finally:
            for fut in list(ac.futures):
                fut.cancel()

    def close(self) -> None:
        if self._own_client:
            self.client.close()


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor the CLI options ask for: Dask if ``scheduler``, inline if ``workers == 0``."""
    if scheduler:
        return DaskExecutor(scheduler)
    if workers == 0:
        return InlineExecutor()
    return LocalExecutor(workers)
