"""Build a realistic published ``metadata.sqlite`` from real MusicBrainz test data.

Until `phono publish` writes one, the serve tests build it straight from the
published schema (``dbschema.DDL``) with the recordings, artists, releases and
ISRCs of ``tests/data/mbdump/webservice`` (MusicBrainz's own test fixtures in
dump format) plus the recordings of ``tests/data/picard/ws_data`` (Ed Sheeran,
Die Ärzte, Чайковский, ABBA, Japanese titles). Listens, bands, tiers, torrents
and files are made up deterministically, shaped like what select/pack produce.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from pathlib import Path

from phonotheque.publish.dbschema import DDL, PUBLISH_SCHEMA_VERSION, SEARCH_ORDER_SQL

DATA = Path(__file__).parent.parent / "data"


def _copy_rows(path: Path) -> list[list[str | None]]:
    """Rows of a PostgreSQL COPY text file (tab-separated, ``\\N`` = NULL)."""
    out: list[list[str | None]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line:
            out.append([None if v == r"\N" else v for v in line.split("\t")])
    return out


def _picard_recordings() -> list[dict]:
    recs = []
    for name in (
        "recording.json",
        "recording_multi_artists_1.json",
        "recording_credits.json",
        "recording_composer.json",
        "recording_artist_aliases.json",
        "recording_artist_name_change.json",
        "recording_video.json",
        "track_pregap.json",
    ):
        recs.append(json.loads((DATA / "picard/ws_data" / name).read_text(encoding="utf-8")))
    pseudo = json.loads((DATA / "beets/mbpseudo/official_release.json").read_text(encoding="utf-8"))
    for medium in pseudo["media"]:
        for t in medium["tracks"]:
            rec = dict(t["recording"])
            rec.setdefault("artist-credit", t.get("artist-credit", []))
            rec["_release"] = pseudo["title"]
            recs.append(rec)
    return recs


def build_published(dest: Path) -> Path:
    """Write ``dest`` (a published metadata.sqlite) and return it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    conn = sqlite3.connect(dest)
    conn.executescript(DDL)
    mb = DATA / "mbdump/webservice/mbdump"

    artists: dict[int, tuple[str, str, str]] = {}
    for r in _copy_rows(mb / "artist"):
        artists[int(r[0])] = (r[1] or "", r[2] or "", r[3] or "")
    credit_names: dict[int, str] = {int(r[0]): r[1] or "" for r in _copy_rows(mb / "artist_credit")}
    credit_artists: dict[int, list[int]] = {}
    for r in sorted(_copy_rows(mb / "artist_credit_name"), key=lambda r: (int(r[0]), int(r[1]))):
        credit_artists.setdefault(int(r[0]), []).append(int(r[2]))

    releases: dict[int, tuple[str, str, str]] = {}
    for r in _copy_rows(mb / "release"):
        releases[int(r[0])] = (r[1] or "", r[2] or "", credit_names.get(int(r[3]), ""))
    medium_release = {int(r[0]): (int(r[1]), int(r[2])) for r in _copy_rows(mb / "medium")}
    rec_place: dict[int, tuple[int, int, int]] = {}
    for r in _copy_rows(mb / "track"):
        rec = int(r[2])
        rel, disc = medium_release[int(r[3])]
        rec_place.setdefault(rec, (rel, disc, int(r[4])))
    isrcs: dict[int, list[str]] = {}
    for r in _copy_rows(mb / "isrc"):
        isrcs.setdefault(int(r[1]), []).append(r[2] or "")

    # tracks: (id, mbid, title, credit, release_id, disc, pos, duration, artist ids, isrcs)
    tracks: list[tuple] = []
    for r in _copy_rows(mb / "recording"):
        rid = int(r[0])
        credit = int(r[3])
        rel, disc, pos = rec_place.get(rid, (None, None, None))
        tracks.append(
            (rid, r[1], r[2], credit_names.get(credit, ""), rel, disc, pos,
             int(r[4]) if r[4] else None, credit_artists.get(credit, []), isrcs.get(rid, []))
        )  # fmt: skip

    next_artist = 10_000_001
    artist_by_mbid = {v[0]: k for k, v in artists.items()}
    next_release = 20_000_001
    release_by_title: dict[str, int] = {}
    for i, rec in enumerate(_picard_recordings()):
        ids = []
        credit = ""
        for ac in rec.get("artist-credit", []):
            a = ac["artist"]
            if a["id"] not in artist_by_mbid:
                artists[next_artist] = (a["id"], a["name"], a.get("sort-name", a["name"]))
                artist_by_mbid[a["id"]] = next_artist
                next_artist += 1
            ids.append(artist_by_mbid[a["id"]])
            credit += ac.get("name", a["name"]) + ac.get("joinphrase", "")
        rel_title = rec.get("_release") or (rec.get("releases") or [{}])[0].get("title")
        rel_id = None
        if rel_title:
            if rel_title not in release_by_title:
                releases[next_release] = (
                    hashlib.md5(rel_title.encode()).hexdigest(), rel_title, credit
                )
                release_by_title[rel_title] = next_release
                next_release += 1
            rel_id = release_by_title[rel_title]
        tracks.append(
            (30_000_001 + i, rec["id"], rec["title"], credit, rel_id, 1, 1,
             rec.get("length"), ids, list(rec.get("isrcs") or []))
        )  # fmt: skip

    conn.executemany("INSERT INTO artist(id, mbid, name, sort_name) VALUES (?,?,?,?)", [(k, *v) for k, v in artists.items()])
    conn.executemany(
        "INSERT INTO release(id, mbid, title, artist_credit) VALUES (?,?,?,?)",
        [(k, *v) for k, v in releases.items()],
    )

    # listens: a Zipf-like curve over a fixed shuffle; the last few tracks are not selected
    rng = random.Random(6)
    order = list(range(len(tracks)))
    rng.shuffle(order)
    n_selected = len(tracks) - 8
    torrents = [
        (1, "data", "phonotheque-w1-band1", 1, 1, 0),
        (2, "data", "phonotheque-w1-band2", 2, 1, 0),
        (3, "data", "phonotheque-w1-band3", 3, 1, 0),
        (4, "metadata", "phonotheque-w1-metadata", None, 1, 0),
        (5, "art", "phonotheque-w1-art", None, 1, 0),
        (6, "data", "phonotheque-w0-band1", 1, 0, 1),
    ]
    sizes = {t[0]: 0 for t in torrents}
    counts = {t[0]: 0 for t in torrents}
    fts: dict[int, tuple[str, str, str, str]] = {}
    for rank0, idx in enumerate(order):
        t = tracks[idx]
        tid, mbid, title, credit, rel, disc, pos, dur, aids, codes = t
        selected = rank0 < n_selected
        rank = rank0 + 1 if selected else None
        listens = int(2_000_000 / (rank0 + 1) ** 1.1)
        band = (1 if rank0 < 40 else 2 if rank0 < 100 else 3) if selected else None
        tier = ("original" if band == 1 else "opus") if selected else None
        status = "archived" if selected else "not_selected"
        conn.execute(
            "INSERT INTO track(id, mbid, title, artist_credit, release_id, disc, position,"
            " duration_ms, source, licence, listens, rank, band, tier, status)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (tid, mbid, title, credit, rel, disc, pos, dur, "musicbrainz", None,
             listens, rank, band, tier, status),
        )  # fmt: skip
        for p, aid in enumerate(aids):
            conn.execute(
                "INSERT INTO track_artist(track_id, position, artist_id) VALUES (?,?,?)",
                (tid, p, aid),
            )
        for code in codes:
            conn.execute("INSERT INTO track_isrc(track_id, isrc) VALUES (?,?)", (tid, code))
        rel_title = releases[rel][1] if rel in releases else ""
        names = " ".join(artists[a][1] for a in aids)
        fts[tid] = (title, f"{credit} {names}", rel_title)
        if not selected:
            continue
        ext, codec, container, bitrate = (
            ("flac", "flac", "flac", None) if tier == "original" else ("opus", "opus", "ogg", 96000)
        )
        size = (dur or 200_000) * (110 if tier == "original" else 12)
        safe = lambda s: "".join(c if c not in '/\\:*?"<>|' else "_" for c in s)[:80]  # noqa: E731
        path = f"{safe(credit or 'Unknown')}/{safe(rel_title or 'Unknown release')}/{tid} {safe(title)}.{ext}"
        digest = hashlib.sha256(f"{tid}:{path}".encode()).hexdigest()
        torrent_ids = [band] + ([6] if band == 1 and rank0 % 3 == 0 else [])
        for tor in torrent_ids:
            conn.execute(
                "INSERT INTO file(track_id, torrent_id, path, size, sha256, btv2_root, tier,"
                " container, codec, bitrate, original_sha256, original_size, patch_path)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (tid, tor, path, size, digest, hashlib.sha256(digest.encode()).hexdigest(),
                 tier, container, codec, bitrate,
                 None if tier == "original" else hashlib.sha256(path.encode()).hexdigest(),
                 None if tier == "original" else size * 9, None),
            )  # fmt: skip
            sizes[tor] += size
            counts[tor] += 1
    sizes[4], counts[4] = 3_500_000, 2
    sizes[5], counts[5] = 12_000_000, 60
    conn.execute(SEARCH_ORDER_SQL)  # as publish: track_fts rowid = position by listens
    conn.executemany(
        "INSERT INTO track_fts(rowid, title, artists, release) VALUES (?,?,?,?)",
        [(pos, *fts[tid]) for pos, tid in conn.execute(
            "SELECT pos, track_id FROM search_order ORDER BY pos").fetchall()],
    )
    for tid, kind, name, band, wave, obsolete in torrents:
        v1 = hashlib.sha1(name.encode()).hexdigest()
        v2 = hashlib.sha256(name.encode()).hexdigest()
        magnet = f"magnet:?xt=urn:btih:{v1}&xt=urn:btmh:1220{v2}&dn={name}"
        conn.execute(
            "INSERT INTO torrent(id, kind, name, band, wave, infohash_v1, infohash_v2, magnet,"
            " size, files, obsolete, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (tid, kind, name, band, wave, v1, v2, magnet, sizes[tid], counts[tid], obsolete,
             "2026-11-25T12:00:00Z"),
        )
    stats = {
        "tracks": len(tracks),
        "archived_tracks": n_selected,
        "unique_isrcs": conn.execute("SELECT count(DISTINCT isrc) FROM track_isrc").fetchone()[0],
        "torrents": len(torrents),
        "total_bytes": sum(sizes.values()),
        "listens_total": sum(int(2_000_000 / (i + 1) ** 1.1) for i in range(len(tracks))),
        "coverage_share": 0.97,
        "bands": json.dumps({"1": 40, "2": 60, "3": n_selected - 100}),
    }
    conn.executemany("INSERT INTO stats(key, value) VALUES (?,?)", list(stats.items()))
    conn.executemany(
        "INSERT INTO info(key, value) VALUES (?,?)",
        [("schema_version", str(PUBLISH_SCHEMA_VERSION)), ("name", "Phonothèque test archive"),
         ("created_at", "2026-11-25T12:00:00Z")],
    )  # fmt: skip
    conn.commit()
    conn.close()
    return dest


if __name__ == "__main__":
    import sys

    print(build_published(Path(sys.argv[1])))
