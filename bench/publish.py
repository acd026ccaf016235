"""Benchmark of `phono publish` (metadata export) and `phono pack` (folders + torrents).

    .venv/bin/python bench/publish.py                       # 100 k and 1 M tracks, 512 MiB pack
    .venv/bin/python bench/publish.py --sizes 100000 --pack-mib 128

Publish: a synthetic catalogue is generated inside SQLite (recursive CTEs):
10 tracks per release, 50 per artist, one ISRC per track, listens for every
track, every track selected, 20 % archived (audio_file + torrent_file rows in
released torrents of 60 000 files, as pack would leave them). Measured: the
whole ``publish()`` (metadata.sqlite with FTS, Parquet of every table, the
database torrent, torrents.json), in a fresh subprocess for its peak RSS.
Baseline in the same run: ``VACUUM INTO`` of the catalogue — SQLite copying the
same data once, with no transformation, no FTS and no Parquet.

Pack: ``--pack-mib`` of real files (1 MiB each, random bytes) through ``pack()``
(hard links, SHA-256 re-check, hybrid torrent, AAC metadata) against the
torrent engine alone hashing the same folder (``create_torrent``, hybrid) —
pack reads every byte twice (the SHA-256 check, then the torrent), so ~0.5 is
the expected ratio; ``--no-check`` packing is reported too.

The machine has 2 cores shared with other engineers' test runs: figures are noisy.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds select.py, which would shadow the standard library's `select`
# (imported by subprocess): replace this folder on sys.path by the sources.
ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT / "src")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

CREATED = "2026-03-01T12:00:00+00:00"


def build_catalogue(root: Path, n: int) -> None:
    from phonotheque.workspace import Workspace

    ws = Workspace.create(root)
    conn = sqlite3.connect(ws.catalogue, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    seq = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < :n)"
    p = {"n": n, "a": max(n // 50, 1), "r": max(n // 10, 1), "c": CREATED}
    ex = conn.execute
    ex("BEGIN")
    ex(f"""{seq.replace(':n', ':a')} INSERT INTO artist(id, key, mbid, name)
           SELECT i, 'a:' || i, printf('00000000-0000-4000-8000-%012d', i), 'Artist ' || i
           FROM c""", p)
    ex(f"""{seq.replace(':n', ':r')} INSERT INTO release(id, key, mbid, title, artist_credit)
           SELECT i, 'r:' || i, printf('00000000-0000-4000-9000-%012d', i), 'Release ' || i,
                  'Artist ' || (1 + (i - 1) / 5) FROM c""", p)
    ex(f"""{seq} INSERT INTO track(id, key, mbid, title, artist_credit, release_id, disc,
                                   position, duration_ms, source, licence)
           SELECT i, 't:' || i, printf('00000000-0000-4000-a000-%012d', i), 'Song number ' || i,
                  'Artist ' || (1 + (i - 1) / 50), 1 + (i - 1) / 10, 1, 1 + (i - 1) % 10,
                  180000 + i % 60000, '/home/builder/dumps/mb.jsonl', 'CC0' FROM c""", p)
    ex(f"""{seq} INSERT INTO track_artist SELECT i, 0, 1 + (i - 1) / 50 FROM c""", p)
    ex(f"""{seq} INSERT INTO track_isrc(track_id, isrc)
           SELECT i, printf('GBAYE%07d', i) FROM c""", p)
    ex(f"""{seq} INSERT INTO listens(dataset, key_kind, key, count, track_id)
           SELECT 'synth', 'track_id', i, 1000000000 / i, i FROM c""", p)
    ex(f"""{seq} INSERT INTO selection(track_id, rank, band, cum_share, tier, est_bytes)
           SELECT i, i, CASE WHEN i <= :n / 100 THEN 1 WHEN i <= :n / 10 THEN 2 ELSE 3 END,
                  CAST(i AS REAL) / :n, 'reencode', 2000000 FROM c""", p)
    ex(f"""{seq} INSERT INTO ledger(track_id, status, updated_at)
           SELECT i, CASE WHEN i % 5 = 0 THEN 'success' ELSE 'todo' END, :c FROM c""", p)
    ex("""INSERT INTO audio_file(id, track_id, tier, path, container, codec, bitrate, size,
                                 sha256, btv2_root, created_at)
          SELECT track_id, track_id, 'reencode', 'audio/' || track_id || '.opus', 'ogg', 'opus',
                 75000, 2000000 + track_id, printf('%064x', track_id), printf('%064x', -track_id),
                 updated_at
          FROM ledger WHERE status = 'success'""")
    per = 60_000
    ex("""INSERT INTO torrent(id, kind, role, band, name, torrent_path, data_path, infohash_v1,
                              infohash_v2, magnet, size, files, wave, created_at, built,
                              collection, aac_from, aac_to)
          SELECT g, 'data', 'audio', 1, 'synth_data__' || g, 'torrents/x' || g || '.torrent',
                 'torrents/x' || g, printf('%040x', g), printf('%064x', g),
                 'magnet:?xt=urn:btih:' || printf('%040x', g), 0, 0, 1, :c, 1, 'music', 'a', 'b'
          FROM (SELECT DISTINCT (rowid - 1) / :per + 1 AS g FROM audio_file)""",
       {"per": per, "c": CREATED})
    ex("""INSERT INTO torrent_file(torrent_id, path, audio_file_id, size, sha256, pieces_root, role,
                                   aacid)
          SELECT (rowid - 1) / :per + 1, 'aacid__music__x__' || track_id || '__u', id, size,
                 sha256, btv2_root, 'audio', 'aacid__music__x__' || track_id || '__u'
          FROM audio_file""", {"per": per})
    ex("INSERT INTO wave(id, released_at, torrents, bytes) VALUES (1, ?, 1, 0)", (CREATED,))
    ex("COMMIT")
    conn.close()


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_publish(root: Path) -> None:
    from phonotheque.publish.publisher import publish
    from phonotheque.workspace import Workspace

    ws = Workspace.open(root)
    t = time.perf_counter()
    rep = publish(ws)
    dt = time.perf_counter() - t
    print(json.dumps({"seconds": dt, "rss_mib": _rss_mib(), "tables": rep.tables}))


def child_vacuum(root: Path) -> None:
    out = root / "vacuum-copy.sqlite"
    out.unlink(missing_ok=True)
    t = time.perf_counter()
    conn = sqlite3.connect(root / "catalogue.sqlite")
    conn.execute("VACUUM INTO ?", (str(out),))
    conn.close()
    dt = time.perf_counter() - t
    out.unlink()
    print(json.dumps({"seconds": dt, "rss_mib": _rss_mib()}))


def _run(kind: str, root: Path) -> dict[str, object]:
    res = subprocess.run([sys.executable, __file__, f"--child-{kind}", str(root)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_publish(n: int, cache: Path) -> dict[str, object]:
    root = cache / f"phono-bench-publish-{n}"
    if not (root / "catalogue.sqlite").is_file():
        shutil.rmtree(root, ignore_errors=True)
        t = time.perf_counter()
        build_catalogue(root, n)
        print(f"  built {n:,}-track catalogue in {time.perf_counter() - t:.1f}s", flush=True)
    base = _run("vacuum", root)
    ours = _run("publish", root)
    size = (root / "publish" / "metadata.sqlite").stat().st_size
    pq_size = sum(p.stat().st_size for p in (root / "publish" / "parquet").glob("*"))
    return {"tracks": n, "publish_s": ours["seconds"], "vacuum_into_s": base["seconds"],
            "ratio": float(ours["seconds"]) / float(base["seconds"]),  # type: ignore[arg-type]
            "tracks_per_s": n / float(ours["seconds"]),  # type: ignore[arg-type]
            "rss_mib": ours["rss_mib"], "sqlite_mb": size / 1e6, "parquet_mb": pq_size / 1e6}


def bench_pack(mib: int, cache: Path) -> dict[str, object]:
    from phonotheque.pack.packer import PackOptions, pack
    from phonotheque.torrent import TorrentOptions, create_torrent
    from phonotheque.workspace import Workspace

    out: dict[str, object] = {"mib": mib}
    with tempfile.TemporaryDirectory(dir=cache, prefix="phono-bench-pack-") as tmp:
        for check in (True, False):
            ws = Workspace.create(Path(tmp) / f"ws-{check}")
            conn = sqlite3.connect(ws.catalogue, isolation_level=None)
            conn.execute("BEGIN")
            rng = os.urandom
            for i in range(1, mib + 1):
                data = rng(2**20)
                rel = f"audio/{i:06d}.opus"
                (ws.root / rel).write_bytes(data)
                sha = hashlib.sha256(data).hexdigest()
                conn.execute("INSERT INTO release(id, key, title) VALUES (?, ?, ?)",
                             (i, f"r{i}", f"R{i}"))
                conn.execute("INSERT INTO track(id, key, title, release_id) VALUES (?,?,?,?)",
                             (i, f"t{i}", f"T{i}", i))
                conn.execute("INSERT INTO selection(track_id, rank, band, cum_share, tier) "
                             "VALUES (?, ?, 1, 0, 'reencode')", (i, i))
                conn.execute("INSERT INTO ledger VALUES (?, 'success', NULL, ?)", (i, CREATED))
                conn.execute("INSERT INTO audio_file(track_id, tier, path, size, sha256, "
                             "created_at) VALUES (?, 'reencode', ?, ?, ?, ?)",
                             (i, rel, len(data), sha, CREATED))
            conn.execute("COMMIT")
            conn.close()
            os.sync()  # no writeback of the files just written during the timed part
            t = time.perf_counter()
            rep = pack(ws, PackOptions(check_sha256=check, art=False))
            out["pack_s" if check else "pack_nocheck_s"] = time.perf_counter() - t
            if check:
                folder = ws.root / "torrents" / rep.new_folders[0]
                os.sync()
                t = time.perf_counter()
                create_torrent(folder, TorrentOptions(name="x"))
                out["engine_s"] = time.perf_counter() - t
                # verify: ours (sha256 + merkle root per file) vs the engine's verify_torrent
                from phonotheque.publish.verify import VerifyOptions, verify
                from phonotheque.publish.waves import ReleaseOptions, release
                from phonotheque.torrent import read_torrent, verify_torrent

                release(ws, ReleaseOptions(pack=False))
                t = time.perf_counter()
                vr = verify(folder, VerifyOptions(ws.publish))
                out["verify_s"] = time.perf_counter() - t
                assert vr.ok, vr.problems[:3]
                info = read_torrent(ws.root / "torrents" / f"{folder.name}.torrent")
                t = time.perf_counter()
                assert verify_torrent(info, folder.parent).ok
                out["engine_verify_s"] = time.perf_counter() - t
    out["ratio_engine_over_pack"] = float(out["engine_s"]) / float(out["pack_s"])  # type: ignore[arg-type]
    out["ratio_engine_over_pack_nocheck"] = (
        float(out["engine_s"]) / float(out["pack_nocheck_s"]))  # type: ignore[arg-type]
    out["pack_mib_s"] = mib / float(out["pack_s"])  # type: ignore[arg-type]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                    default=[100_000, 1_000_000])
    ap.add_argument("--pack-mib", type=int, default=512)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--child-publish", type=Path)
    ap.add_argument("--child-vacuum", type=Path)
    args = ap.parse_args()
    if args.child_publish:
        return child_publish(args.child_publish)
    if args.child_vacuum:
        return child_vacuum(args.child_vacuum)
    print(f"cores: {os.cpu_count()} (shared with other test runs)")
    for n in args.sizes:
        r = bench_publish(n, args.cache)
        print(f"publish {r['tracks']:>10,} tracks: {r['publish_s']:.1f}s "
              f"({r['tracks_per_s']:,.0f} tracks/s), VACUUM INTO baseline "
              f"{r['vacuum_into_s']:.1f}s, ratio {r['ratio']:.1f}x; peak RSS "
              f"{r['rss_mib']:.0f} MiB; metadata.sqlite {r['sqlite_mb']:.0f} MB, "
              f"parquet {r['parquet_mb']:.0f} MB", flush=True)
    if args.pack_mib:
        r = bench_pack(args.pack_mib, args.cache)
        print(f"pack {r['mib']} MiB (1 MiB files): {r['pack_s']:.2f}s ({r['pack_mib_s']:.0f} MiB/s)"
              f" with sha256 re-check, {r['pack_nocheck_s']:.2f}s without; torrent engine alone "
              f"{r['engine_s']:.2f}s -> engine/pack = {r['ratio_engine_over_pack']:.2f} "
              f"(checked), {r['ratio_engine_over_pack_nocheck']:.2f} (no check)")
        print(f"verify {r['mib']} MiB: {r['verify_s']:.2f}s ({r['mib'] / r['verify_s']:.0f} MiB/s,"
              f" sha256 + v2 root per file) vs the engine's verify_torrent "
              f"{r['engine_verify_s']:.2f}s -> ratio {r['engine_verify_s'] / r['verify_s']:.2f}")


if __name__ == "__main__":
    main()
