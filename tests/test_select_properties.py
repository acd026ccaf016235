"""Coverage invariants as properties: random small catalogues, checked against an
independent Python oracle of the documented rules."""

from __future__ import annotations

import random
import tempfile
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonotheque.select import SelectOptions, select
from phonotheque.workspace import Workspace
from tests.select_engines import engine  # noqa: F401  (on a SQLite and a columnar workspace)
from tests.select_helpers import T, records, selected_keys, statuses

ISRCS = [f"GBAAA99{n:05d}" for n in range(8)]

track_specs = st.lists(
    st.tuples(
        st.integers(0, 40),  # listens (0 = none)
        st.lists(st.sampled_from(ISRCS), max_size=2, unique=True),
        st.booleans(),  # holds a source file
    ),
    max_size=14,
)


def _build(specs: list[tuple[int, list[str], bool]], order: list[int]) -> list[T]:
    tracks = [
        T(f"k{i:02d}", n, isrcs=tuple(isrcs), audio_size=3_000_000 if audio else None)
        for i, (n, isrcs, audio) in enumerate(specs)
    ]
    return [tracks[i] for i in order]


def _need(coverage: float, total: int) -> int:
    return int((Decimal(repr(coverage)) * total).to_integral_value(rounding=ROUND_CEILING))


def _oracle(tracks: list[T], coverage: float) -> tuple[list[str], int, int]:
    """Selected keys in rank order, covered listens, total, per the documented rules
    (zero-listen works ignored: the tests set the priority threshold above 1; without
    any listens, every held work is taken)."""
    parent = {t.key: t.key for t in tracks}

    def find(k: str) -> str:
        while parent[k] != k:
            k = parent[k]
        return k

    by_isrc: dict[str, str] = {}
    for t in tracks:
        for code in t.isrcs:
            if code in by_isrc:
                parent[find(t.key)] = find(by_isrc[code])
            else:
                by_isrc[code] = t.key
    groups: dict[str, list[T]] = {}
    for t in tracks:
        groups.setdefault(find(t.key), []).append(t)

    def order(t: T) -> tuple[int, int, str]:
        # a held file represents its ISRC group, the most listened of those
        return (-(t.audio_size is not None), -t.listens, t.key)

    works = []
    for members in groups.values():
        rep = min(members, key=order)
        works.append((sum(m.listens for m in members), rep))
    works.sort(key=lambda w: (-w[0], -(w[1].audio_size is not None), w[1].key))
    total = sum(t.listens for t in tracks)
    if total == 0:  # no listen data at all: every held work, in rank order (issue 11 §1)
        return [rep.key for _, rep in works if rep.audio_size is not None], 0, 0
    need = _need(coverage, total)
    chosen, cum = [], 0
    for listens, rep in works:
        if cum >= need or listens == 0:
            break
        chosen.append(rep.key)
        cum += listens
    return chosen, cum, total


# The engine fixture only switches the engine: the same for every example.
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(specs=track_specs, coverage=st.floats(0, 1), seed=st.integers(0, 2**32 - 1),
       budget=st.one_of(st.none(), st.integers(0, 60_000_000)))
def test_selection_invariants(specs: list[tuple[int, list[str], bool]], coverage: float,
                              seed: int, budget: int | None) -> None:
    opts = SelectOptions(coverage=coverage, budget_bytes=budget, priority_threshold=2.0)
    forward = list(range(len(specs)))
    shuffled = forward[:]
    random.Random(seed).shuffle(shuffled)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, order in enumerate((forward, shuffled)):
            ws = Workspace.create(Path(tmp) / f"w{n}")
            tracks = _build(specs, order)
            with ws.store() as s:
                s.write(records(tracks))
                report = select(s, opts)
                keys = selected_keys(s)
                ledger = statuses(s)
                est = [r[0] for r in s.query("SELECT est_bytes FROM selection ORDER BY rank")]
                isrcs = s.query(
                    """SELECT ti.isrc, count(*) FROM selection x
                       JOIN track_isrc ti ON ti.track_id = x.track_id
                       GROUP BY ti.isrc HAVING count(*) > 1""")
                n_tracks = s.scalar("SELECT count(*) FROM track")
            results.append((keys, ledger, report.covered_share, report.budget_stopped))

            # every track has exactly one status; selected ones are todo when their
            # file is held, wanted when not
            assert len(ledger) == n_tracks
            held = {t.key for t in tracks if t.audio_size is not None}
            assert {k for k, (stat, _) in ledger.items() if stat == "todo"} == set(keys) & held
            assert {k for k, (stat, _) in ledger.items() if stat == "wanted"} == set(keys) - held
            # one file per ISRC
            assert isrcs == []
            # covered share reaches the target unless the budget stopped it
            if not report.budget_stopped:
                assert report.covered_share >= coverage or report.total_listens == 0
            if budget is not None:
                assert sum(est) <= budget
            # the same selection as the oracle's, or its prefix when the budget stopped it
            want, want_cum, total = _oracle(tracks, coverage)
            assert report.total_listens == total
            if report.budget_stopped:
                assert keys == want[: len(keys)] and len(keys) < len(want)
            else:
                assert keys == want and report.covered_listens == want_cum
                # shortest prefix: without its last work the target is missed
                if keys and total:
                    last = report.covered_listens - _work_listens(tracks, keys[-1])
                    assert last < _need(coverage, total)
    # insertion order does not matter
    assert results[0] == results[1]


def _work_listens(tracks: list[T], rep_key: str) -> int:
    """Listens of the ISRC group represented by ``rep_key`` (via the oracle's grouping)."""
    return _oracle_groups(tracks)[rep_key]


def _oracle_groups(tracks: list[T]) -> dict[str, int]:
    chosen, _, _ = _oracle(tracks, 1.0)
    out: dict[str, int] = {}
    seen: set[str] = set()
    # recompute group sums by flood fill over shared ISRCs
    by_isrc: dict[str, list[T]] = {}
    for t in tracks:
        for code in t.isrcs:
            by_isrc.setdefault(code, []).append(t)
    for t in tracks:
        if t.key in seen:
            continue
        stack, comp = [t], []
        seen.add(t.key)
        while stack:
            cur = stack.pop()
            comp.append(cur)
            for code in cur.isrcs:
                for other in by_isrc[code]:
                    if other.key not in seen:
                        seen.add(other.key)
                        stack.append(other)
        total = sum(c.listens for c in comp)
        for c in comp:
            out[c.key] = total
    assert all(k in out for k in chosen)
    return out
