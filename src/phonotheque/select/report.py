"""What a selection reached: the report dataclasses ``select`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phonotheque.listen_match import ListenMatch
from phonotheque.select.options import SelectOptions

# How the selection was made (SelectReport.mode).
MODES = {
    "coverage": "the fewest works covering the coverage target of matched listens",
    "all": "every held track (--all)",
    "no_listens": "every held track: the catalogue has no listen data",
}


@dataclass(frozen=True, slots=True)
class BandSize:
    band: int
    tracks: int
    est_bytes: int
    cum_share: float  # covered share at the end of the band


@dataclass(frozen=True, slots=True)
class TierSize:
    tier: str
    tracks: int
    est_bytes: int


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """After the first ``rank`` works of the ranking: covered share and estimated bytes."""

    rank: int
    share: float
    bytes: int

    def as_list(self) -> list[Any]:
        return [self.rank, self.share, self.bytes]


@dataclass(frozen=True, slots=True)
class SelectReport:
    """Result of :func:`phonotheque.select.select`.

    Positions (``coverage_cut``, ``tier_boundary``) count *works* in the ranking
    (an ISRC group counts once; excluded tracks are not ranked).
    """

    options: SelectOptions
    tracks: int  # every track in the catalogue
    excluded: int
    works: int  # ranked units: non-excluded tracks, one per ISRC group
    isrc_duplicates: int  # non-excluded tracks represented by another track of their ISRC
    works_with_listens: int
    total_listens: int  # listens of non-excluded tracks: the denominator of every share
    excluded_listens: int
    unresolved_listens: int  # listens of rows that match no track (not counted anywhere)
    selected: int
    selected_zero_listen: int
    coverage_cut: int  # rank of the last work the coverage target needs
    tier_boundary: int  # works ranked at or above this keep their original file
    zero_listen_above_threshold: int
    covered_listens: int
    covered_share: float
    budget_stopped: bool
    tiers: dict[str, TierSize]
    est_bytes: int
    statuses: dict[str, int]
    bands: list[BandSize]
    curve: list[CurvePoint] = field(repr=False)
    elapsed_s: float
    listen_match: ListenMatch = ListenMatch(())  # matched / unmatched listens by key kind
    mode: str = "coverage"  # a key of MODES

    @property
    def held_only(self) -> bool:
        return self.mode != "coverage"

    @property
    def target_reached(self) -> bool:
        return self.held_only or self.covered_share >= self.options.coverage

    def summary(self) -> dict[str, Any]:
        """Everything but the curve, as plain JSON-able values."""
        return {
            "options": self.options.as_dict(),
            "tracks": self.tracks,
            "excluded": self.excluded,
            "works": self.works,
            "isrc_duplicates": self.isrc_duplicates,
            "works_with_listens": self.works_with_listens,
            "total_listens": self.total_listens,
            "excluded_listens": self.excluded_listens,
            "unresolved_listens": self.unresolved_listens,
            "listens": self.listen_match.as_dict(),
            "mode": self.mode,
            "selected": self.selected,
            "selected_zero_listen": self.selected_zero_listen,
            "coverage_cut": self.coverage_cut,
            "tier_boundary": self.tier_boundary,
            "zero_listen_above_threshold": self.zero_listen_above_threshold,
            "covered_listens": self.covered_listens,
            "covered_share": self.covered_share,
            "target_reached": self.target_reached,
            "budget_stopped": self.budget_stopped,
            "tiers": {k: {"tracks": v.tracks, "est_bytes": v.est_bytes}
                      for k, v in self.tiers.items()},
            "est_bytes": self.est_bytes,
            "statuses": dict(self.statuses),
            "bands": [{"band": b.band, "tracks": b.tracks, "est_bytes": b.est_bytes,
                       "cum_share": b.cum_share} for b in self.bands],
            "elapsed_s": self.elapsed_s,
        }
