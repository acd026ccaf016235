"""`phono health` against a real tracker (opentracker) and real libtorrent peers on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote_from_bytes

import orjson
import pytest

from phonotheque.catalogue import swarm as swarm_table
from phonotheque.pack.packer import PackOptions
from phonotheque.publish.waves import ReleaseOptions, release
from phonotheque.serve.seeder import Seeder, SeedOptions, find_published
from phonotheque.swarm.health import HealthOptions, check
from phonotheque.swarm.loopback import free_port
from phonotheque.swarm.scrape import Counts, ScrapeError, ScrapeOptions, scrape
from phonotheque.workspace import Workspace
from tests.opentracker import opentracker
from tests.publish.archive import make_archive
from tests.swarm.clients import Peer

LOCAL = SeedOptions(listen="127.0.0.1:0", dht=False, lsd=False, pex=False, utp=False)
FAST = ScrapeOptions(timeout=0.3, retries=1, deadline=2.0)


def released(ws: Workspace, data: Path, trackers: tuple[str, ...]) -> list[swarm_table.ScrapeTarget]:
    make_archive(ws, data)
    release(ws, ReleaseOptions(pack_options=PackOptions(max_files=3, trackers=trackers)))
    with ws.store() as store:
        return swarm_table.scrape_targets(store)


def hashes(targets: list[swarm_table.ScrapeTarget]) -> list[str]:
    return [h for t in targets for h in (t.infohash_v1, (t.infohash_v2 or "")[:40]) if h]


def index(ws: Workspace) -> dict[str, dict[str, object]]:
    return {e["display_name"]: e for e in orjson.loads((ws.publish / "torrents.json").read_bytes())}


def test_counts_are_those_real_clients_produce(ws: Workspace, data: Path, tmp_path: Path) -> None:
    port = free_port()
    announce = f"http://127.0.0.1:{port}/announce"
    targets = released(ws, data, (announce,))
    assert len(targets) >= 4
    # never scraped: the index says so with nulls
    before = index(ws)
    assert all(e["seeders"] is None and e["stats_scraped_at"] is None for e in before.values())
    with opentracker(tmp_path / "ot", hashes(targets), port) as ot:
        items = find_published(ws.torrents, ws.publish)
        band = next(i for i in items if "band" in i.torrent.name or "__" in i.torrent.name)
        with Seeder(items, LOCAL) as seeder:
            seeder.wait_ready()
            with Peer(band.torrent, tmp_path / "down") as downloader, \
                    Peer(band.torrent, tmp_path / "empty", upload_mode=True):
                downloader.wait_seeding(30)
                report = _wait_counts(ws, ot.udp, ot.http, band.torrent.stem, (2, 1, 1))
    assert [t.error for t in report.trackers] == [None, None]
    assert report.scraped == report.torrents == len(targets)
    after = index(ws)
    e = after[band.torrent.stem]
    assert (e["seeders"], e["leechers"], e["completed"]) == (2, 1, 1)
    assert e["stats_scraped_at"] == report.scraped_at
    others = [v for k, v in after.items() if k != band.torrent.stem]
    assert {(v["seeders"], v["leechers"]) for v in others} == {(1, 0)}  # our seeder alone


def _wait_counts(ws: Workspace, udp: str, http: str, name: str,
                 want: tuple[int, int, int]) -> object:
    """Scrape until the tracker has seen every announce (clients announce asynchronously)."""
    deadline = time.monotonic() + 30
    while True:
        report = check(ws, HealthOptions(trackers=(udp, http), scrape=FAST))
        e = index(ws)[name]
        others_seeded = all(v["seeders"] == 1 for k, v in index(ws).items() if k != name)
        if (e["seeders"], e["leechers"], e["completed"]) == want and others_seeded:
            return report
        if time.monotonic() > deadline:
            raise AssertionError(f"tracker counts for {name}: {e}")
        time.sleep(0.3)


# -- trackers that fail ------------------------------------------------------------------------


@contextmanager
def udp_server(answer: bytes | None) -> Iterator[str]:
    """A UDP 'tracker' on 127.0.0.1 answering every packet with ``answer`` (None: silence)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                _, addr = sock.recvfrom(2048)
            except TimeoutError:
                continue
            if answer is not None:
                sock.sendto(answer, addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"udp://127.0.0.1:{sock.getsockname()[1]}/announce"
    finally:
        stop.set()
        thread.join()
        sock.close()


@contextmanager
def http_garbage() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"<html>not a tracker</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/announce"
    finally:
        server.shutdown()
        server.server_close()


def _announce(port: int, h: bytes, i: int) -> None:
    url = (f"http://127.0.0.1:{port}/announce?info_hash={quote_from_bytes(h, safe='')}"
           f"&peer_id=-PH0001-{i:012d}&port={10000 + i}&uploaded=0&downloaded=0"
           f"&left={0 if i % 2 else 1000}&compact=1")
    with urllib.request.urlopen(url, timeout=5) as r:
        body = r.read()
    assert b"failure reason" not in body, (i, h.hex(), body)


@contextmanager
def tcp_garbage() -> Iterator[str]:
    """A TCP server that answers every connection with bytes that are not HTTP."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"\x00\xffSSH-2.0-not-a-tracker\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/announce"
    finally:
        stop.set()
        thread.join()
        server.close()


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_failing_trackers_get_a_line_and_do_not_stop_the_others(
    ws: Workspace, data: Path, tmp_path: Path
) -> None:
    port = free_port()
    targets = released(ws, data, (f"udp://127.0.0.1:{port}/announce",))
    closed = closed_port()
    with opentracker(tmp_path / "ot", hashes(targets), port) as ot, \
            udp_server(b"\x00garbage, not BEP 15\x00" * 3) as udp_garbage, \
            udp_server(None) as silent, http_garbage() as web_garbage, \
            tcp_garbage() as not_http:
        bad = {
            f"udp://127.0.0.1:{closed}/announce": "refused",
            f"http://127.0.0.1:{closed}/announce": "refused",
            udp_garbage: "garbage",
            web_garbage: "garbage",
            not_http: "garbage",
            silent: "timed out",
            "http://127.0.0.1:9/not-an-announce-path": "cannot scrape",
        }
        t0 = time.monotonic()
        report = check(ws, HealthOptions(trackers=(*bad, ot.udp), scrape=FAST))
        took = time.monotonic() - t0
    # no hang: trackers are asked in parallel, each within its own deadline (generous
    # margins: the test machine's 2 cores are often shared by a dozen processes)
    assert took < 3 * FAST.deadline
    assert all(t.seconds < FAST.deadline + 1.0 for t in report.trackers)
    errors = {t.url: t.error for t in report.trackers}
    for url, word in bad.items():
        assert word in (errors[url] or ""), (url, errors[url])
    assert errors[ot.udp] is None
    assert report.scraped == len(targets)  # the good tracker's answers were all recorded
    assert all(e["stats_scraped_at"] for e in index(ws).values())


def test_many_hashes_per_request_and_unknown_hashes(tmp_path: Path) -> None:
    known = [bytes([i]) * 20 for i in range(1, 201)]  # 200 hashes: 3 UDP packets, 4 HTTP requests
    with opentracker(tmp_path / "ot", [h.hex() for h in known]) as ot:
        for i, h in enumerate(known[:150]):  # a seeder (odd) or a leecher (even) each
            _announce(ot.port, h, i)
        for url in (ot.udp, ot.http):
            batches: list[int] = []
            got = scrape(url, known, FAST, on_batch=batches.append)
            assert sum(batches) == 200 and len(batches) == (3 if url.startswith("udp") else 4)
            for i, h in enumerate(known[:150]):
                assert (got[h].seeders, got[h].leechers) == ((1, 0) if i % 2 else (0, 1))
            # swarms the tracker never saw: zeros over UDP, left out over HTTP
            assert all(got.get(h, Counts(0, 0, 0)) == Counts(0, 0, 0) for h in known[150:])
        with pytest.raises(ScrapeError, match="20"):
            scrape(ot.udp, [b"short"], FAST)


def test_loopback_health_counts_the_archives_own_seeder(ws: Workspace, data: Path) -> None:
    """What `phono demo` shows: a private tracker and our seeder on 127.0.0.1."""
    from phonotheque.swarm.loopback import loopback_health
    from tests.opentracker import require_opentracker

    require_opentracker()
    targets = released(ws, data, ())  # torrents naming no tracker, like the demo's
    report = loopback_health(ws)
    assert [t.error for t in report.trackers] == [None]
    current = [e for e in index(ws).values() if not e["obsolete"]]
    assert len(current) == len([t for t in targets if not t.obsolete])
    assert {e["seeders"] for e in current} == {1}


def test_cli_says_which_tracker_failed_and_exits_10(ws: Workspace, data: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    targets = released(ws, data, ())
    closed = closed_port()
    with opentracker(tmp_path / "ot", hashes(targets)) as ot:
        r = subprocess.run(
            [sys.executable, "-c", "from phonotheque.cli import main; main()", "health",
             "-w", str(ws.root), "--tracker", ot.udp, "--tracker",
             f"udp://127.0.0.1:{closed}/announce", "--timeout", "0.3", "--retries", "1"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 10, r.stderr
    assert f"failed udp://127.0.0.1:{closed}/announce: connection refused" in r.stdout
    assert f"ok    {ot.udp}: {len(targets)}/{len(targets)} torrents" in r.stdout
    assert "Traceback" not in r.stderr
    assert all(e["seeders"] == 0 for e in index(ws).values())


@pytest.mark.parametrize("url", [
    "udp://127.0.0.1:notaport/announce", "udp://127.0.0.1:99999/announce", "udp:///announce",
    "http://127.0.0.1:1/announce extra", "ftp://127.0.0.1/announce", "announce", "",
])  # fmt: skip
def test_malformed_tracker_urls_are_clear_errors(url: str) -> None:
    with pytest.raises(ScrapeError) as exc:
        scrape(url, [b"\x01" * 20], FAST)
    assert url in str(exc.value)
