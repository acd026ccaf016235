"""read_ahead: an iterator run in a thread ahead of its consumer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from phonotheque.read_ahead import read_ahead


def _wait_until(cond, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.005)


def test_items_in_order_at_most_depth_ahead() -> None:
    made: list[int] = []

    def items() -> Iterator[int]:
        for i in range(100):
            made.append(i)
            yield i

    ahead = read_ahead(items(), 3)
    assert next(ahead) == 0
    _wait_until(lambda: len(made) >= 5)
    time.sleep(0.05)  # it would run on if nothing held it back
    # the caller's item, 3 in the queue, 1 made and waiting for room
    assert len(made) == 5, made
    assert list(ahead) == list(range(1, 100))


def test_an_error_in_the_thread_is_raised_where_its_item_would_come() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("line 3: broken")

    ahead = read_ahead(items(), 8)
    assert next(ahead) == 1 and next(ahead) == 2
    with pytest.raises(ValueError, match="line 3: broken"):
        next(ahead)


def test_a_caller_that_stops_stops_the_thread_and_discards_what_it_made() -> None:
    discarded: list[int] = []
    made: list[int] = []
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            for i in range(1000):
                made.append(i)
                yield i
        finally:
            closed.set()

    ahead = read_ahead(items(), 1, lockstep=True, discard=discarded.append)
    assert next(ahead) == 0
    _wait_until(lambda: len(made) >= 2)
    time.sleep(0.05)
    assert made == [0, 1]  # lockstep: one made ahead, no more
    ahead.close()
    assert closed.is_set()  # the source generator is closed too
    assert discarded == [1]  # made, never taken
    assert made == [0, 1]
    assert not [t for t in threading.enumerate() if t.name == "read-ahead" and t.is_alive()]
