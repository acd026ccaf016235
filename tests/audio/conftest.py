"""Helpers for audio tests: a catalogue with tracks, sources, a selection and a ledger.

``select`` normally fills selection/ledger; these tests write the rows directly.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from phonotheque.workspace import Workspace


@dataclass
class Entry:
    source: Path
    tier: str = "reencode"
    title: str = "A title"
    artist: str = "An Artist"
    isrcs: tuple[str, ...] = ()
    mbid: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def add_tracks(ws: Workspace, entries: list[Entry], *, album: str = "An Album",
               art_path: str | None = None, release_mbid: str | None = None) -> list[int]:
    """Insert one release and a selected, ledger-todo track per entry; return track ids."""
    with ws.store() as store, store.transaction() as conn:
        rid = conn.execute(
            "INSERT INTO release(key, title, date, label, mbid, art_path) VALUES (?,?,?,?,?,?)",
            (f"rel:{album}:{len(entries)}:{id(entries)}", album, "2001-02-03", "A Label",
             release_mbid, art_path)).lastrowid
        base = conn.execute("SELECT coalesce(max(rank), 0) FROM selection").fetchone()[0]
        ids = []
        for i, e in enumerate(entries, 1):
            tid = conn.execute(
                "INSERT INTO track(key, title, artist_credit, release_id, disc, position, mbid, "
                "source, licence) VALUES (?,?,?,?,1,?,?,?,?)",
                (f"t:{id(e)}:{i}:{base}", e.title, e.artist, rid, i, e.mbid, "test-suite",
                 "CC0-1.0")).lastrowid
            for code in e.isrcs:
                conn.execute("INSERT INTO track_isrc(track_id, isrc) VALUES (?,?)", (tid, code))
            conn.execute(
                "INSERT INTO source_audio(path, track_id, size, mtime_ns, licence) "
                "VALUES (?,?,?,0,?)",
                (str(e.source), tid, e.source.stat().st_size if e.source.is_file() else 0,
                 "CC-BY-SA-3.0"))
            conn.execute(
                "INSERT INTO selection(track_id, rank, band, cum_share, tier) VALUES (?,?,0,0,?)",
                (tid, base + i, e.tier))
            conn.execute(
                "INSERT INTO ledger(track_id, status, updated_at) VALUES (?, 'todo', 'now')",
                (tid,))
            ids.append(tid)
    return ids


def tool_ok(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.fixture
def sounds(data: Path) -> Path:
    return data / "debian-sounds" / "freedesktop-stereo"
