"""Ask one BitTorrent tracker for swarm counts: UDP scrape (BEP 15) and HTTP scrape (BEP 48).

Written here rather than taken from a library, because nothing available fits:

* libtorrent's ``torrent_handle.scrape_tracker()`` scrapes one torrent per request,
  only for a torrent added to a session (which then announces itself and joins the
  very swarm it counts), and its ``scrape_reply_alert`` has no ``downloaded`` count;
* the scrape packages on PyPI (``scrapeer``, ``tracker-scraper``, ``bt-tracker-utils``)
  are one-person projects with few releases and no typed API; a dependency for
  about two hundred lines of two small, frozen protocols is not worth its risk.

Both protocols take many info-hashes per request: up to 74 in one UDP packet
(BEP 15), and a repeated ``info_hash`` parameter over HTTP (BEP 48; we send 50 per
request to keep the URL short). Every request has a timeout, is retried with
doubling waits, and a tracker that never answers, answers garbage or refuses
raises :class:`ScrapeError` naming the tracker; it never blocks past its deadline.
"""

from __future__ import annotations

import http.client
import os
import socket
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote_from_bytes, urlsplit, urlunsplit

from phonotheque.errors import PhonoError
from phonotheque.torrent import bdecode

UDP_BATCH = 74  # BEP 15: "Up to about 74 torrents can be scraped at once"
HTTP_BATCH = 50
_UDP_MAGIC = 0x41727101980
_CONNECT, _SCRAPE, _ERROR = 0, 2, 3
_CONNECTION_TTL = 55.0  # BEP 15: a connection id is valid for one minute
_MAX_BODY = 16 * 2**20


class ScrapeError(PhonoError):
    """A tracker could not be scraped (unreachable, timed out, refused, garbage)."""


@dataclass(frozen=True, slots=True)
class Counts:
    """What a tracker knows of one swarm."""

    seeders: int
    leechers: int
    completed: int  # finished downloads the tracker has seen ("downloaded")


@dataclass(frozen=True, slots=True)
class ScrapeOptions:
    timeout: float = 3.0  # seconds for one request's first try
    retries: int = 2  # extra tries per request, each waiting twice as long
    deadline: float = 30.0  # seconds for one tracker in all


def scrape_url(announce: str) -> str | None:
    """The scrape URL of an announce URL, or None if the tracker cannot scrape.

    UDP trackers scrape at the same address. HTTP(S) trackers scrape where the last
    path component ``announce`` becomes ``scrape`` (BEP 48); any other path means the
    tracker does not support scraping.
    """
    parts = urlsplit(announce)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    if parts.scheme == "udp":
        return announce if parts.hostname and port else None
    if parts.scheme not in ("http", "https"):
        return None
    head, _, last = parts.path.rpartition("/")
    if not last.startswith("announce"):
        return None
    return urlunsplit(parts._replace(path=f"{head}/scrape{last[len('announce'):]}"))


def scrape(
    url: str, hashes: Sequence[bytes], options: ScrapeOptions | None = None,
    on_batch: Callable[[int], object] | None = None,
) -> dict[bytes, Counts]:
    """Counts per 20-byte info-hash from the tracker at announce ``url``.

    Hashes the tracker does not know are absent from the answer (HTTP) or come
    back as zeros (UDP). Raises :class:`ScrapeError` for anything else.
    """
    options = options or ScrapeOptions()
    for h in hashes:
        if len(h) != 20:
            raise ScrapeError(url, f"info-hash of {len(h)} bytes (need 20: v1, or v2 truncated)")
    target = scrape_url(url)
    if target is None:
        raise ScrapeError(url, "tracker cannot scrape (BEP 48 needs a path ending in /announce)")
    if urlsplit(url).scheme == "udp":
        return _UDPScraper(url, options).scrape(hashes, on_batch)
    return _http_scrape(target, url, hashes, options, on_batch)


# -- UDP (BEP 15) -----------------------------------------------------------------------------


