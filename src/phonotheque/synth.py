"""A synthetic catalogue for benchmarks: MusicBrainz JSON dump lines plus listen counts.

Deterministic for a given seed and size (same bytes every run, whatever the
number of worker processes) and streamed, so memory stays flat for 100 M tracks.
What it models:

* release objects, one per line, in the web-service JSON of the MusicBrainz
  dumps (``media`` -> ``tracks`` -> ``recording`` with ``isrcs`` and
  ``artist-credit``); singles, EPs and albums, some on two discs;
* durations log-normal around 3.5 minutes;
* ~10 % of recordings without ISRC, ~2 % with two, ~1 % reusing an ISRC already
  given to another recording (shared ISRCs exist in real data);
* listen counts per recording with a power-law (Zipf-like) tail and many zeros.

Files (written atomically): ``release.jsonl`` (``release.jsonl.zst`` when
compressed), ``listens.parquet`` (and/or ``listens.csv``, ``listens.csv.zst``
when compressed; columns ``recording_mbid``, ``listen_count``) and
``synth.json`` with the exact counts, for tests and benchmarks to check against.

Speed: the catalogue is cut into chunks of :data:`CHUNK_TRACKS` tracks (or
:data:`CHUNK_RELEASES` releases), each generated from its own seed (the seed
and the chunk's number) with NumPy's vectorised draws, in a pool of processes.
The parent appends the chunks in order: a zstd stream of concatenated frames
is a valid ``.zst``, so compressed chunks are appended as they are. The bytes
depend on the seed, the size and the chunk size, never on the process count.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from phonotheque.atomic import discard, move_into_place, temporary_name, write_bytes
from phonotheque.errors import InputError, wrap_os_error
from phonotheque.progress import ProgressFn, meter

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_COUNTRIES = ("US", "GB", "DE", "FR", "JP", "SE", "NL", "CA", "AU", "BR", "QM", "QZ")
_SYLLABLES = ("ka", "lo", "mi", "ra", "ne", "so", "ti", "va", "du", "pe", "zo", "an", "el")
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# A chunk's size fixes the output bytes (each chunk has its own random stream), so
# these are constants, not tuning knobs. ~250 k tracks keep a worker under ~150 MB.
CHUNK_TRACKS = 250_000
CHUNK_RELEASES = 29_000  # ~250 k tracks at the mean of 8.6 tracks per release
# From this many tracks `compress="auto"` writes zstd: 20 M tracks are ~9.5 GB of
# plain JSON lines, 100 M are ~47 GB (too much for a shared 60 GB disk).
AUTO_COMPRESS_TRACKS = 20_000_000
ZSTD_LEVEL = 1  # measured: faster than 3 and no larger on these lines
# Bytes per track written, measured on 1 M tracks (for the free-space check).
_BYTES_PER_TRACK = {"none": 500, "zstd": 120}
_MEAN_TRACKS_PER_RELEASE = 8.6
_MAX_TRACKS_PER_RELEASE = 16
_WRITE_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class SynthOptions:
    tracks: int
    seed: int = 1
    releases: int | None = None  # if set: stop after this many releases (dump lines) instead
    listens_formats: tuple[str, ...] = ("parquet",)  # parquet and/or csv
    compress: str = "auto"  # "none", "zstd", or "auto" (zstd from AUTO_COMPRESS_TRACKS on)
    median_duration_ms: int = 210_000
    no_isrc_share: float = 0.10
    shared_isrc_share: float = 0.01
    two_isrc_share: float = 0.02
    zipf_a: float = 0.6  # tail exponent of listen counts; P(count = 0) = 1 - 2**-a
    # Chunk sizes (see CHUNK_TRACKS); tests make them small to get many chunks.
    chunk_tracks: int = CHUNK_TRACKS
    chunk_releases: int = CHUNK_RELEASES


@dataclass(slots=True)
class SynthReport:
    tracks: int = 0
    releases: int = 0
    artists: int = 0
    isrc_links: int = 0
    unique_isrcs: int = 0
    shared_isrc_links: int = 0
    tracks_without_isrc: int = 0
    total_listens: int = 0
    zero_listen_tracks: int = 0
    release_file: str = ""
    listens_files: tuple[str, ...] = ()
    seed: int = 0
    compress: str = "none"
    chunks: int = 0


def compression(options: SynthOptions) -> str:
    """``"zstd"`` or ``"none"``: what ``options.compress`` means for this size."""
    if options.compress not in ("auto", "none", "zstd"):
        raise InputError(options.compress, "unknown compression (auto, none, zstd)")
    if options.compress != "auto":
        return options.compress
    return "zstd" if _expected_tracks(options) >= AUTO_COMPRESS_TRACKS else "none"


def _expected_tracks(options: SynthOptions) -> int:
    if options.releases is None:
        return options.tracks
    return int(options.releases * _MEAN_TRACKS_PER_RELEASE)


def synth(
    out: Path, options: SynthOptions, progress: ProgressFn | None = None,
    workers: int | None = None,
) -> SynthReport:
    """Write a synthetic catalogue of ``options.tracks`` tracks into folder ``out``.

    ``workers``: processes generating chunks (default: one per core); the output
    is the same for any number.
    """
    advance = meter(progress, "synth", "tracks")
    _check(options)
    # a format asked for twice is written once (the writer keys its files by format)
    options = replace(options, listens_formats=tuple(dict.fromkeys(options.listens_formats)))
    codec = compression(options)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise wrap_os_error(exc, out, writing=True) from exc
    _check_space(out, options, codec)
    ext = ".zst" if codec == "zstd" else ""
    rel_final = out / f"release.jsonl{ext}"
    listen_finals = {fmt: out / (f"listens.csv{ext}" if fmt == "csv" else f"listens.{fmt}")
                     for fmt in options.listens_formats}
    chunks = _plan(options, codec)
    parts = temporary_name(out / "synth-parts")
    tmps = [temporary_name(rel_final), *(temporary_name(p) for p in listen_finals.values())]
    total = _Totals(options, chunks[0].n_artists)
    try:
        parts.mkdir()
        writer = _Writer(tmps[0], dict(zip(options.listens_formats, tmps[1:], strict=True)),
                         codec)
        try:
            for result in _run(chunks, parts, workers):
                writer.add(result)
                total.add(result)
                if advance is not None:
                    advance(result.tracks)
        finally:
            writer.close()
        move_into_place(tmps[0], rel_final)
        for tmp, final in zip(tmps[1:], listen_finals.values(), strict=True):
            move_into_place(tmp, final)
    except BaseException as exc:
        for tmp in tmps:
            discard(tmp)
        if isinstance(exc, OSError):
            raise wrap_os_error(exc, out, writing=True) from exc
        raise
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    report = total.report(rel_final, list(listen_finals.values()), codec, len(chunks))
    write_bytes(out / "synth.json", orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2))
    return report


def _check(options: SynthOptions) -> None:
    if not -(2**63) <= options.seed < 2**64:  # what synth.json (orjson) can write
        raise InputError(options.seed, "the seed must be a 64-bit integer "
                                       f"({-(2**63)} to {2**64 - 1})")
    if options.tracks < 1 and not options.releases:
        raise InputError(options.tracks, "--tracks must be at least 1")
    bad = set(options.listens_formats) - {"parquet", "csv"}
    if bad:
        raise InputError(", ".join(sorted(bad)), "unknown listens format (parquet, csv)")
    if options.chunk_tracks < 1 or options.chunk_releases < 1:
        raise InputError("chunk size", "must be at least 1")


def _check_space(out: Path, options: SynthOptions, codec: str) -> None:
    """Refuse up front a catalogue that cannot fit, instead of filling the disk."""
    need = _expected_tracks(options) * _BYTES_PER_TRACK[codec]
    try:
        free = shutil.disk_usage(out).free
    except OSError as exc:
        raise wrap_os_error(exc, out) from exc
    if need > free:
        hint = "" if codec == "zstd" else "; --compress zstd needs about a quarter of that"
        raise InputError(out, f"needs about {need / 1e9:,.1f} GB, only {free / 1e9:,.1f} GB "
                              f"free{hint}")


# -- chunks -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Chunk:
    """One independently generated piece of the catalogue (picklable, for a worker)."""

    index: int
    options: SynthOptions
    n_artists: int
    tracks: int | None  # tracks mode: exactly this many tracks
    releases: int | None  # releases mode: exactly this many releases
    track_base: int  # number of the chunk's first track, for unique ISRC designations
    codec: str
    csv: bool
    parts: str = ""  # folder for the part files (set by the runner)


@dataclass(slots=True)
class _ChunkResult:
    index: int
    release_part: str
    csv_part: str | None
    recording_ids: Any  # numpy "S36" array, in track order
    listen_counts: Any  # numpy int64 array
    artists: Any  # numpy array of the artist numbers used
    tracks: int = 0
    releases: int = 0
    isrc_links: int = 0
    shared_isrc_links: int = 0
    tracks_without_isrc: int = 0
    total_listens: int = 0
    zero_listen_tracks: int = 0


def _plan(options: SynthOptions, codec: str) -> list[_Chunk]:
    # Releases mode used to assume 8 tracks per release here; kept, so artist counts match.
    n_artists = max(5, (options.tracks if options.releases is None else options.releases * 8)
                    // 40)
    csv = "csv" in options.listens_formats
    chunks = []
    if options.releases is None:
        size, total = options.chunk_tracks, options.tracks
    else:
        size, total = options.chunk_releases, options.releases
    for i, start in enumerate(range(0, total, size)):
        n = min(size, total - start)
        if options.releases is None:
            chunks.append(_Chunk(i, options, n_artists, n, None, start, codec, csv))
        else:
            chunks.append(_Chunk(i, options, n_artists, None, n,
                                 start * _MAX_TRACKS_PER_RELEASE, codec, csv))
    return chunks


def _run(chunks: list[_Chunk], parts: Path, workers: int | None) -> Iterator[_ChunkResult]:
    """Generate ``chunks`` (in a process pool if more than one), yielding them in order."""
    from phonotheque.executors import InlineExecutor, LocalExecutor

    items = [_Chunk(c.index, c.options, c.n_artists, c.tracks, c.releases, c.track_base,
                    c.codec, c.csv, str(parts)) for c in chunks]
    n = workers if workers and workers > 0 else (os.cpu_count() or 1)
    n = min(n, len(items))
    executor = InlineExecutor() if n <= 1 else LocalExecutor(n, window=n + 1)
    waiting: dict[int, _ChunkResult] = {}
    next_index = 0
    with executor:
        for result in executor.map_unordered(generate_chunk, items):
            waiting[result.index] = result
            while next_index in waiting:
                yield waiting.pop(next_index)
                next_index += 1


class _Writer:
    """Appends finished chunks, in order, to the output files."""

    def __init__(self, release_tmp: Path, listen_tmps: dict[str, Path], codec: str) -> None:
        import pyarrow as pa  # imported here so `phono` starts fast
        import pyarrow.parquet as pq

        self._pa = pa
        self.schema = pa.schema([("recording_mbid", pa.string()), ("listen_count", pa.int64())])
        self.release_f = open(release_tmp, "wb")  # noqa: SIM115 - closed in close()
        self.parquet = (pq.ParquetWriter(listen_tmps["parquet"], self.schema, compression="zstd")
                        if "parquet" in listen_tmps else None)
        self.csv_f: IO[bytes] | None = None
        if "csv" in listen_tmps:
            self.csv_f = open(listen_tmps["csv"], "wb")  # noqa: SIM115 - closed in close()
            header = b"recording_mbid,listen_count\r\n"
            self.csv_f.write(_zstd_frame(header) if codec == "zstd" else header)

    def add(self, result: _ChunkResult) -> None:
        _append(self.release_f, Path(result.release_part))
        if self.csv_f is not None and result.csv_part:
            _append(self.csv_f, Path(result.csv_part))
        if self.parquet is not None:
            pa = self._pa
            ids = pa.array(result.recording_ids).cast(pa.string())
            self.parquet.write_table(pa.table(
                {"recording_mbid": ids, "listen_count": pa.array(result.listen_counts)},
                schema=self.schema))

    def close(self) -> None:
        self.release_f.close()
        if self.parquet is not None:
            self.parquet.close()
        if self.csv_f is not None:
            self.csv_f.close()


def _append(dst: IO[bytes], part: Path) -> None:
    """Append a part file to ``dst`` and delete it (so the parts never pile up)."""
    dst.flush()
    with open(part, "rb") as src:
        shutil.copyfileobj(src, dst, 8 << 20)
    part.unlink()


def _zstd_frame(data: bytes) -> bytes:
    import pyzstd

    return pyzstd.compress(data, _zstd_options())


def _zstd_options() -> dict[int, int]:
    import pyzstd

    # The checksum makes a corrupt (not only a truncated) file fail to decompress.
    return {pyzstd.CParameter.compressionLevel: ZSTD_LEVEL,
            pyzstd.CParameter.checksumFlag: 1}


class _Totals:
    """The report's counts, summed over the chunks."""

    def __init__(self, options: SynthOptions, n_artists: int) -> None:
        import numpy as np

        self.rep = SynthReport(seed=options.seed)
        self.used_artists = np.zeros(n_artists, dtype=bool)

    def add(self, r: _ChunkResult) -> None:
        rep = self.rep
        rep.tracks += r.tracks
        rep.releases += r.releases
        rep.isrc_links += r.isrc_links
        rep.shared_isrc_links += r.shared_isrc_links
        rep.tracks_without_isrc += r.tracks_without_isrc
        rep.total_listens += r.total_listens
        rep.zero_listen_tracks += r.zero_listen_tracks
        self.used_artists[r.artists] = True

    def report(self, release_file: Path, listens_files: list[Path], codec: str,
               chunks: int) -> SynthReport:
        rep = self.rep
        rep.artists = int(self.used_artists.sum())
        rep.unique_isrcs = rep.isrc_links - rep.shared_isrc_links
        rep.release_file = str(release_file)
        rep.listens_files = tuple(str(x) for x in listens_files)
        rep.compress = codec
        rep.chunks = chunks
        return rep


