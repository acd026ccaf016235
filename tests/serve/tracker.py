"""A tiny HTTP BitTorrent tracker for tests: every announce gets the same fixed peer list.

aria2c cannot be told a peer address on its command line, so the real-client test
points it (``--bt-tracker``) at this tracker on 127.0.0.1, which names our seeder.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from phonotheque.pack import bencode


@contextmanager
def tracker(peers: list[tuple[str, int]]) -> Iterator[str]:
    compact = b"".join(socket.inet_aton(h) + struct.pack(">H", p) for h, p in peers)
    body = bencode.encode({"interval": 30, "min interval": 5, "peers": compact})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
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