class _UDPScraper:
    def __init__(self, url: str, options: ScrapeOptions) -> None:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        self.url = url
        self.options = options
        self.address = (parts.hostname, parts.port)
        self.deadline = time.monotonic() + options.deadline
        self.connection: tuple[int, float] | None = None  # (id, obtained at)

    def scrape(self, hashes: Sequence[bytes],
               on_batch: Callable[[int], object] | None) -> dict[bytes, Counts]:
        try:
            family, _, _, _, sockaddr = socket.getaddrinfo(
                *self.address, type=socket.SOCK_DGRAM)[0]
        except (OSError, UnicodeError) as exc:
            raise ScrapeError(self.url, f"cannot resolve host: {exc}") from exc
        out: dict[bytes, Counts] = {}
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect(sockaddr)
            except OSError as exc:
                raise ScrapeError(self.url, f"unreachable: {exc.strerror or exc}") from exc
            for start in range(0, len(hashes), UDP_BATCH):
                batch = list(hashes[start:start + UDP_BATCH])
                counts = self._scrape_batch(sock, batch)
                out.update(zip(batch, counts, strict=True))
                if on_batch is not None:
                    on_batch(len(batch))
        return out

    def _scrape_batch(self, sock: socket.socket, batch: list[bytes]) -> list[Counts]:
        connection = self._connection(sock)
        tid = _transaction_id()
        body = self._exchange(sock, struct.pack(">qii", connection, _SCRAPE, tid) + b"".join(batch),
                              tid, _SCRAPE)
        if len(body) < 12 * len(batch):
            raise ScrapeError(self.url, f"short scrape reply: {len(body)} bytes for "
                                        f"{len(batch)} info-hashes")
        return [Counts(seeders=s, completed=c, leechers=lch)
                for s, c, lch in struct.iter_unpack(">iii", body[:12 * len(batch)])]

    def _connection(self, sock: socket.socket) -> int:
        now = time.monotonic()
        if self.connection is not None and now - self.connection[1] < _CONNECTION_TTL:
            return self.connection[0]
        tid = _transaction_id()
        body = self._exchange(sock, struct.pack(">qii", _UDP_MAGIC, _CONNECT, tid), tid, _CONNECT)
        if len(body) < 8:
            raise ScrapeError(self.url, f"short connect reply ({len(body)} bytes)")
        self.connection = (struct.unpack(">q", body[:8])[0], now)
        return self.connection[0]

    def _exchange(self, sock: socket.socket, packet: bytes, tid: int, action: int) -> bytes:
        """Send ``packet`` until a reply with our transaction id arrives; return its body."""
        wait = self.options.timeout
        last = "no answer"
        for _attempt in range(self.options.retries + 1):
            left = self.deadline - time.monotonic()
            if left <= 0:
                break
            try:
                sock.send(packet)
            except OSError as exc:
                raise ScrapeError(self.url, f"unreachable: {exc.strerror or exc}") from exc
            until = time.monotonic() + min(wait, left)
            while (remaining := until - time.monotonic()) > 0:
                sock.settimeout(remaining)
                try:
                    reply = sock.recv(2048)
                except TimeoutError:
                    break
                except ConnectionRefusedError as exc:  # ICMP port unreachable
                    raise ScrapeError(self.url, "connection refused (nothing listens there)") \
                        from exc
                except OSError as exc:
                    raise ScrapeError(self.url, f"unreachable: {exc.strerror or exc}") from exc
                if len(reply) < 8:
                    last = f"garbage reply ({len(reply)} bytes)"
                    continue
                got_action, got_tid = struct.unpack(">ii", reply[:8])
                if got_tid != tid:
                    last = "reply with a foreign transaction id (garbage?)"
                    continue  # a late answer to an earlier try, or noise
                if got_action == _ERROR:
                    message = reply[8:200].decode("utf-8", "replace")
                    raise ScrapeError(self.url, f"tracker refused: {message}")
                if got_action != action:
                    raise ScrapeError(self.url, f"garbage reply (action {got_action}, "
                                                f"expected {action})")
                return reply[8:]
            wait *= 2
        raise ScrapeError(self.url, f"timed out ({last} after {self.options.retries + 1} tries)")


def _transaction_id() -> int:
    return struct.unpack(">i", os.urandom(4))[0]


# -- HTTP (BEP 48) ----------------------------------------------------------------------------


def _http_scrape(
    target: str, url: str, hashes: Sequence[bytes], options: ScrapeOptions,
    on_batch: Callable[[int], object] | None,
) -> dict[bytes, Counts]:
    deadline = time.monotonic() + options.deadline
    out: dict[bytes, Counts] = {}
    sep = "&" if urlsplit(target).query else "?"
    for start in range(0, len(hashes), HTTP_BATCH):
        batch = hashes[start:start + HTTP_BATCH]
        query = "&".join(f"info_hash={quote_from_bytes(h, safe='')}" for h in batch)
        body = _http_get(f"{target}{sep}{query}", url, options, deadline)
        out.update(_parse_http(body, url, set(batch)))
        if on_batch is not None:
            on_batch(len(batch))
    return out


def _http_get(full: str, url: str, options: ScrapeOptions, deadline: float) -> bytes:
    wait = options.timeout
    last = "no answer"
    for attempt in range(options.retries + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            request = urllib.request.Request(full, headers={"User-Agent": "Phonotheque-health"})
            with urllib.request.urlopen(request, timeout=min(wait, left)) as response:
                return bytes(response.read(_MAX_BODY))
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # the tracker answered: retrying will not change its mind
                raise ScrapeError(url, f"HTTP {exc.code} {exc.reason}") from exc
            last = f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ConnectionRefusedError):
                raise ScrapeError(url, "connection refused (nothing listens there)") from exc
            last = str(reason)
        except (TimeoutError, OSError) as exc:
            last = str(exc) or type(exc).__name__
        except (ValueError, http.client.InvalidURL) as exc:  # retrying cannot help
            raise ScrapeError(url, f"not a usable URL: {exc}") from exc
        except http.client.HTTPException as exc:  # BadStatusLine & co: not an HTTP server
            raise ScrapeError(url, f"garbage reply (not HTTP: {type(exc).__name__})") from exc
        if attempt < options.retries:
            time.sleep(min(wait / 4, max(0.0, deadline - time.monotonic())))
        wait *= 2
    raise ScrapeError(url, f"timed out or failed ({last} after {options.retries + 1} tries)")


def _parse_http(body: bytes, url: str, asked: set[bytes]) -> dict[bytes, Counts]:
    try:
        doc = bdecode(body, url)
    except PhonoError as exc:
        raise ScrapeError(url, f"garbage reply (not bencode: {exc.problem})") from exc
    if not isinstance(doc, dict):
        raise ScrapeError(url, "garbage reply (not a bencoded dictionary)")
    failure = doc.get(b"failure reason")
    if isinstance(failure, bytes):
        raise ScrapeError(url, f"tracker refused: {failure[:200].decode('utf-8', 'replace')}")
    files = doc.get(b"files")
    if not isinstance(files, dict):
        raise ScrapeError(url, "garbage reply (no 'files' dictionary)")
    out: dict[bytes, Counts] = {}
    for key, entry in files.items():
        if key not in asked or not isinstance(entry, dict):
            continue
        values = []
        for k in (b"complete", b"incomplete", b"downloaded"):
            v = entry.get(k, 0)
            if not isinstance(v, int) or v < 0:
                raise ScrapeError(url, "garbage reply (counts are not non-negative integers)")
            values.append(v)
        out[key] = Counts(*values)
    return out
