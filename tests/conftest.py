"""Shared fixtures: paths to the real test data and fresh workspaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonotheque.workspace import Workspace

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "ws")
