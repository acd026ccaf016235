"""Benchmark `phono serve` against Datasette on the same published SQLite, and `phono seed`.

    .venv/bin/python bench/serve.py [--tracks 10000000] [--duration 10] [--connections 16]

1. Builds (once, cached in --cache) a synthetic published metadata.sqlite of
   --tracks tracks with bench/serve_data.py (bulk SQL; the pipeline is not needed).
2. Serves it with `phono serve` (1 and 2 worker processes) and with Datasette
   (`datasette serve -i`, immutable mode), one at a time, on loopback.
3. Loads each with wrk (Debian package `wrk`, installed by hand for this bench:
   `apt-get install wrk`), same random ISRC look-ups and same text searches,
   --connections connections, --duration seconds per run after a warm-up.
4. Seeds --seed-mib MiB with the library's Seeder and downloads it with a
   libtorrent client on 127.0.0.1: MiB/s.

Prints requests/s, p50 and p99 per server and query kind, and the ratios. CI never
runs this. Machine: 2 cores shared with other work, so the load generator, the
servers and anything else running compete for CPU: compare ratios, not absolutes.
"""

from __future__ import annotations

import os
import sys

# bench/ holds scripts named like stdlib modules (select.py): keep it off sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote  # noqa: E402

import libtorrent as lt  # noqa: E402

from phonotheque.atomic import write_bytes  # noqa: E402
from phonotheque.publish.dbschema import PUBLISH_SCHEMA_VERSION  # noqa: E402
from phonotheque.serve.queries import fts_query  # noqa: E402
from phonotheque.serve.seeder import Seeder, SeedItem, SeedOptions  # noqa: E402
from phonotheque.torrent import TorrentOptions, create_torrent  # noqa: E402

_spec = importlib.util.spec_from_file_location("serve_data", os.path.join(_HERE, "serve_data.py"))
assert _spec is not None and _spec.loader is not None
serve_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_data)
COMMON, build, isrc_of, vocabulary = (
    serve_data.COMMON, serve_data.build, serve_data.isrc_of, serve_data.vocabulary
)

