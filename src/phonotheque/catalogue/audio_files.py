"""Archive audio files (owner of ``audio_file``).

The audio stage records one row per archived track (:func:`record_audio_file`);
the packer stores the BitTorrent v2 merkle root it computed for a file
(:func:`set_btv2_roots`). Nothing else writes the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from phonotheque.catalogue.store import Store, now_iso


@dataclass(frozen=True, slots=True)
class AudioFile:
    """One archived file; ``path`` is relative to the workspace."""

    track_id: int
    source_audio_id: int | None
    tier: str
    path: str
    container: str | None
    codec: str | None
    bitrate: int | None
    duration_ms: int | None
    size: int
    sha256: str
    original_sha256: str | None = None
    original_size: int | None = None
    patch_path: str | None = None
    replaygain_gain: float | None = None
    replaygain_peak: float | None = None
    reconstruction: str | None = None  # JSON


_UPSERT = """
INSERT INTO audio_file(track_id, source_audio_id, tier, path, container, codec, bitrate,
                       duration_ms, size, sha256, original_sha256, original_size, patch_path,
                       replaygain_gain, replaygain_peak, reconstruction, created_at)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(track_id) DO UPDATE SET
  source_audio_id = excluded.source_audio_id, tier = excluded.tier, path = excluded.path,
  container = excluded.container, codec = excluded.codec, bitrate = excluded.bitrate,
  duration_ms = excluded.duration_ms, size = excluded.size,
  -- a new file invalidates the merkle root the packer computed for the old one
  btv2_root = CASE WHEN audio_file.sha256 = excluded.sha256 THEN audio_file.btv2_root END,
  created_at = CASE WHEN audio_file.sha256 = excluded.sha256 THEN audio_file.created_at
                    ELSE excluded.created_at END,
  sha256 = excluded.sha256, original_sha256 = excluded.original_sha256,
  original_size = excluded.original_size, patch_path = excluded.patch_path,
  replaygain_gain = excluded.replaygain_gain, replaygain_peak = excluded.replaygain_peak,
  reconstruction = excluded.reconstruction
"""


def path_holder(store: Store, path: str, track_id: int) -> int | None:
    """The other track whose row already holds archive file ``path``, if any."""
    row = store.conn.execute(
        "SELECT track_id FROM audio_file WHERE path = ? AND track_id != ?",
        (path, track_id)).fetchone()
    return None if row is None else int(row[0])


def original_sha256(store: Store, path: str) -> str | None:
    """The source bytes' hash of archive file ``path`` (what a rebuild must give back)."""
    value = store.scalar("SELECT original_sha256 FROM audio_file WHERE path = ?", (path,))
    return str(value) if value else None


def record_audio_file(store: Store, f: AudioFile, stamp: str | None = None) -> None:
    """Insert or replace the archive file of ``f.track_id`` (one file per track).

    Keeps ``created_at`` and the packer's ``btv2_root`` when the bytes are the same.
    """
    with store.transaction() as conn:
        conn.execute(_UPSERT, (
            f.track_id, f.source_audio_id, f.tier, f.path, f.container, f.codec, f.bitrate,
            f.duration_ms, f.size, f.sha256, f.original_sha256, f.original_size, f.patch_path,
            f.replaygain_gain, f.replaygain_peak, f.reconstruction, stamp or now_iso()))


def set_btv2_roots(store: Store, roots: Iterable[tuple[int, str | None]]) -> None:
    """Store ``(audio_file_id, merkle_root)`` pairs the packer computed."""
    with store.transaction() as conn:
        conn.executemany(
            "UPDATE audio_file SET btv2_root = ? WHERE id = ?", [(r, i) for i, r in roots])