# -- one chunk (runs in a worker process) -------------------------------------


def generate_chunk(chunk: _Chunk) -> _ChunkResult:
    """Generate one chunk: write its part files, return its listen counts and totals.

    Every random value is drawn up front, in whole arrays, from the chunk's own
    generator, in a fixed order (changing the order changes every byte); the
    loop below only assembles them into dump lines.
    """
    import numpy as np

    o = chunk.options
    g = np.random.default_rng(np.random.SeedSequence(
        [o.seed & 0xFFFF_FFFF_FFFF_FFFF, int(o.seed < 0), chunk.index,
         0 if chunk.releases is None else 1]))
    sizes = _release_sizes(g, chunk)
    n_rel, n_tracks = len(sizes), int(sizes.sum())
    # release draws
    artists = g.integers(0, chunk.n_artists, n_rel)
    two_discs = ((sizes > 12) & (g.random(n_rel) < 0.2)).tolist()
    rel_words = g.integers(1, 4, n_rel)
    years = g.integers(1955, 2026, n_rel).tolist()
    months = g.integers(1, 13, n_rel).tolist()
    days = g.integers(1, 29, n_rel).tolist()
    barcodes = g.integers(0, 10**12, n_rel).tolist()
    release_ids = _uuids(g, n_rel).astype("U36").tolist()
    # track draws
    isrc_x = g.random(n_tracks).tolist()
    isrc_pick = g.random(n_tracks).tolist()
    two_isrcs = (g.random(n_tracks) < o.two_isrc_share).tolist()
    country = [g.integers(0, len(_COUNTRIES), n_tracks).tolist() for _ in range(2)]
    isrc_year = [g.integers(0, 100, n_tracks).tolist() for _ in range(2)]
    durations = np.clip(g.lognormal(np.log(o.median_duration_ms), 0.4, n_tracks),
                        20_000, 1_800_000).astype(np.int64).tolist()
    track_words = g.integers(1, 5, n_tracks)
    track_ids = _uuids(g, n_tracks).astype("U36").tolist()
    rec_raw = _uuids(g, n_tracks)
    rec_ids = rec_raw.astype("U36").tolist()
    u = 1.0 - g.random(n_tracks)  # (0, 1]
    counts = np.minimum(np.floor(u ** (-1.0 / o.zipf_a)) - 1, 1e9).astype(np.int64)
    words = _words(g, int(rel_words.sum()) + int(track_words.sum()))
    rel_words_l, track_words_l = rel_words.tolist(), track_words.tolist()

    result = _ChunkResult(chunk.index, "", None, rec_raw, counts, np.unique(artists),
                          tracks=n_tracks, releases=n_rel,
                          total_listens=int(counts.sum()),
                          zero_listen_tracks=int((counts == 0).sum()))
    parts = Path(chunk.parts)
    ext = ".zst" if chunk.codec == "zstd" else ""
    result.release_part = str(parts / f"release-{chunk.index:06d}.jsonl{ext}")
    no_isrc = o.no_isrc_share
    shared_below = o.no_isrc_share + o.shared_isrc_share
    recent: list[str] = []
    b36 = _b36_cached
    credits: dict[int, str] = {}
    dumps = orjson.dumps
    t = w = 0
    buf: list[bytes] = []
    size = 0
    with _part_writer(Path(result.release_part), chunk.codec) as f:
        for r in range(n_rel):
            n = int(sizes[r])
            artist = int(artists[r])
            credit = credits.get(artist)
            if credit is None:
                # serialised once: every recording of the release repeats it
                credit = credits[artist] = dumps(_credit(o.seed, artist)).decode()
            discs = 2 if two_discs[r] else 1
            per_disc = -(-n // discs)
            media = []
            for d in range(discs):
                tracks = []
                for p in range(1, min(per_disc, n - d * per_disc) + 1):
                    x = isrc_x[t]
                    if x < no_isrc:
                        isrcs = "[]"
                        result.tracks_without_isrc += 1
                    elif x < shared_below and recent:
                        # Reuse an ISRC another recording already has (a shared ISRC).
                        k = min(len(recent), 1000)
                        isrcs = f'["{recent[len(recent) - 1 - int(isrc_pick[t] * k)]}"]'
                        result.isrc_links += 1
                        result.shared_isrc_links += 1
                    else:
                        # Unique by construction: registrant and designation encode the
                        # track's number.
                        codes = []
                        for k in range(2 if two_isrcs[t] else 1):
                            i = (chunk.track_base + t) * 2 + k
                            codes.append(f"{_COUNTRIES[country[k][t]]}{b36(i // 100_000)}"
                                         f"{isrc_year[k][t]:02d}{i % 100_000:05d}")
                        recent.extend(codes)
                        result.isrc_links += len(codes)
                        if len(recent) > 4000:
                            del recent[:-1000]
                        isrcs = '["' + '","'.join(codes) + '"]'
                    nw = track_words_l[t]
                    title = " ".join(words[w:w + nw])
                    w += nw
                    duration = durations[t]
                    # The JSON is assembled as text (every value is ASCII without quotes
                    # or backslashes, so nothing needs escaping): the same bytes as
                    # orjson.dumps of the objects (a test checks), at half the cost.
                    tracks.append(
                        f'{{"id":"{track_ids[t]}","position":{p},"number":"{p}",'
                        f'"title":"{title}","length":{duration},"recording":{{'
                        f'"id":"{rec_ids[t]}","title":"{title}","length":{duration},'
                        f'"video":false,"isrcs":{isrcs},"artist-credit":{credit}}}}}')
                    t += 1
                media.append(f'{{"position":{d + 1},"format":"Digital Media",'
                             f'"track-count":{len(tracks)},"tracks":[{",".join(tracks)}]}}')
            nw = rel_words_l[r]
            title = " ".join(words[w:w + nw])
            w += nw
            line = (
                f'{{"id":"{release_ids[r]}","title":"{title}","status":"Official",'
                f'"date":"{years[r]}-{months[r]:02d}-{days[r]:02d}",'
                f'"barcode":"{barcodes[r]:012d}","label-info":[{{"catalog-number":'
                f'"SYN-{chunk.index}-{r}","label":{_label(o.seed, artist % 97)}}}],'
                f'"artist-credit":{credit},"media":[{",".join(media)}]}}'
            ).encode()
            buf.append(line)
            size += len(line) + 1
            if size >= _WRITE_BLOCK:
                buf.append(b"")
                f.write(b"\n".join(buf))
                buf.clear()
                size = 0
        if buf:
            buf.append(b"")
            f.write(b"\n".join(buf))
    if chunk.csv:
        result.csv_part = str(parts / f"listens-{chunk.index:06d}.csv{ext}")
        with _part_writer(Path(result.csv_part), chunk.codec) as f:
            f.write("".join(f"{m},{c}\r\n" for m, c in zip(rec_ids, counts.tolist(),
                                                            strict=True)).encode())
    return result


def _release_sizes(g: np.random.Generator, chunk: _Chunk) -> npt.NDArray[np.int64]:
    """Tracks per release: 20 % singles, 20 % EPs of 2-6, 60 % albums of 8-16.

    In tracks mode, the last release is cut to end the chunk at its exact size.
    """
    import numpy as np

    def draw(m: int) -> npt.NDArray[np.int64]:
        kind = g.random(m)
        ep = g.integers(2, 7, m)
        album = g.integers(8, 17, m)
        return np.where(kind < 0.2, 1, np.where(kind < 0.4, ep, album)).astype(np.int64)

    if chunk.releases is not None:
        return draw(chunk.releases)
    want = chunk.tracks or 0
    found: list[npt.NDArray[np.int64]] = []
    total = 0
    while total < want:
        batch = draw(int((want - total) / _MEAN_TRACKS_PER_RELEASE * 1.05) + 16)
        found.append(batch)
        total += int(batch.sum())
    sizes = np.concatenate(found)
    ends = np.cumsum(sizes)
    last = int(np.searchsorted(ends, want))  # first release reaching the chunk's size
    sizes = sizes[:last + 1].copy()
    sizes[-1] -= int(ends[last]) - want
    return sizes


def _uuids(g: np.random.Generator, n: int) -> npt.NDArray[np.bytes_]:
    """``n`` random version-4 UUIDs as 36-byte strings, formatted in bulk."""
    import numpy as np

    b = np.frombuffer(g.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = hexdigits[b >> 4]
    digits[:, 1::2] = hexdigits[b & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for (a, z), (da, dz) in zip(((0, 8), (9, 13), (14, 18), (19, 23), (24, 36)),
                                ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)), strict=True):
        out[:, a:z] = digits[:, da:dz]
    return out.view("S36").reshape(n)


def _words(g: np.random.Generator, n: int) -> list[str]:
    """``n`` words of 1-3 syllables (each length equally likely), capitalised."""
    import numpy as np

    vocab, offsets = _vocabulary()
    k = g.integers(0, 3, n)
    index = g.integers(0, np.array([13, 13**2, 13**3])[k])
    return list(vocab[np.array(offsets)[k] + index])


@cache
def _vocabulary() -> tuple[Any, tuple[int, int, int]]:
    import itertools

    import numpy as np

    words: list[str] = []
    offsets = []
    for k in (1, 2, 3):
        offsets.append(len(words))
        words.extend("".join(p).capitalize() for p in itertools.product(_SYLLABLES, repeat=k))
    return np.array(words, dtype=object), (offsets[0], offsets[1], offsets[2])


class _part_writer:  # noqa: N801 - used like open()
    """A part file, zstd-compressed (one frame) or plain."""

    def __init__(self, path: Path, codec: str) -> None:
        self.raw = open(path, "wb")  # noqa: SIM115 - closed in __exit__
        self.zst: Any = None
        if codec == "zstd":
            import pyzstd

            self.zst = pyzstd.ZstdFile(self.raw, "w", level_or_option=_zstd_options())

    def write(self, data: bytes) -> None:
        (self.zst or self.raw).write(data)

    def __enter__(self) -> _part_writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.zst is not None:
            self.zst.close()
        self.raw.close()


def _name(rng: random.Random, words: int) -> str:
    return " ".join(
        "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3))).capitalize()
        for _ in range(words)
    )


def _uuid(seed: int, kind: str, i: int) -> str:
    """A UUID that is a function of (seed, kind, i): the same artist in every chunk."""
    import hashlib
    import uuid

    digest = hashlib.md5(f"{seed}:{kind}:{i}".encode()).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _credit(seed: int, artist: int) -> list[dict[str, object]]:
    """An artist's credit; its name and id depend only on the seed and the artist's number."""
    name = f"{_name(random.Random(seed * 1_000_003 + artist), 2)} {artist}"
    return [{
        "name": name, "joinphrase": "",
        "artist": {"id": _uuid(seed, "artist", artist), "name": name, "sort-name": name},
    }]


@cache
def _label(seed: int, n: int) -> str:
    """A label as JSON text."""
    return orjson.dumps({"id": _uuid(seed, "label", n), "name": f"Label {n}"}).decode()


@cache
def _b36_cached(n: int) -> str:
    out = ""
    for _ in range(3):
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return out
