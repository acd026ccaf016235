"""The one clock every stage stamps its records with.

Reproducible builds need reproducible timestamps: AAC identifiers, torrent
creation times and the published files all derive from times the catalogue
records, so two builds of the same inputs are byte-identical only if those
times are. Following the reproducible-builds convention, the CLI freezes this
clock at ``SOURCE_DATE_EPOCH`` when that variable is set (the library itself
reads no environment); tests and the crash harness use it to compare builds.
"""

from __future__ import annotations

from datetime import UTC, datetime

_frozen: datetime | None = None


def freeze(at: datetime | None) -> None:
    """Make :func:`now` return ``at`` (``None`` restores the wall clock)."""
    global _frozen
    _frozen = at.astimezone(UTC) if at is not None else None


def freeze_epoch(seconds: int) -> None:
    freeze(datetime.fromtimestamp(seconds, UTC))


def now() -> datetime:
    return _frozen if _frozen is not None else datetime.now(UTC)


def now_iso() -> str:
    return now().isoformat(timespec="seconds")
