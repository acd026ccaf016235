"""A least-recently-used cache of query answers, bounded by bytes, not entries.

Entries differ in size by orders of magnitude (a 404 against a search page of
100 tracks, or a track with a 4 KB title and 50 files), so a bound on their
number bounds nothing: 4,096 cached pages per kind took a worker from 60 MB to
1.7 GB. Each answer is measured by the size of its JSON, which is what the
server sends for it anyway; an answer larger than an eighth of the budget is
not kept at all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import orjson

T = TypeVar("T")


def json_size(value: Any) -> int:
    """Bytes of ``value`` as JSON (objects with ``as_dict()`` are measured through it)."""
    as_dict = getattr(value, "as_dict", None)
    return len(orjson.dumps(as_dict() if callable(as_dict) else value))


class ByteLRU(Generic[T]):
    """``get(key, compute)``: the cached answer, else ``compute()`` kept within ``max_bytes``."""

    def __init__(self, max_bytes: int, size: Callable[[Any], int] = json_size) -> None:
        self.max_bytes = max(0, max_bytes)
        self._size = size
        self._items: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit[0]
        value = compute()  # outside the lock: other threads keep answering meanwhile
        if self.max_bytes == 0:
            return value
        n = self._size(value) + 64  # the key and the bookkeeping
        if n > self.max_bytes // 8:
            return value
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[key] = (value, n)
            self.bytes += n
            while self.bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self.bytes -= dropped
        return value
