"""Fixtures: a published folder built from real MusicBrainz test data (see published.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.serve.published import build_published


@pytest.fixture(scope="session")
def publish_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("publish")
    build_published(folder / "metadata.sqlite")
    return folder
