"""Tracker scrape rate: info-hashes per second against opentracker on 127.0.0.1.

    .venv/bin/python bench/scrape.py [--hashes 10000] [--repeat 3]

Starts Debian's opentracker on loopback (TCP and UDP) with ``--hashes`` random
info-hashes whitelisted, announces one peer for each (so every scraped swarm
exists), then times :func:`phonotheque.swarm.scrape.scrape` over all of them:

* ours, UDP (BEP 15, 74 hashes per packet) and HTTP (BEP 48, 50 per request);
* baseline, same run: one hash per request over UDP and HTTP — what a per-torrent
  scrape costs (libtorrent's ``scrape_tracker`` asks for one torrent at a time).

Best of ``--repeat``. Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote_from_bytes

from phonotheque.swarm.scrape import HTTP_BATCH, UDP_BATCH, ScrapeOptions, scrape

OPTIONS = ScrapeOptions(timeout=2.0, retries=2, deadline=600.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _announce(port: int, h: bytes, i: int) -> None:
    url = (f"http://127.0.0.1:{port}/announce?info_hash={quote_from_bytes(h, safe='')}"
           f"&peer_id=-PH0001-{i:012d}&port={10000 + i % 50000}&uploaded=0&downloaded=0"
           f"&left={0 if i % 2 else 1000}&compact=1")
    with urllib.request.urlopen(url, timeout=5) as r:
        body = r.read()
    if b"failure reason" in body:
        raise RuntimeError(f"announce refused: {body[:200]!r}")


def _time(url: str, hashes: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        got = scrape(url, hashes, OPTIONS)
        best = min(best, time.perf_counter() - t0)
        assert len(got) == len(hashes), (url, len(got))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hashes", type=int, default=10_000)
    ap.add_argument("--baseline-hashes", type=int, default=2_000,
                    help="hashes for the one-per-request baseline (it is slow)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    exe = shutil.which("opentracker")
    if exe is None:
        raise SystemExit("opentracker is not installed (./scripts/setup installs it)")
    hashes = [os.urandom(20) for _ in range(args.hashes)]
    with tempfile.TemporaryDirectory(prefix="phono-scrape-") as tmp:
        os.chmod(tmp, 0o755)  # opentracker reads its whitelist after dropping root
        (Path(tmp) / "whitelist").write_text("".join(f"{h.hex()}\n" for h in hashes))
        port = _free_port()
        proc = subprocess.Popen([exe, "-i", "127.0.0.1", "-p", str(port), "-P", str(port),
                                 "-d", tmp, "-w", "whitelist"], cwd=tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:  # until the tracker has read its whitelist
                try:
                    _announce(port, hashes[0], 0)
                    break
                except (OSError, RuntimeError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(_announce, [port] * len(hashes), hashes, range(len(hashes))))
            announce_s = time.perf_counter() - t0
            udp, http = f"udp://127.0.0.1:{port}/announce", f"http://127.0.0.1:{port}/announce"
            rows = []
            for label, url in (("UDP (BEP 15)", udp), ("HTTP (BEP 48)", http)):
                ours = _time(url, hashes, args.repeat)
                batch = UDP_BATCH if url.startswith("udp") else HTTP_BATCH
                base_hashes = hashes[:args.baseline_hashes]
                t0 = time.perf_counter()
                for h in base_hashes:
                    scrape(url, [h], OPTIONS)
                base = time.perf_counter() - t0
                rows.append((label, batch, len(hashes) / ours, ours,
                             len(base_hashes) / base, (len(hashes) / ours) / (len(base_hashes) / base)))
        finally:
            proc.terminate()
            proc.wait(5)
    print(f"\n{len(hashes)} info-hashes (one peer announced each, in {announce_s:.1f} s); "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, best of {args.repeat}\n")
    print("| protocol | hashes/request | ours: hashes/s | ours: all | "
          "1 per request: hashes/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, batch, rate, secs, base_rate, ratio in rows:
        print(f"| {label} | {batch} | {rate:,.0f} | {secs:.2f} s | {base_rate:,.0f} | "
              f"{ratio:.0f}× |")


if __name__ == "__main__":
    main()
