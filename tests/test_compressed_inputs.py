"""Compressed inputs (.jsonl.zst, .json.gz, .csv.zst...) read like the plain files."""

from __future__ import annotations

import bz2
import gzip
import io
import sqlite3
import tarfile
from pathlib import Path

import pytest
import pyzstd
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.ingest import IngestOptions, ingest
from phonotheque.model import Checkpoint, Reject
from phonotheque.progress import ProgressEvent
from phonotheque.sources import Input, ReadOptions, detect, get
from phonotheque.sources import musicbrainz as mb_source
from phonotheque.synth import SynthOptions, synth
from phonotheque.workspace import Workspace

# Every table ingest writes, without the provenance file name (it names the input).
CATALOGUE = {
    "artist": "id, key, mbid, name, sort_name, locator, licence",
    "release": "id, key, mbid, title, date, label, barcode, artist_credit, locator",
    "track": "id, key, mbid, title, artist_credit, release_id, disc, position, duration_ms",
    "track_artist": "*",
    "track_isrc": "track_id, isrc, known_country, locator",
    "listens": "id, dataset, key_kind, key, count, users, track_id, locator",
}


def catalogue(ws: Workspace) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(f"file:{ws.root / 'catalogue.sqlite'}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT {cols} FROM {t} ORDER BY 1, 2").fetchall()
                for t, cols in CATALOGUE.items()}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synth(out, SynthOptions(tracks=1500, seed=4,
                            listens_formats=("parquet", "csv")))
    return out


