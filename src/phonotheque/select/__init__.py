"""Select: which tracks the archive keeps, in which tier, and why the others are left out.

Public API: :class:`SelectOptions`, :func:`select` -> :class:`SelectReport`, the
ledger helpers, and :func:`render_report` (coverage curve as PNG or HTML).
"""

from phonotheque.catalogue.ledger import (
    EXPORT_COLUMNS,
    LedgerEntry,
    count_matching,
    iter_ledger,
    ledger_entries,
    record_outcomes,
    status_counts,
)
from phonotheque.select.options import BandScheme, SelectOptions, format_size, parse_size
from phonotheque.select.plan import ENGINES, STEPS, Progress, select
from phonotheque.select.report import BandSize, CurvePoint, SelectReport, TierSize

__all__ = [
    "ENGINES",
    "EXPORT_COLUMNS",
    "STEPS",
    "BandScheme",
    "BandSize",
    "CurvePoint",
    "LedgerEntry",
    "Progress",
    "SelectOptions",
    "SelectReport",
    "TierSize",
    "count_matching",
    "format_size",
    "iter_ledger",
    "ledger_entries",
    "parse_size",
    "record_outcomes",
    "select",
    "status_counts",
]