VENV = Path(sys.executable).parent
LUA = """
local paths = {}
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(6)
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


@dataclass
class Run:
    server: str
    kind: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    v = float(m[1])
    return v / 1000 if m[2] == "us" else v * 1000 if m[2] == "s" else v


def wrk(base: str, paths_file: Path, duration: float, connections: int) -> tuple[float, float, float, int]:
    script = paths_file.with_suffix(".lua")
    script.write_text(LUA)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration:.0f}s", "--latency", "--timeout", "10s",
         "-s", str(script), base, "--", str(paths_file)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    m50, m99 = re.search(r"\s50%\s+(\d\S*)", out), re.search(r"\s99%\s+(\d\S*)", out)
    p50 = _ms(m50[1]) if m50 else float("nan")  # no request finished: no distribution
    p99 = _ms(m99[1]) if m99 else float("nan")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad[1]) if bad else 0) + (sum(int(x) for x in errs.groups()) if errs else 0)
    return rps, p50, p99, errors


def query_sets(n: int, work: Path) -> dict[str, list[str]]:
    rng = random.Random(6)
    vocab = vocabulary()
    rare = vocab[len(COMMON):]
    isrcs = [c for c in (isrc_of(rng.randrange(n)) for _ in range(30_000)) if c][:20_000]
    texts: list[str] = []
    for i in range(3000):
        kind = i % 3
        if kind == 0:  # a common word: many matches, rank the best 20
            texts.append(rng.choice(COMMON))
        elif kind == 1:  # a rare word and a common one: what someone types for one song
            texts.append(f"{rng.choice(rare)} {rng.choice(COMMON)}")
        else:  # the start of a rare word (prefix search while typing)
            texts.append(rng.choice(rare)[:5])
    return {"isrc": isrcs, "text": texts}


def write_paths(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def in_process(db: Path, sets: dict[str, list[str]]) -> dict[str, float]:
    """The library alone, no HTTP: p50 of the same look-ups, uncached, in this process."""
    from phonotheque.serve.queries import PublishedDB

    pdb = PublishedDB(db, cache_bytes=0)
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    out = {}
    for kind, fn in (
        ("isrc sql", lambda c: conn.execute("SELECT track_id FROM track_isrc WHERE isrc = ?", (c,)).fetchall()),
        ("isrc", lambda c: pdb.by_isrc(c)),
    ):  # fmt: skip
        times = []
        for c in sets["isrc"][:2000]:
            t = time.perf_counter()
            fn(c)
            times.append(time.perf_counter() - t)
        out[kind] = statistics.median(times) * 1000
    times = []
    for q in sets["text"][:600]:
        t = time.perf_counter()
        pdb.search(q, 20, 0)
        times.append(time.perf_counter() - t)
    times.sort()
    out["text"] = statistics.median(times) * 1000
    out["text p99"] = times[int(len(times) * 0.99)] * 1000
    return out


def bench_http(db: Path, work: Path, sets: dict[str, list[str]], duration: float,
               connections: int) -> list[Run]:  # fmt: skip
    publish = work / "publish"
    publish.mkdir(exist_ok=True)
    link = publish / "metadata.sqlite"
    if not link.exists():
        link.symlink_to(db)
    isrcs, texts = sets["isrc"], sets["text"]
    # the same searches without the single common words ("love"), which match ~3 % of
    # the archive each and stall Datasette for seconds
    specific = [q for q in texts if q.lower() not in COMMON]
    # Datasette's own search: the user's words, each quoted by Datasette, matched exactly
    # (no prefix: a prefix query on a common word stalls it for many seconds)
    ds_table = "/metadata/track_fts.json?_search={}&_size=20&_shape=array"
    ds_sql = ("/metadata.json?sql=" + quote(
        "select f.rowid, t.title, t.artist_credit from track_fts f"
        " join search_order o on o.pos = f.rowid join track t on t.id = o.track_id"
        " where track_fts match :q order by bm25(track_fts, 10.0, 5.0, 2.0), f.rowid limit 20")
        + "&q={}&_shape=array")  # fmt: skip
    plans = {
        "phono": {
            "isrc": [f"/api/isrc/{c}" for c in isrcs],
            "text": [f"/api/search?q={quote(q)}&limit=20" for q in texts],
            "text-specific": [f"/api/search?q={quote(q)}&limit=20" for q in specific],
        },
        "datasette": {
            "isrc": [f"/metadata/track_isrc.json?isrc={c}&_shape=array" for c in isrcs],
            "text": [ds_table.format(quote(q)) for q in texts],
            "text-specific": [ds_table.format(quote(q)) for q in specific],
            "text-ranked-sql": [ds_sql.format(quote(fts_query(q).rstrip("*"))) for q in texts],
        },
    }
    runs: list[Run] = []
    servers = [
        ("phono w=1", ["phono", "1", "64"]),
        ("phono w=2", ["phono", "2", "64"]),
        ("phono w=2 nocache", ["phono", "2", "0"]),
        ("datasette", ["datasette"]),
    ]
    for label, spec in servers:
        for kind, paths in plans[spec[0]].items():
            # a fresh server per kind: a server still working through requests queued by
            # the previous run (Datasette on slow searches) would skew the next one
            port = free_port()
            if spec[0] == "phono":
                cmd = [str(VENV / "phono"), "serve", "--publish", str(publish), "--port", str(port),
                       "--workers", spec[1], "--cache-mb", spec[2]]  # fmt: skip
            else:
                # Datasette's defaults, as a user runs it (1 s SQL time limit: slower queries
                # are answered with an error, counted in `errors`)
                cmd = [str(VENV / "datasette"), "serve", "-i", str(link), "--port", str(port)]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            base = f"http://127.0.0.1:{port}"
            try:
                wait_http(base + ("/api/stats" if spec[0] == "phono" else "/-/versions.json"))
                pf = write_paths(work / f"{spec[0]}-{kind}.txt", paths)
                wrk(base, pf, 3, 1)  # warm-up, one connection: page cache, statement caches
                rps, p50, p99, errors = wrk(base, pf, duration, connections)
                runs.append(Run(label, kind, rps, p50, p99, errors))
                print(f"  {label:18} {kind:16} {rps:8.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:8.2f} ms"
                      f"  errors {errors}", flush=True)  # fmt: skip
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    return runs


def bench_seed(work: Path, mib: int) -> list[float]:
    """MiB/s from the Seeder to a libtorrent client on loopback (TCP), two runs."""
    root = work / "seed"
    payload = root / "torrents" / "phonotheque-bench"
    if not payload.is_dir() or sum(f.stat().st_size for f in payload.iterdir()) != mib << 20:
        shutil.rmtree(root, ignore_errors=True)
        payload.mkdir(parents=True)
        block = os.urandom(16 << 20)
        per_file = 64 << 20
        for i in range(mib * (1 << 20) // per_file):
            with open(payload / f"{i:03d}.opus", "wb") as f:
                for _ in range(per_file // len(block)):
                    f.write(block[:8] + os.urandom(8) + block[16:])  # distinct pieces
    torrent = root / "torrents" / "phonotheque-bench.torrent"
    if not torrent.exists():
        write_bytes(torrent, create_torrent(payload, TorrentOptions()).metainfo)
    rates = []
    opts = SeedOptions(listen="127.0.0.1:0", dht=False, lsd=False, pex=False, utp=False)
    # One seeding session, three downloads: the first is "cold" (seed mode hashes each
    # piece the first time it is sent, SHA-1 and SHA-256 for a hybrid torrent), the
    # next ones are what a long-running seeder does (pieces already verified).
    with Seeder([SeedItem(torrent, torrent.parent)], opts) as seeder:
        for run in ("cold", "warm", "warm"):
            dest = Path(tempfile.mkdtemp(dir=root, prefix="dl-"))
            seconds = download(torrent, dest, ("127.0.0.1", seeder.listen_port), 120)
            shutil.rmtree(dest)
            rates.append(mib / seconds)
            print(f"  seed -> libtorrent ({run}): {mib} MiB in {seconds:.2f} s = "
                  f"{mib / seconds:.0f} MiB/s", flush=True)  # fmt: skip
    return rates


def download(torrent: Path, dest: Path, peer: tuple[str, int], timeout: float) -> float:
    settings = dict(lt.high_performance_seed())
    settings.update({
        "listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False, "enable_incoming_utp": False,
        "enable_outgoing_utp": False, "alert_mask": 0, "recv_socket_buffer_size": 4 << 20,
        "hashing_threads": 2,
    })  # fmt: skip
    ses = lt.session(settings)  # type: ignore[call-overload]
    atp = lt.load_torrent_file(str(torrent))
    atp.save_path = str(dest)
    atp.flags &= ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    h = ses.add_torrent(atp)
    while h.status().state in (lt.torrent_status.states.checking_files,
                               lt.torrent_status.states.checking_resume_data):  # fmt: skip
        time.sleep(0.01)
    start = time.monotonic()
    h.connect_peer(peer)
    try:
        while not h.status().is_seeding:
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"download {h.status().progress:.0%} after {timeout} s")
            time.sleep(0.005)
        return time.monotonic() - start
    finally:
        ses.remove_torrent(h)
        del ses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=10_000_000)
    ap.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seed-mib", type=int, default=1024)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "phono-bench")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-seed", action="store_true")
    ap.add_argument("--in-process", action="store_true",
                    help="only the library's look-ups, no HTTP (needs neither wrk nor Datasette)")
    args = ap.parse_args()
    if args.in_process:
        args.skip_http = args.skip_seed = True
    if not shutil.which("wrk") and not args.skip_http:
        sys.exit("wrk not found: apt-get install wrk (bench only; not a project dependency)")
    args.cache.mkdir(parents=True, exist_ok=True)
    db = args.cache / f"metadata-{args.tracks}-v{PUBLISH_SCHEMA_VERSION}.sqlite"
    if not db.exists():
        print(f"building {db} ...", flush=True)
        build(db, args.tracks)
    print(f"machine: {os.cpu_count()} cores (shared), load {os.getloadavg()[0]:.2f}; "
          f"{args.tracks:,} tracks, {db.stat().st_size / 2**30:.1f} GiB DB; wrk -t1 "
          f"-c{args.connections}, {args.duration:.0f} s per run", flush=True)  # fmt: skip
    sets = query_sets(args.tracks, args.cache)
    if args.in_process or not args.skip_http:
        base = in_process(db, sets)
        print(f"  in-process, no HTTP, uncached p50: ISRC SQL {base['isrc sql']:.3f} ms, "
              f"ISRC look-up with its files {base['isrc']:.3f} ms, text search {base['text']:.2f} ms "
              f"(p99 {base['text p99']:.1f} ms)", flush=True)  # fmt: skip
    if not args.skip_http:
        runs = bench_http(db, args.cache, sets, args.duration, args.connections)
        ds = {r.kind: r for r in runs if r.server == "datasette"}

        def ratio(a: Run, b: Run) -> str:
            good_b = b.rps * max(0.0, 1 - b.errors / max(1.0, b.rps * args.duration))
            return f"{a.rps / good_b:.1f}x" if good_b > 0 else "inf x"

        for label in ("phono w=1", "phono w=2", "phono w=2 nocache"):
            mine = {r.kind: r for r in runs if r.server == label}
            print(f"  {label}: ISRC {ratio(mine['isrc'], ds['isrc'])} Datasette; text "
                  f"{ratio(mine['text'], ds['text'])} Datasette _search, "
                  f"{ratio(mine['text'], ds['text-ranked-sql'])} Datasette ranked SQL, "
                  f"specific words {ratio(mine['text-specific'], ds['text-specific'])} Datasette "
                  "_search (successful answers/s); "
                  f"p99 ISRC {mine['isrc'].p99_ms:.1f} ms (goal < 10), text "
                  f"{mine['text'].p99_ms:.1f} ms, specific {mine['text-specific'].p99_ms:.1f} ms "
                  "(goal < 50)")  # fmt: skip
    if not args.skip_seed:
        bench_seed(args.cache, args.seed_mib)


if __name__ == "__main__":
    main()
