"""Source detection by score (sources.detect), per-source policy read by the ingest runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonotheque import sources
from phonotheque.errors import InputError
from phonotheque.ingest import IngestOptions, ingest
from phonotheque.sources import SOURCES, detect
from phonotheque.workspace import Workspace

DATA = Path(__file__).parents[1] / "data"
DEMO = Path(sources.__file__).parents[1] / "demo_data"


@pytest.mark.parametrize("path,kind", [
    (DATA / "mbdump" / "webservice", "mbdump"),           # a dump folder holding mbdump/
    (DATA / "mbdump" / "webservice" / "mbdump", "mbdump"),  # the COPY tables themselves
    (DEMO / "mbdump", "mbdump"),
    (DATA / "beets", "tags"),                              # any other folder
    (DEMO / "audio", "tags"),
    (DATA / "picard" / "ws_data" / "release.json", "musicbrainz"),
    (DEMO / "musicbrainz" / "mbdump-sample.jsonl", "musicbrainz"),
    (DATA / "listenbrainz" / "top_recording_db_data_for_api_test.json", "listens"),
    (DATA / "listenbrainz" / "listenbrainz_listens.jsonl", "listens"),
    (DEMO / "listenbrainz-top-recordings.json", "listens"),
    (DEMO / "listens.csv", "listens"),
])
def test_real_files_are_claimed_by_their_source(path: Path, kind: str) -> None:
    assert path.exists(), path
    assert detect(path).kind == kind


def test_the_highest_score_wins_and_only_one_source_claims_it_most() -> None:
    """A ListenBrainz JSON file is JSON to musicbrainz (1) but ListenBrainz to listens (2)."""
    path = DATA / "listenbrainz" / "listenbrainz_listens.jsonl"
    header = path.read_bytes()[:sources.HEADER_BYTES]
    scores = {k: s.score(path, header) for k, s in SOURCES.items()}
    assert scores == {"listens": 2, "mbdump": 0, "musicbrainz": 1, "tags": 0}
    dump = DATA / "mbdump" / "webservice"
    assert {k: s.score(dump, b"") for k, s in SOURCES.items()} == {
        "listens": 0, "mbdump": 2, "musicbrainz": 0, "tags": 1}


def test_nobody_claims_it(tmp_path: Path) -> None:
    odd = tmp_path / "x.bin"
    odd.write_bytes(b"\0")
    with pytest.raises(InputError, match="cannot tell what kind.*listens:.*tags:"):
        detect(odd)


def test_every_registered_source_states_its_policy() -> None:
    """The registry is discovered from the package: each module's SOURCE, nothing else."""
    assert set(SOURCES) == {"musicbrainz", "mbdump", "tags", "listens"}
    orders = sorted(SOURCES, key=lambda k: SOURCES[k].ingest_order)
    assert orders == ["musicbrainz", "mbdump", "tags", "listens"]
    assert SOURCES["tags"].max_batch == 2_000
    assert all(SOURCES[k].max_batch is None for k in ("musicbrainz", "mbdump", "listens"))


def test_ingest_applies_the_source_batch_cap_whatever_the_caller_asks(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """`phono ingest tags` capped its batch in the CLI, so `phono build` did not: the
    runner now reads the cap from the source, for every caller."""
    monkeypatch.setattr(SOURCES["tags"], "max_batch", 2)
    batches: list[int] = []
    report = ingest(ws, "tags", [DEMO / "audio"], IngestOptions(batch_size=20_000),
                    progress=lambda p: batches.append(int(p.counts["rows"])))
    assert report.read >= 6
    assert len(batches) >= report.read // 2  # one commit per 2 files, not one for all
