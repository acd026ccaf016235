"""phono synth: deterministic, realistic, and ingestible with exactly the counts it reports."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from pathlib import Path

import orjson
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pyzstd
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.ingest import ingest
from phonotheque.synth import AUTO_COMPRESS_TRACKS, SynthOptions, compression, synth
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


def test_cli_a_listens_format_given_twice_is_written_once(tmp_path: Path) -> None:
    """`--listens csv --listens csv` was a traceback (zip() argument 2 is shorter)."""
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["synth", "--tracks", "20", "--compress", "none",
                                       "--listens", "csv", "--listens", "parquet",
                                       "--listens", "csv", "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert sorted(p.name for p in out.iterdir()) == [
        "listens.csv", "listens.parquet", "release.jsonl", "synth.json"]
    assert pacsv.read_csv(out / "listens.csv").num_rows == 20


def test_cli_a_seed_past_64_bits_is_refused_before_writing(tmp_path: Path) -> None:
    """A seed of 2**64 generated the whole catalogue, then was a traceback writing
    synth.json (orjson: Integer exceeds 64-bit range), leaving no synth.json."""
    for seed in (2**64, -(2**63) - 1):
        out = tmp_path / str(seed)
        result = CliRunner().invoke(main, ["synth", "--tracks", "20", f"--seed={seed}",
                                           "--out", str(out)])
        assert result.exit_code == 2, (result.output, result.exception)
        assert "seed" in result.output
        assert not out.exists() or not any(out.iterdir())
    for seed in (2**64 - 1, -(2**63)):
        result = CliRunner().invoke(main, ["synth", "--tracks", "20", f"--seed={seed}",
                                           "--out", str(tmp_path / "ok")])
        assert result.exit_code == 0, (result.output, result.exception)
        assert orjson.loads((tmp_path / "ok/synth.json").read_bytes())["seed"] == seed


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "synth.json"}


def test_compressed_output_is_the_plain_output_in_zstd_frames(tmp_path: Path) -> None:
    both = ("parquet", "csv")
    plain = synth(tmp_path / "p", SynthOptions(tracks=2000, seed=5, listens_formats=both,
                                               compress="none", chunk_tracks=300))
    packed = synth(tmp_path / "z", SynthOptions(tracks=2000, seed=5, listens_formats=both,
                                                compress="zstd", chunk_tracks=300))
    assert packed.chunks == 7 and packed.compress == "zstd" and plain.compress == "none"
    p, z = _files(tmp_path / "p"), _files(tmp_path / "z")
    assert sorted(z) == ["listens.csv.zst", "listens.parquet", "release.jsonl.zst"]
    # one zstd frame per chunk, concatenated: a valid .zst stream of the same lines
    assert z["release.jsonl.zst"].count(b"\x28\xb5\x2f\xfd") >= 7
    assert pyzstd.decompress(z["release.jsonl.zst"]) == p["release.jsonl"]
    assert pyzstd.decompress(z["listens.csv.zst"]) == p["listens.csv"]
    assert z["listens.parquet"] == p["listens.parquet"]
    assert asdict(plain) | {"release_file": "", "listens_files": (), "compress": ""} == (
        asdict(packed) | {"release_file": "", "listens_files": (), "compress": ""})
    assert not list(tmp_path.glob("*/.*tmp*"))  # parts and temporaries gone


def test_parallel_chunks_same_bytes_as_one_process(tmp_path: Path) -> None:
    """The bytes depend on seed, size and chunk size, not on how many processes made them."""
    for name, opts in {
        "tracks": SynthOptions(tracks=1500, seed=9, chunk_tracks=400, compress="zstd",
                               listens_formats=("parquet", "csv")),
        "releases": SynthOptions(tracks=0, releases=240, seed=9, chunk_releases=50),
    }.items():
        one = synth(tmp_path / f"{name}1", opts, workers=1)
        two = synth(tmp_path / f"{name}2", opts, workers=2)
        assert _files(tmp_path / f"{name}1") == _files(tmp_path / f"{name}2")
        assert one.tracks == two.tracks and one.releases == two.releases
    assert one.releases == 240 and one.chunks == 5


def test_chunks_join_into_one_consistent_catalogue(ws: Workspace, tmp_path: Path) -> None:
    """Ids and ISRCs stay unique across chunks; the counts are exact after ingest."""
    out = tmp_path / "s"
    rep = synth(out, SynthOptions(tracks=3000, seed=2, chunk_tracks=700, compress="zstd"))
    assert rep.chunks == 5
    lines = pyzstd.decompress((out / "release.jsonl.zst").read_bytes()).splitlines()
    assert len(lines) == rep.releases
    # the lines are assembled as text: exactly what orjson writes for the same objects
    assert all(orjson.dumps(orjson.loads(line)) == line for line in lines)
    sizes = [sum(len(m["tracks"]) for m in orjson.loads(line)["media"]) for line in lines]
    assert min(sizes) >= 1 and max(sizes) <= 16 and sum(sizes) == 3000
    assert 0.15 < sizes.count(1) / len(sizes) < 0.3  # ~20 % singles, as before chunking
    assert ingest(ws, "musicbrainz", [out / "release.jsonl.zst"]).rejected == 0
    ingest(ws, "listens", [out / "listens.parquet"])
    with ws.store(readonly=True) as s:
        assert s.scalar("SELECT count(*) FROM track") == rep.tracks
        assert s.scalar("SELECT count(*) FROM release") == rep.releases
        assert s.scalar("SELECT count(*) FROM artist") == rep.artists
        assert s.scalar("SELECT count(*) FROM track_isrc") == rep.isrc_links
        assert s.scalar("SELECT count(DISTINCT isrc) FROM track_isrc") == rep.unique_isrcs
        assert s.scalar("SELECT sum(count) FROM listens WHERE track_id IS NOT NULL") == (
            rep.total_listens)


def test_auto_compression_from_a_size_and_free_space_checked(tmp_path: Path) -> None:
    assert compression(SynthOptions(tracks=AUTO_COMPRESS_TRACKS)) == "zstd"
    assert compression(SynthOptions(tracks=AUTO_COMPRESS_TRACKS - 1)) == "none"
    assert compression(SynthOptions(tracks=0, releases=AUTO_COMPRESS_TRACKS // 8)) == "zstd"
    assert compression(SynthOptions(tracks=10, compress="none")) == "none"
    # more than any disk here holds: refused before a byte is written
    result = CliRunner().invoke(main, ["synth", "--tracks", str(10**13), "--compress", "zstd",
                                       "--out", str(tmp_path / "huge")])
    assert result.exit_code == 2 and "GB free" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list((tmp_path / "huge").iterdir()) == []
