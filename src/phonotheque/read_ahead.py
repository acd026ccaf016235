"""An iterator run in a thread, ahead of the code that consumes it.

Reading (parsing lines, decompressing, writing chunk files) overlaps with what the
consumer does with the previous items (SQLite or DuckDB statements), when both release
the GIL: on two cores, up to twice as fast. Memory stays bounded by how far ahead the
thread may run. The row-path ingest reads records this way, the columnar MusicBrainz
ingest its chunks.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


_END = object()

# The stop event of the read-ahead whose producer runs in this thread (see stopping()).
_local = threading.local()


class Stopped(Exception):
    """Raised by a producer that saw :func:`stopping`: nobody takes its items any more."""


def stopping() -> bool:
    """Whether the read-ahead whose producer runs in this thread was stopped: its caller
    stopped taking items (Ctrl-C, an error, closing it). The caller's cleanup waits for
    the producer to end, so a producer that works long between two items (the SQLite
    engine's mbdump load: no record until every table is loaded, minutes at MusicBrainz's
    size) checks this and raises :class:`Stopped`, instead of making the caller wait."""
    stop: threading.Event | None = getattr(_local, "stop", None)
    return stop is not None and stop.is_set()


def read_ahead(items: Iterator[T], depth: int, *, lockstep: bool = False,
               discard: Callable[[T], None] | None = None,
               name: str = "read-ahead") -> Generator[T, None, None]:
    """``items``, produced in a thread up to ``depth`` items ahead of the caller.

    ``lockstep``: the thread makes the next item only once the caller has taken the one
    before, so that besides the caller's item at most one more exists (items that hold
    much memory). ``discard`` is called on items made but never taken, when the caller
    stops early (closing the generator, or an exception). The thread's exceptions are
    raised here, where the item they stopped would have come.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        _local.stop = stop
        try:
            for item in items:
                q.put(item)
                if lockstep:
                    q.join()  # taken: make the next one
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            q.put(_Failed(exc))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            got = q.get()
            q.task_done()
            if got is _END:
                return
            if isinstance(got, _Failed):
                raise got.error
            yield got  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                left = q.get_nowait()
                q.task_done()
                if discard is not None and left is not _END and not isinstance(left, _Failed):
                    discard(left)  # type: ignore[arg-type]
            except queue.Empty:
                thread.join(0.01)
        if isinstance(items, Generator):
            items.close()
