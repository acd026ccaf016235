"""Options of a selection, and the size and band-scheme syntax the CLI accepts."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from phonotheque.errors import InputError
from phonotheque.sources.bounds import MAX_DURATION_MS, MAX_INT64
from phonotheque.units import format_size, parse_size

__all__ = ["DEFAULT_ORIGINAL_SHARE", "BandScheme", "SelectOptions", "format_size", "parse_size"]

# Share of listens whose tracks keep their original file when nothing else is asked.
DEFAULT_ORIGINAL_SHARE = 0.5
# Highest bitrate (bits/s) whose size estimate (duration x bitrate) stays in int64 for
# the longest duration a track may have: past it SQLite estimated in floats and DuckDB
# stopped with an overflow.
MAX_BITRATE = MAX_INT64 // MAX_DURATION_MS
# Most quantile bands: a band number is at most N, and catalogue.duckdb's band column is
# a 32-bit INTEGER (past it the columnar select stopped, where SQLite went on).
MAX_BANDS = 2**31 - 1

@dataclass(frozen=True, slots=True)
class BandScheme:
    """How selected tracks are cut into popularity bands (band 1 = most popular).

    * ``decade``: one band per power of ten of listen count (10⁶–10⁷, 10⁵–10⁶, ...);
      zero-listen tracks form the last band. Empty decades leave a gap in numbering.
    * ``quantiles:N``: N bands of (nearly) equal track count by rank.
    """

    kind: str = "decade"
    n: int = 0

    @classmethod
    def parse(cls, text: str) -> BandScheme:
        t = text.strip().lower()
        if t == "decade":
            return cls("decade", 0)
        m = re.fullmatch(r"quantiles:([0-9]+)", t)
        if m and 1 <= int(m.group(1)) <= MAX_BANDS:
            return cls("quantiles", int(m.group(1)))
        raise InputError(text, "not a band scheme (use 'decade' or 'quantiles:N' with "
                               f"1 <= N <= {MAX_BANDS:,})")

    def __str__(self) -> str:
        return "decade" if self.kind == "decade" else f"quantiles:{self.n}"


@dataclass(frozen=True, slots=True)
class SelectOptions:
    """Everything a selection depends on besides the catalogue.

    coverage: share of listens (of non-excluded tracks) the selection must cover.
    budget_bytes: stop taking tracks once their estimated size would exceed this.
    original_share: tracks ranked within this share of listens keep their original
        file (tier ``original``); the rest are re-encoded. Ignored if
        ``tail_threshold`` is set. ``None`` (the default): 0.5, except when every
        held track is taken (``take_all``, or no listen data at all): then every
        selected track keeps its original, as a person archiving their own
        files expects.
    tail_threshold: if set, tracks with fewer listens than this are re-encoded and
        the others kept as originals.
    opus_bitrate: bits/s of re-encodes (estimate = duration × bitrate).
    original_bitrate: bits/s assumed for an original whose file we do not hold
        (typical 16-bit/44.1 kHz FLAC), so budgets are not under-estimated.
    assumed_duration_ms: duration assumed when neither file nor track has one.
    priority_threshold: zero-listen tracks are taken if their secondary priority
        (0..1, see :mod:`phonotheque.select.plan`) is at least this; > 1 takes none.
    bands: popularity band scheme.
    take_all: take every held track (every non-excluded track with a source file),
        whatever its listens; also what happens when the catalogue has no listen
        data at all. Ranking, tiers, bands and the budget apply as usual.
    """

    coverage: float = 0.996
    budget_bytes: int | None = None
    original_share: float | None = None
    tail_threshold: int | None = None
    opus_bitrate: int = 75_000
    original_bitrate: int = 900_000
    assumed_duration_ms: int = 240_000
    priority_threshold: float = 0.5
    bands: BandScheme = BandScheme()
    take_all: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.coverage <= 1.0:
            raise InputError(self.coverage, "coverage must be between 0 and 1")
        if self.original_share is not None and not 0.0 <= self.original_share <= 1.0:
            raise InputError(self.original_share, "original share must be between 0 and 1")
        if self.budget_bytes is not None and self.budget_bytes < 0:
            raise InputError(self.budget_bytes, "budget must not be negative")
        if self.tail_threshold is not None and self.tail_threshold < 0:
            raise InputError(self.tail_threshold, "tail threshold must not be negative")
        for name, value in (("budget", self.budget_bytes), ("tail threshold", self.tail_threshold)):
            if value is not None and value > MAX_INT64:  # no engine binds or records it
                raise InputError(value, f"{name} must be at most {MAX_INT64:,}")
        if self.bands.kind == "quantiles" and not 1 <= self.bands.n <= MAX_BANDS:
            raise InputError(str(self.bands), f"quantile bands must be 1 to {MAX_BANDS:,}")
        if math.isnan(self.priority_threshold):  # SQLite binds it as NULL, DuckDB as NaN
            raise InputError(self.priority_threshold, "priority threshold must be a number")
        for name in ("opus_bitrate", "original_bitrate", "assumed_duration_ms"):
            if getattr(self, name) <= 0:
                raise InputError(getattr(self, name), f"{name} must be positive")
        for name, top in (("opus_bitrate", MAX_BITRATE), ("original_bitrate", MAX_BITRATE),
                          ("assumed_duration_ms", MAX_DURATION_MS)):
            if getattr(self, name) > top:
                raise InputError(getattr(self, name), f"{name} must be at most {top:,}")

    def share_of_originals(self, held_only: bool) -> float | None:
        """The original share in effect; ``None`` means every selected track is original."""
        if self.original_share is not None:
            return self.original_share
        return None if held_only else DEFAULT_ORIGINAL_SHARE

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bands"] = str(self.bands)
        return d
