"""The one progress event every long job reports, and a meter that counts for it.

Long jobs (ingest, select, audio, pack, publish, release, verify, synth, health,
``build``) take ``progress: ProgressFn | None`` and call it with a
:class:`ProgressEvent`; the CLI turns events into rich progress bars. Library code
never draws anything. (The torrent engine, a library of its own, reports plain
byte counts, as torf does; the pack stage turns them into events.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """Where a job stands: ``done`` of ``total`` ``unit`` so far (cumulative)."""

    stage: str  # the job: "ingest", "select", "audio", "pack", "publish", ...
    done: float  # units done so far
    total: float | None = None  # None: not known (yet)
    unit: str = ""  # "B", "files", "rows", "steps", "tracks", ...
    message: str = ""  # what it is doing now (a step, an input)
    counts: Mapping[str, float] = field(default_factory=dict)  # other figures: errors, rows...


ProgressFn = Callable[[ProgressEvent], object]


class Meter:
    """Cumulative events from increments, for jobs that count as they go (thread-safe).

    ``advance(n, total=..., step=...)`` adds ``n`` units, optionally sets the total
    and the current step, and reports one event.
    """

    def __init__(self, report: ProgressFn | None, stage: str, unit: str = "") -> None:
        self._report = report
        self.stage = stage
        self.unit = unit
        self.done: float = 0
        self.total: float | None = None
        self.message = ""
        self._lock = threading.Lock()

    def advance(self, n: float = 0, total: float | None = None, step: str | None = None,
                **_ignored: object) -> None:
        if self._report is None:
            return
        with self._lock:
            self.done += n
            if total is not None:
                self.total = total
            if step is not None:
                self.message = step
            event = ProgressEvent(self.stage, self.done, self.total, self.unit, self.message)
        self._report(event)


def meter(report: ProgressFn | None, stage: str, unit: str = "") -> Callable[..., None] | None:
    """``Meter(...).advance`` for a job's internals, or None when nobody listens."""
    return None if report is None else Meter(report, stage, unit).advance
