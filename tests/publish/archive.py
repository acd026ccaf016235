"""A small, real archive in a workspace, as the stages before pack would leave it.

Catalogue rows go in through ``Store.write`` (artists, releases, tracks, ISRCs,
listens) and plain SQL for what select and audio would write (selection, ledger,
audio_file); the audio files are real Ogg Vorbis sounds from ``tests/data``
copied into ``audio/`` with their real SHA-256.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from phonotheque.audio.reconstruct import make_patch
from phonotheque.model import Artist, Listen, Provenance, Release, Track, TrackISRC
from phonotheque.workspace import Workspace

SOUNDS = "debian-sounds/freedesktop-stereo"
CREATED = "2026-03-01T12:00:00+00:00"

# (title, artist, release, band); hostile names on purpose for the readable layout.
TRACKS = [
    ("Alarm Clock", "Ärtist Ünïcode", "First Album", 1),
    ("Bell", "Ärtist Ünïcode", "First Album", 1),
    ("../../etc/passwd", "Slash/Artist", "Rel\x00ease", 1),
    ("Camera: Shutter?", "Slash/Artist", "Rel\x00ease", 1),
    ("Complete", "CON", "..", 2),
    ("Device Added", "abba", "Gold", 2),
    ("Device Added", "ABBA", "Gold", 2),
    ("Dialog " + "é" * 200, "Long", "Names", 2),
    ("Message", "Third", "Third Release", 3),
    ("Power Plug", "Third", "Third Release", 3),
]


@dataclass
class Archive:
    ws: Workspace
    track_ids: list[int]
    audio_ids: list[int]


def sound_files(data: Path) -> list[Path]:
    return sorted((data / SOUNDS).glob("*.oga"))


def make_archive(ws: Workspace, data: Path, n: int = len(TRACKS), patch_every: int = 0) -> Archive:
    sounds = sound_files(data)
    records: list[object] = []
    for i, (title, artist, release, _band) in enumerate(TRACKS[:n]):
        akey, rkey = f"test:artist:{artist}", f"test:release:{artist}:{release}"
        records += [
            Artist(akey, artist, mbid=f"00000000-0000-4000-8000-{i:012d}"),
            Release(rkey, release, artist_credit=artist,
                    mbid=f"00000000-0000-4000-9000-{i:012d}"),
            Track(f"test:track:{i}", title, artist_credit=artist, artist_keys=(akey,),
                  release_key=rkey, disc=1, position=i + 1, duration_ms=1000 + i,
                  mbid=f"00000000-0000-4000-a000-{i:012d}",
                  prov=Provenance(f"/home/builder/Music/{i:02d}.oga", "tags", "CC-BY-SA-3.0")),
            TrackISRC(f"test:track:{i}", f"GBAYE00{i:05d}"),
            Listen("key", f"test:track:{i}", 1000 // (i + 1), dataset="test"),
        ]
    with ws.store() as store:
        store.write(records)  # type: ignore[arg-type]
        tids = [store.scalar("SELECT id FROM track WHERE key = ?", (f"test:track:{i}",))
                for i in range(n)]
        aids = []
        with store.transaction():
            for rank, (tid, (_t, _a, _r, band)) in enumerate(zip(tids, TRACKS, strict=False), 1):
                src = sounds[rank - 1]
                raw = src.read_bytes()
                sha = hashlib.sha256(raw).hexdigest()
                rel = f"audio/{sha[:2]}/{sha}.oga"
                (ws.root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, ws.root / rel)
                patch = None
                orig_sha, orig_size = sha, len(raw)
                if patch_every and rank % patch_every == 0:
                    # A real reconstruction patch: the "original" differs from the
                    # archive file as a re-tagged file would (a few bytes changed).
                    original = b"ORIGINAL-TAGS:" + raw[14:] + b"trailing source bytes"
                    orig_sha, orig_size = hashlib.sha256(original).hexdigest(), len(original)
                    patch = f"audio/{sha[:2]}/{sha}.zstdpatch"
                    (ws.root / patch).write_bytes(make_patch(original, raw))
                store.conn.execute(
                    "INSERT INTO selection(track_id, rank, band, cum_share, tier, est_bytes) "
                    "VALUES (?,?,?,?,?,?)", (tid, rank, band, rank / n, "original", len(raw)))
                store.conn.execute(
                    "INSERT INTO ledger(track_id, status, updated_at) VALUES (?, 'success', ?)",
                    (tid, CREATED))
                cur = store.conn.execute(
                    """INSERT INTO audio_file(track_id, tier, path, container, codec, bitrate,
                           size, sha256, original_sha256, original_size, patch_path, created_at)
                       VALUES (?, 'original', ?, 'ogg', 'vorbis', 128000, ?, ?, ?, ?, ?, ?)""",
                    (tid, rel, len(raw), sha, orig_sha, orig_size, patch, CREATED))
                aids.append(int(cur.lastrowid or 0))
    return Archive(ws, tids, aids)
