"""The hashing engine gives the same answers on threads and on worker processes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from phonotheque.errors import InputError
from phonotheque.torrent import TorrentOptions, create_torrent, verify_torrent
from phonotheque.torrent import _hashing as hashing
from tests.torrent._torrent_refs import AWKWARD, make_tree


@pytest.fixture
def album(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "Album", AWKWARD)


@pytest.mark.parametrize("version", ["1", "2", "hybrid"])
def test_processes_and_threads_agree(
    album: Path, version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = TorrentOptions(version=version, piece_length=16384, workers=2)  # type: ignore[arg-type]
    on_threads = create_torrent(album, opts)
    monkeypatch.setattr(hashing, "PROCESS_THRESHOLD", 0)
    seen: list[int] = []
    on_processes = create_torrent(album, replace(opts, processes=True), progress=seen.append)
    assert on_processes.metainfo == on_threads.metainfo
    assert sum(seen) == on_threads.total_size
    (album / "one").unlink()
    assert verify_torrent(on_processes, album.parent).missing == ("one",)


def test_worker_errors_come_back_as_phono_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "PROCESS_THRESHOLD", 0)
    gone = hashing.Segment(tmp_path / "gone.flac", 100_000)
    with pytest.raises(InputError, match="gone.flac"):
        hashing.hash_aligned([gone], 16384, v1=True, workers=2, processes=True)
    with pytest.raises(InputError, match="gone.flac"):
        hashing.hash_stream([gone], 16384, workers=2, processes=True)
    lenient = hashing.hash_stream([gone], 16384, strict=False, workers=2, processes=True)
    assert lenient.problems == {0: "missing"}
