"""Catalogue builders shared by the selection tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phonotheque.catalogue.store import Store, now_iso
from phonotheque.model import (
    Artist,
    Listen,
    Provenance,
    Record,
    Release,
    SourceAudio,
    Track,
    TrackISRC,
)

LB = Path(__file__).parent / "data" / "listenbrainz"


def lb_top_recordings() -> list[list[Any]]:
    """ListenBrainz's sitewide top recordings: [group mbid, recording mbid, listens, users]."""
    return json.loads((LB / "top_recording_db_data_for_api_test.json").read_text())


def lb_user_top_recordings() -> list[dict[str, Any]]:
    return json.loads((LB / "user_top_recordings_db_data_for_api_test.json").read_text())[0]["data"]


def lb_top_records() -> list[Record]:
    """One artist and release per ListenBrainz group, one track per recording MBID."""
    prov = Provenance("top_recording_db_data_for_api_test.json")
    out: list[Record] = []
    for i, (group, rec, listens, users) in enumerate(lb_top_recordings()):
        out += [
            Artist(group, f"Artist {group[:8]}", mbid=group),
            Release(f"rel:{group}", f"Release {group[:8]}"),
            Track(rec, f"Recording {rec[:8]}", mbid=rec, artist_keys=(group,),
                  release_key=f"rel:{group}", position=i + 1),
            Listen("mbid", rec, listens, users=users, dataset="lb-top", prov=prov),
        ]
    return out


def lb_user_records() -> list[Record]:
    """The 100 recordings of a ListenBrainz user's top list, with their listen counts."""
    out: list[Record] = []
    for row in lb_user_top_recordings():
        rec = row["recording_mbid"]
        artists = tuple(row["artist_mbids"])
        out += [Artist(a, row["artist_name"], mbid=a) for a in artists]
        out.append(Release(row["release_mbid"], row["release_name"], mbid=row["release_mbid"]))
        out.append(Track(rec, row["track_name"], mbid=rec, artist_keys=artists,
                         release_key=row["release_mbid"], duration_ms=200_000))
        out.append(Listen("mbid", rec, row["listen_count"], dataset="lb-user"))
    return out


@dataclass
class T:
    """A compact track spec for hand-made catalogues."""

    key: str
    listens: int = 0
    isrcs: tuple[str, ...] = ()
    artist: str = "ar"
    release: str = "re"
    duration_ms: int | None = 200_000
    audio_size: int | None = None
    mbid: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def records(tracks: list[T]) -> list[Record]:
    out: list[Record] = []
    for t in tracks:
        out += [Artist(t.artist, t.artist), Release(t.release, t.release)]
        out.append(Track(t.key, t.key, mbid=t.mbid, artist_keys=(t.artist,), release_key=t.release,
                         duration_ms=t.duration_ms))
        out += [TrackISRC(t.key, i) for i in t.isrcs]
        if t.listens:
            out.append(Listen("key", t.key, t.listens, dataset="hand"))
        if t.audio_size is not None:
            out.append(SourceAudio(path=f"/music/{t.key}.flac", size=t.audio_size, mtime_ns=0,
                                   duration_ms=t.duration_ms, mbid=None,
                                   fallback=(Track(t.key, t.key),)))
    return out


def tid(store: Store, key: str) -> int:
    return int(store.scalar("SELECT id FROM track WHERE key = ?", (key,)))


def statuses(store: Store) -> dict[str, tuple[str, str | None]]:
    """key -> (status, detail)."""
    return {r[0]: (r[1], r[2]) for r in store.query(
        "SELECT t.key, l.status, l.detail FROM ledger l JOIN track t ON t.id = l.track_id")}


def selected_keys(store: Store) -> list[str]:
    return [r[0] for r in store.query(
        "SELECT t.key FROM selection s JOIN track t ON t.id = s.track_id ORDER BY s.rank")]


def add_audio_file(store: Store, track_id: int, tier: str = "original") -> None:
    """What the audio stage writes for a finished track."""
    with store.transaction():
        store.conn.execute(
            """INSERT INTO audio_file(track_id, tier, path, size, sha256, created_at)
               VALUES (?, ?, ?, 1, 'x', ?)""",
            (track_id, tier, f"audio/{track_id}.flac", now_iso()))


def plan_tables(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The workspace's ``selection`` and ``ledger`` rows in track id order, from the
    catalogue its engine keeps them in (catalogue.duckdb on a columnar workspace)."""
    from phonotheque.catalogue import bulk
    from phonotheque.catalogue.selection import COLUMNS
    from phonotheque.workspace import Workspace

    queries = {"selection": f"SELECT {', '.join(COLUMNS)} FROM selection ORDER BY track_id",
               "ledger": "SELECT track_id, status, detail, updated_at FROM ledger "
                         "ORDER BY track_id"}
    ws = Workspace.open(root)
    if ws.engine == "duckdb":
        con = bulk.open_bulk(ws.root)
        try:
            return {t: [tuple(r) for r in con.execute(q).fetchall()] for t, q in queries.items()}
        finally:
            con.close()
    with ws.store(readonly=True) as store:
        return {t: [tuple(r) for r in store.query(q)] for t, q in queries.items()}
