"""The health of an archive's own torrents on this machine alone (what `phono demo` shows).

Runs a private tracker (Debian's ``opentracker``) on 127.0.0.1 that accepts only the
archive's info-hashes, seeds the published torrents with our seeder announcing to
it, and scrapes it until the seeder is counted: every current torrent then shows
one seeder — the archive's own. Nothing leaves the loopback interface (no DHT, no
LSD, no UPnP), and the tracker and the seeder stop before this returns.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote_from_bytes

from phonotheque.catalogue import swarm as swarm_table
from phonotheque.errors import ToolError
from phonotheque.serve.seeder import Seeder, SeedOptions, find_published
from phonotheque.swarm.health import HealthOptions, HealthReport, check, info_hashes
from phonotheque.swarm.scrape import ScrapeOptions
from phonotheque.workspace import Workspace

TRACKER = "opentracker"


def available() -> bool:
    return shutil.which(TRACKER) is not None


def free_port() -> int:
    """A port free for TCP and UDP on 127.0.0.1 (opentracker serves both on one port)."""
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise ToolError(TRACKER, "no free port on 127.0.0.1")


def _wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise ToolError(TRACKER, f"exited with status {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise ToolError(TRACKER, f"not listening after {timeout:.0f} s") from None
            time.sleep(0.05)


def wait_whitelist(port: int, infohash: str | None, timeout: float = 10.0) -> None:
    """opentracker reads its whitelist in the background, line by line, after it starts
    listening: wait until it accepts ``infohash`` (give the file's last line), probing
    with a ``stopped`` announce (which adds no peer, so no count changes)."""
    if infohash is None:
        return
    url = (f"http://127.0.0.1:{port}/announce?info_hash="
           f"{quote_from_bytes(bytes.fromhex(infohash), safe='')}&peer_id=-PHPROBE-00000000000"
           "&port=1&uploaded=0&downloaded=0&left=0&event=stopped&compact=1")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if b"failure reason" not in r.read():
                    return
        except OSError as exc:
            raise ToolError(TRACKER, f"does not answer on 127.0.0.1:{port}: {exc}") from exc
        if time.monotonic() >= deadline:
            raise ToolError(TRACKER, f"does not accept {infohash} (whitelist not loaded in "
                                     f"{timeout:.0f} s, or another tracker shares the port)")
        time.sleep(0.05)


@contextmanager
def private_tracker(exe: str, folder: Path, hashes: Iterable[str],
                    port: int = 0) -> Iterator[int]:
    """Run opentracker on 127.0.0.1 (TCP and UDP on one ``port``; 0: a free one), tracking
    only ``hashes`` (hex, its whitelist in ``folder``); yield the port once every hash is
    accepted, and stop the tracker on leaving."""
    listed = [h.lower() for h in hashes]
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # run as root, opentracker reads its whitelist as nobody
    (folder / "whitelist").write_text("".join(f"{h}\n" for h in listed))
    port = port or free_port()
    proc = subprocess.Popen(
        [exe, "-i", "127.0.0.1", "-p", str(port), "-P", str(port), "-d", str(folder),
         "-w", "whitelist"],  # relative: opentracker chroots into the folder first
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_listening(proc, port, 10.0)
        wait_whitelist(port, listed[-1] if listed else None)  # the last line: all are read
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def loopback_health(ws: Workspace, timeout: float = 20.0) -> HealthReport:
    """Seed ``ws`` on 127.0.0.1 through a private tracker and record what it counts."""
    exe = shutil.which(TRACKER)
    if exe is None:
        raise ToolError(TRACKER, "not installed (Debian package opentracker; ./scripts/setup)")
    with ws.store() as store:
        targets = swarm_table.scrape_targets(store)
    current = {t.torrent_id for t in targets if not t.obsolete}
    items = find_published(ws.torrents, ws.publish)
    hashes = [h.hex() for t in targets for h in info_hashes(t)]
    with tempfile.TemporaryDirectory(prefix="phono-tracker-") as tmp, \
            private_tracker(exe, Path(tmp), hashes) as port:
        url = f"udp://127.0.0.1:{port}/announce"
        seed = SeedOptions(listen="127.0.0.1:0", dht=False, lsd=False, pex=False, utp=False,
                           trackers=(f"http://127.0.0.1:{port}/announce",))
        options = HealthOptions(trackers=(url,),
                                scrape=ScrapeOptions(timeout=0.5, retries=1, deadline=3.0))
        with Seeder(items, seed):
            deadline = time.monotonic() + timeout
            while True:
                report = check(ws, options)
                with ws.store() as store:
                    counted = {i for i, h in swarm_table.health(store.conn).items()
                               if h.seeders}
                if current <= counted or time.monotonic() > deadline:
                    return report
                time.sleep(0.3)
