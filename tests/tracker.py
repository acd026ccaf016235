"""A tiny HTTP BitTorrent tracker for tests: every announce gets the same peer list.

aria2c cannot be told a peer address on its command line, so the real-client tests
point it (``--bt-tracker``) at this tracker on 127.0.0.1, which names our seeder.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from phonotheque.torrent import bencode


class Tracker(ThreadingHTTPServer):
    peers: list[tuple[str, int]]
    announces: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/announce"


class _Announce(BaseHTTPRequestHandler):
    server: Tracker

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.announces += 1
        compact = b"".join(socket.inet_aton(h) + struct.pack(">H", p)
                           for h, p in self.server.peers)
        body = bencode({"interval": 30, "min interval": 5, "peers": compact})
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def tracker(peers: Sequence[tuple[str, int]] = ()) -> Iterator[Tracker]:
    """Run a tracker on 127.0.0.1 until the block ends; its ``peers`` may be changed meanwhile."""
    server = Tracker(("127.0.0.1", 0), _Announce)
    server.peers = list(peers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