def _compress(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    suffix = dst.suffix
    packed = {".zst": pyzstd.compress, ".gz": gzip.compress, ".bz2": bz2.compress}[suffix](data)
    dst.write_bytes(packed)
    return dst


@pytest.mark.parametrize("suffix", [".zst", ".gz", ".bz2"])
def test_compressed_dump_gives_the_same_catalogue(plain: Path, tmp_path: Path,
                                                  suffix: str) -> None:
    one = Workspace.create(tmp_path / "plain")
    two = Workspace.create(tmp_path / "packed")
    packed = _compress(plain / "release.jsonl", tmp_path / f"release.jsonl{suffix}")
    csv = _compress(plain / "listens.csv", tmp_path / f"listens.csv{suffix}")
    assert ingest(one, "musicbrainz", [plain / "release.jsonl"]).rejected == 0
    assert ingest(two, "musicbrainz", [packed]).rejected == 0
    ingest(one, "listens", [plain / "listens.csv"])
    ingest(two, "listens", [csv])  # same dataset name: "listens"
    assert catalogue(one) == catalogue(two)
    assert len(catalogue(two)["track"]) == 1500
    # a second run changes nothing
    assert ingest(two, "musicbrainz", [packed]).rejected == 0
    assert catalogue(one) == catalogue(two)


def test_compressed_names_are_detected(plain: Path, tmp_path: Path) -> None:
    dump = _compress(plain / "release.jsonl", tmp_path / "release.jsonl.zst")
    assert detect(dump).kind == "musicbrainz"
    assert detect(_compress(plain / "listens.csv", tmp_path / "l.csv.zst")).kind == "listens"
    lb = tmp_path / "lb.json"
    lb.write_bytes(b'[{"recording_mbid": "2d0c8083-0d2e-440a-86fc-3014194dd697", '
                   b'"total_listen_count": 3}]')
    # the ListenBrainz markers are inside the compressed bytes: seen after decompressing
    assert detect(_compress(lb, tmp_path / "lb.json.gz")).kind == "listens"
    assert get("musicbrainz").inputs([tmp_path])  # folders: compressed files found too
    names = {i.path.name for i in get("listens").inputs([tmp_path])}
    assert {"l.csv.zst", "lb.json.gz"} <= names


def test_resume_by_uncompressed_offset(plain: Path, tmp_path: Path) -> None:
    """A resumed read of a .zst starts at the same (uncompressed) line as the plain file."""
    src = get("musicbrainz")
    packed = _compress(plain / "release.jsonl", tmp_path / "release.jsonl.zst")
    a, b = src.inputs([plain / "release.jsonl"])[0], src.inputs([packed])[0]
    # where a checkpoint after line 80 would point: the offset after that line
    start = sum(len(x) for x in (plain / "release.jsonl").read_bytes().splitlines(True)[:80])

    def records(item: Input, at: int, line: int) -> list[object]:
        return [(type(r).__name__, getattr(r, "key", None), getattr(r, "title", None))
                for r in src.read(item, ReadOptions(), at, line)
                if not isinstance(r, Checkpoint)]

    resumed, whole = records(b, start, 80), records(a, 0, 0)
    assert resumed == records(a, start, 80)
    assert 0 < len(resumed) < len(whole) and resumed == whole[-len(resumed):]
    last = [r for r in src.read(b, ReadOptions(), start, 80)
            if isinstance(r, Checkpoint)][-1]
    assert last.done and last.offset == a.size  # offsets count uncompressed bytes


def test_truncated_zst_is_a_clean_reject(plain: Path, tmp_path: Path) -> None:
    packed = _compress(plain / "release.jsonl", tmp_path / "whole.jsonl.zst").read_bytes()
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(packed[: len(packed) // 2])
    ws = tmp_path / "ws"
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(ws)]).exit_code == 0
    result = runner.invoke(main, ["ingest", "musicbrainz", str(cut), "-w", str(ws)])
    assert result.exit_code == 10, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    conn = sqlite3.connect(f"file:{ws / 'catalogue.sqlite'}?mode=ro", uri=True)
    try:
        kept = conn.execute("SELECT count(*) FROM release").fetchone()[0]
        (source, locator, reason), = conn.execute(
            "SELECT source, locator, reason FROM reject").fetchall()
    finally:
        conn.close()
    assert kept > 0  # the lines before the break are kept
    assert source.endswith("cut.jsonl.zst") and reason.startswith("truncated .zst file")
    assert locator.startswith(f"after line {kept} ")
    # a re-run adds nothing and refuses nothing new
    again = runner.invoke(main, ["ingest", "musicbrainz", str(cut), "-w", str(ws)])
    assert again.exit_code == 0, again.output


def test_damaged_compressed_json_keeps_what_came_before(tmp_path: Path) -> None:
    src = get("listens")
    rows = b"".join(
        b'{"recording_mbid": "2d0c8083-0d2e-440a-86fc-%012d", "listen_count": 1}\n' % i
        for i in range(20_000))
    cut = tmp_path / "lb.jsonl.gz"
    packed = gzip.compress(rows)
    cut.write_bytes(packed[: len(packed) // 2])
    flipped = bytearray(pyzstd.compress(rows))
    flipped[len(flipped) // 2] ^= 0xFF
    bad = tmp_path / "lb2.jsonl.zst"
    bad.write_bytes(bytes(flipped))
    for path, why in ((cut, "truncated .gz file"), (bad, "corrupt .zst data")):
        out = list(src.read(src.inputs([path])[0], ReadOptions()))
        rejects = [r for r in out if isinstance(r, Reject)]
        listens = [r for r in out if type(r).__name__ == "Listen"]
        assert rejects[0].locator.startswith("after uncompressed byte "), rejects
        assert rejects[0].reason.startswith(why), rejects
        assert all(r.dataset == path.name.split(".")[0] for r in listens)  # type: ignore[attr-defined]
        if path is cut:
            assert 0 < len(listens) < 20_000  # the rows before the break count


@pytest.mark.parametrize("layout", ["release.jsonl.zst", "dump.tar.xz"])
def test_progress_of_a_compressed_input_counts_its_bytes_on_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    """On a SQLite workspace a .jsonl.zst (and a .tar.xz dump) reports, batch after batch,
    how far into the file on disk it has read, against the file's size (was: no total,
    so `phono ingest musicbrainz x.jsonl.zst` showed no percentage for hours)."""
    out = tmp_path / "synth"
    synth(out, SynthOptions(tracks=4000, seed=5))
    data = (out / "release.jsonl").read_bytes()
    path = tmp_path / layout
    if layout.endswith(".zst"):
        path.write_bytes(pyzstd.compress(data))
    else:
        with tarfile.open(path, "w:xz", preset=0) as tar:
            info = tarfile.TarInfo("mbdump/release")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    size = path.stat().st_size
    monkeypatch.setattr(mb_source, "CHECKPOINT_EVERY", 16)  # a checkpoint every 16 lines
    ws = Workspace.create(tmp_path / "ws")
    events: list[ProgressEvent] = []
    report = ingest(ws, "musicbrainz", [path], IngestOptions(batch_size=200),
                    progress=events.append)
    assert report.rejected == 0 and report.read > 0
    done = [e.done for e in events]
    assert {e.total for e in events} == {size}
    assert done == sorted(done) and done[-1] == size
    assert len({d for d in done if 0 < d < size}) >= 2, done  # it moves while reading
