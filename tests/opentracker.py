"""Debian's opentracker on 127.0.0.1 for the swarm-health tests: a real tracker that
counts the real clients announcing to it and answers UDP (BEP 15) and HTTP (BEP 48)
scrapes. Debian builds it in whitelist mode, so the info-hashes it may track are
written to its whitelist before it starts."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from phonotheque.swarm.loopback import (
    free_port,  # one port picker: TCP and UDP free
    wait_whitelist,
)
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
    sentinel = os.urandom(20).hex()  # a hash only this tracker accepts
    listed = [h.lower() for h in hashes] + [sentinel]
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # run as root it reads the whitelist after dropping to nobody
    (folder / "whitelist").write_text("".join(f"{h}\n" for h in listed))
    port = port or free_port()
    proc = subprocess.Popen(
        [exe, "-i", "127.0.0.1", "-p", str(port), "-P", str(port), "-d", str(folder),
         "-w", "whitelist"],  # relative: opentracker chroots into folder first
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"opentracker did not start (exit {proc.poll()})") from None
                time.sleep(0.05)
        wait_whitelist(port, sentinel)  # the last line: all are read
        # Two trackers started at once by parallel tests could pick the same free port;
        # opentracker binds with SO_REUSEPORT, so both would run and share the traffic.
        # Only ours knows the sentinel: every probe must reach it.
        for _ in range(32):
            wait_whitelist(port, sentinel, timeout=0.0)
        yield OpenTracker(port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
