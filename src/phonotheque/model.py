"""Records that flow from sources into the catalogue.

Sources yield these; the store writes them. Records refer to each other by
*natural keys* (a MusicBrainz id, or a key the source derives), never by
database ids, so a source needs no database access and a re-run upserts the
same rows. Key conventions:

* artist/release/track ``key``: the MBID when there is one, else
  ``"<source-kind>:<stable id>"`` (e.g. ``"tags:<sha256 of path>"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Provenance:
    """Where a record came from: the input file, a locator inside it, and its licence."""

    source: str
    locator: str = ""
    licence: str | None = None


@dataclass(slots=True)
class Artist:
    key: str
    name: str
    mbid: str | None = None
    sort_name: str | None = None
    prov: Provenance | None = None


@dataclass(slots=True)
class Release:
    key: str
    title: str
    mbid: str | None = None
    date: str | None = None
    label: str | None = None
    barcode: str | None = None
    artist_credit: str | None = None
    art_path: str | None = None
    prov: Provenance | None = None


@dataclass(slots=True)
class Track:
    """A recording. ``release_key``/``disc``/``position`` place it on one release."""

    key: str
    title: str
    mbid: str | None = None
    artist_credit: str | None = None
    artist_keys: tuple[str, ...] = ()
    release_key: str | None = None
    disc: int | None = None
    position: int | None = None
    duration_ms: int | None = None
    prov: Provenance | None = None


@dataclass(slots=True)
class TrackISRC:
    track_key: str
    isrc: str
    known_country: bool = True
    prov: Provenance | None = None


@dataclass(slots=True)
class Listen:
    """A listen count for a track identified by ``key_kind`` = mbid | isrc | track_id | key."""

    key_kind: str
    key: str
    count: int
    users: int | None = None
    dataset: str = ""
    prov: Provenance | None = None


@dataclass(slots=True)
class SourceAudio:
    """An audio file the user holds, attached to a track (found by MBID, then ISRC, else created)."""

    path: str
    size: int
    mtime_ns: int
    codec: str | None = None
    container: str | None = None
    bitrate: int | None = None
    duration_ms: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    mbid: str | None = None
    isrcs: tuple[str, ...] = ()
    # Written only when neither ``mbid`` nor any of ``isrcs`` finds a track:
    # the track (and its release/artists/ISRCs) the file describes itself.
    fallback: tuple[Artist | Release | Track | TrackISRC, ...] = ()
    prov: Provenance | None = None


@dataclass(slots=True)
class Reject:
    """An input that was refused, and why.

    ``kept`` marks a problem with one value of a record that was still stored
    without it (an unparseable date tag, a number out of range): recorded like a
    refusal, but the input was not refused, so it does not make a run exit 10.
    """

    stage: str
    source: str
    locator: str
    reason: str
    kept: bool = False


@dataclass(slots=True)
class Checkpoint:
    """How far into ``source`` the records before this marker reach.

    The store commits it in the same transaction as those records, so a killed
    ingest resumes at ``offset`` and neither loses nor repeats rows.
    """

    source: str
    kind: str
    offset: int
    done: bool = False
    line: int = 0  # lines before ``offset``, so a resumed run numbers locators the same
    size: int | None = None
    mtime_ns: int | None = None
    # bytes of the file on disk read up to here, where that is not ``offset`` (a
    # compressed file: offsets count uncompressed bytes); for progress only, not stored
    disk: int | None = None


@dataclass(slots=True)
class Exclusion:
    kind: str  # isrc | mbid | path
    value: str
    reason: str = ""


Record = Artist | Release | Track | TrackISRC | Listen | SourceAudio | Reject | Checkpoint


@dataclass(slots=True)
class WriteCounts:
    """What a batch write did, per record kind."""

    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0  # Reject records written (refused inputs and dropped values)
    kept: int = 0  # of those, values dropped from a record that was stored
    new_refused: int = 0  # refused inputs not recorded by an earlier run
    by_kind: dict[str, list[int]] = field(default_factory=dict)

    def add(self, kind: str, added: int, updated: int, unchanged: int) -> None:
        self.added += added
        self.updated += updated
        self.unchanged += unchanged
        row = self.by_kind.setdefault(kind, [0, 0, 0])
        row[0] += added
        row[1] += updated
        row[2] += unchanged

    def merge(self, other: WriteCounts) -> None:
        self.read += other.read
        self.rejected += other.rejected
        self.kept += other.kept
        self.new_refused += other.new_refused
        for kind, (a, u, n) in other.by_kind.items():
            self.add(kind, a, u, n)
