"""One progress event type for every long job (phonotheque.progress)."""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

from phonotheque.cli.build_cmds import demo_sources
from phonotheque.pipeline import BuildOptions, build
from phonotheque.progress import Meter, ProgressEvent
from phonotheque.workspace import Workspace


def test_a_build_reports_one_event_type_from_every_stage(tmp_path: Path) -> None:
    """build hands the caller's callback to each stage as it is: no per-stage shapes."""
    events: list[ProgressEvent] = []
    ws = Workspace.create(tmp_path / "ws")
    build(ws, demo_sources(), BuildOptions(workers=0), progress=events.append)
    assert all(isinstance(e, ProgressEvent) for e in events)
    by_stage: dict[str, list[ProgressEvent]] = defaultdict(list)
    for e in events:
        by_stage[e.stage].append(e)
    assert set(by_stage) == {"ingest", "select", "audio", "pack", "publish"}
    units = {stage: {e.unit for e in evs} for stage, evs in by_stage.items()}
    assert units == {"ingest": {"B"}, "select": {"steps"}, "audio": {"files"},
                     "pack": {"B"}, "publish": {"rows"}}
    select = by_stage["select"]
    assert [e.done for e in select] == list(range(1, len(select) + 1))
    assert select[-1].done == select[-1].total
    audio = by_stage["audio"]
    assert audio[-1].done == audio[-1].total and "errors" in audio[-1].counts
    assert all("rows" in e.counts for e in by_stage["ingest"])


def test_meter_turns_increments_from_many_threads_into_cumulative_events() -> None:
    events: list[ProgressEvent] = []
    lock = threading.Lock()

    def report(e: ProgressEvent) -> None:
        with lock:
            events.append(e)

    m = Meter(report, "pack", "B")
    m.advance(0, total=8000, step="hashing")
    threads = [threading.Thread(target=lambda: [m.advance(1) for _ in range(1000)])
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(e.done for e in events) == 8000 == m.done
    assert sorted(e.done for e in events) == list(range(0, 8001))
    assert {e.total for e in events} == {8000} and {e.message for e in events} == {"hashing"}
