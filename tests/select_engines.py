"""Run a select test module under every engine: ``from tests.select_engines import engine``.

The fixture is autouse and parametrised: each test of the importing module runs once
per engine of :data:`phonotheque.select.plan.ENGINES`, with ``select()``'s default
engine switched, so the exact expectations hold on SQLite and on DuckDB alike.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from phonotheque.select import plan

# DuckDB's engine verifies its 50 MB extension's signature on every run (about 0.3 s,
# over 1 s on a loaded machine): the DuckDB half runs with -m slow, while
# tests/test_select_engines.py compares the engines on every suite run.
PARAMS = [pytest.param(e, marks=pytest.mark.slow) if e != "sqlite" else e
          for e in sorted(plan.ENGINES)]


@pytest.fixture(autouse=True, params=PARAMS)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setitem(plan.ENGINES, "sqlite", plan.ENGINES[request.param])
    yield request.param
