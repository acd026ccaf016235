"""phono synth: deterministic, realistic, and ingestible with exactly the counts it reports."""

from __future__ import annotations

import statistics
from pathlib import Path

import orjson
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.ingest import ingest
from phonotheque.synth import SynthOptions, synth
from phonotheque.workspace import Workspace


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = synth(tmp_path / "a", SynthOptions(tracks=500, seed=3, listens_formats=("parquet", "csv")))
    b = synth(tmp_path / "b", SynthOptions(tracks=500, seed=3, listens_formats=("parquet", "csv")))
    c = synth(tmp_path / "c", SynthOptions(tracks=500, seed=4))
    for name in ("release.jsonl", "listens.parquet", "listens.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a/release.jsonl").read_bytes() != (tmp_path / "c/release.jsonl").read_bytes()
    assert a.tracks == b.tracks == c.tracks == 500
    assert not list(tmp_path.glob("*/.*tmp*"))  # temporary files renamed away


def test_counts_realism_and_ingest(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "s"
    rep = synth(out, SynthOptions(tracks=4000, seed=11, listens_formats=("parquet", "csv")))
    manifest = orjson.loads((out / "synth.json").read_bytes())
    assert manifest["tracks"] == 4000 and manifest["unique_isrcs"] == rep.unique_isrcs
    lines = (out / "release.jsonl").read_bytes().splitlines()
    assert len(lines) == rep.releases
    durations = [t["recording"]["length"] for line in lines
                 for m in orjson.loads(line)["media"] for t in m["tracks"]]
    assert 190_000 < statistics.median(durations) < 230_000  # ~3.5 min, log-normal
    assert 0.07 < rep.tracks_without_isrc / rep.tracks < 0.13
    assert rep.shared_isrc_links > 0
    table = pq.read_table(out / "listens.parquet")
    counts = table.column("listen_count").to_pylist()
    assert table.num_rows == 4000 and sum(counts) == rep.total_listens
    assert counts.count(0) == rep.zero_listen_tracks and 0 < rep.zero_listen_tracks < 2000
    top = sorted(counts, reverse=True)
    assert sum(top[:40]) > 0.3 * sum(counts)  # heavy head: 1 % of tracks, > 30 % of listens
    assert pacsv.read_csv(out / "listens.csv").num_rows == 4000

    report = ingest(ws, "musicbrainz", [out / "release.jsonl"])
    assert report.rejected == 0
    ingest(ws, "listens", [out / "listens.parquet"])
    with ws.store(readonly=True) as s:
        assert s.scalar("SELECT count(*) FROM track") == rep.tracks
        assert s.scalar("SELECT count(*) FROM release") == rep.releases
        assert s.scalar("SELECT count(*) FROM artist") == rep.artists
        assert s.scalar("SELECT count(*) FROM track_isrc") == rep.isrc_links
        assert s.scalar("SELECT count(DISTINCT isrc) FROM track_isrc") == rep.unique_isrcs
        assert s.scalar("SELECT count(*) FROM track t WHERE NOT EXISTS "
                        "(SELECT 1 FROM track_isrc i WHERE i.track_id = t.id)") == (
            rep.tracks_without_isrc)
        assert s.scalar("SELECT sum(count) FROM listens WHERE track_id IS NOT NULL") == (
            rep.total_listens)


def test_cli(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["synth", "--tracks", "50", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "50 tracks" in result.output
    assert (tmp_path / "o/release.jsonl").is_file() and (tmp_path / "o/listens.parquet").is_file()
