"""Debian's opentracker on 127.0.0.1 for the swarm-health tests: a real tracker that
counts the real clients announcing to it and answers UDP (BEP 15) and HTTP (BEP 48)
scrapes. Debian builds it in whitelist mode, so the info-hashes it may track are
written to its whitelist before it starts."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from phonotheque.swarm.loopback import private_tracker, wait_whitelist
from tests.require import require_tool


@dataclass(frozen=True)
class OpenTracker:
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/announce"

    @property
    def udp(self) -> str:
        return f"udp://127.0.0.1:{self.port}/announce"


def require_opentracker() -> str:
    return require_tool("opentracker")


@contextmanager
def opentracker(folder: Path, hashes: Iterable[str], port: int = 0) -> Iterator[OpenTracker]:
    """Run opentracker on 127.0.0.1 (TCP and UDP, same ``port``, 0: a free one) tracking
    ``hashes`` (hex)."""
    exe = require_opentracker()
    sentinel = os.urandom(20).hex()  # a hash only this tracker accepts: the whitelist's last
    with private_tracker(exe, folder, [*hashes, sentinel], port) as port:
        # Two trackers started at once by parallel tests could pick the same free port;
        # opentracker binds with SO_REUSEPORT, so both would run and share the traffic.
        # Only ours knows the sentinel: every probe must reach it.
        for _ in range(32):
            wait_whitelist(port, sentinel, timeout=0.0)
        yield OpenTracker(port)
