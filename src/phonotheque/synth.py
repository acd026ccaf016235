"""A synthetic catalogue for benchmarks: MusicBrainz JSON dump lines plus listen counts.

Deterministic for a given seed (same bytes every run) and streamed, so memory
stays flat for 10 M tracks. What it models:

* release objects, one per line, in the web-service JSON of the MusicBrainz
  dumps (``media`` -> ``tracks`` -> ``recording`` with ``isrcs`` and
  ``artist-credit``); singles, EPs and albums, some on two discs;
* durations log-normal around 3.5 minutes;
* ~10 % of recordings without ISRC, ~2 % with two, ~1 % reusing an ISRC already
  given to another recording (shared ISRCs exist in real data);
* listen counts per recording with a power-law (Zipf-like) tail and many zeros.

Files (written atomically): ``release.jsonl``, ``listens.parquet`` (and/or
``listens.csv``; columns ``recording_mbid``, ``listen_count``) and
``synth.json`` with the exact counts, for tests and benchmarks to check against.
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from phonotheque.atomic import discard, move_into_place, temporary_name, write_bytes
from phonotheque.errors import InputError, wrap_os_error
from phonotheque.progress import ProgressFn, meter

_COUNTRIES = ("US", "GB", "DE", "FR", "JP", "SE", "NL", "CA", "AU", "BR", "QM", "QZ")
_SYLLABLES = ("ka", "lo", "mi", "ra", "ne", "so", "ti", "va", "du", "pe", "zo", "an", "el")
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LISTENS_BATCH = 100_000


@dataclass(frozen=True, slots=True)
class SynthOptions:
    tracks: int
    seed: int = 1
    releases: int | None = None  # if set: stop after this many releases (dump lines) instead
    listens_formats: tuple[str, ...] = ("parquet",)  # parquet and/or csv
    median_duration_ms: int = 210_000
    no_isrc_share: float = 0.10
    shared_isrc_share: float = 0.01
    two_isrc_share: float = 0.02
    zipf_a: float = 0.6  # tail exponent of listen counts; P(count = 0) = 1 - 2**-a


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


def _uuid(seed: int, kind: str, i: int) -> str:
    digest = hashlib.md5(f"{seed}:{kind}:{i}".encode()).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _name(rng: random.Random, words: int) -> str:
    return " ".join(
        "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3))).capitalize()
        for _ in range(words)
    )


def _b36(n: int, width: int) -> str:
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return out


class _Tmp:
    """A file written under an atomic temporary name, moved into place on success.

    (Several files are written side by side in one pass, so one ``atomic_path``
    context each would not nest readably.)
    """

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = temporary_name(final)

    def commit(self) -> None:
        move_into_place(self.tmp, self.final)

    def discard(self) -> None:
        discard(self.tmp)


def synth(
    out: Path, options: SynthOptions, progress: ProgressFn | None = None
) -> SynthReport:
    """Write a synthetic catalogue of ``options.tracks`` tracks into folder ``out``."""
    advance = meter(progress, "synth", "tracks")
    _check(options)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise wrap_os_error(exc, out, writing=True) from exc
    gen = _Generator(options)
    rel_tmp = _Tmp(out / "release.jsonl")
    listen_tmps = {fmt: _Tmp(out / f"listens.{fmt}") for fmt in options.listens_formats}
    try:
        rel_f = open(rel_tmp.tmp, "wb", buffering=1 << 20)  # noqa: SIM115 - closed below
        listens = _ListenFiles(listen_tmps)
        _write_releases(gen, rel_f, listens, advance)
        rel_f.close()
        listens.close()
        rel_tmp.commit()
        for tmp in listen_tmps.values():
            tmp.commit()
    except BaseException as exc:
        rel_tmp.discard()
        for tmp in listen_tmps.values():
            tmp.discard()
        if isinstance(exc, OSError):
            raise wrap_os_error(exc, out, writing=True) from exc
        raise
    report = gen.finish(rel_tmp.final, [x.final for x in listen_tmps.values()])
    write_bytes(out / "synth.json", orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2))
    return report


def _check(options: SynthOptions) -> None:
    if options.tracks < 1 and not options.releases:
        raise InputError(options.tracks, "--tracks must be at least 1")
    bad = set(options.listens_formats) - {"parquet", "csv"}
    if bad:
        raise InputError(", ".join(sorted(bad)), "unknown listens format (parquet, csv)")


class _ListenFiles:
    """The listen-count files (Parquet and/or CSV), written in batches of rows."""

    def __init__(self, tmps: dict[str, _Tmp]) -> None:
        import pyarrow as pa  # imported here so `phono` starts fast
        import pyarrow.parquet as pq

        self._pa = pa
        self.schema = pa.schema([("recording_mbid", pa.string()), ("listen_count", pa.int64())])
        self.mbids: list[str] = []
        self.counts: list[int] = []
        self.parquet = (pq.ParquetWriter(tmps["parquet"].tmp, self.schema, compression="zstd")
                        if "parquet" in tmps else None)
        self.csv_f = (open(tmps["csv"].tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115
                      if "csv" in tmps else None)
        self.csv_w = csv.writer(self.csv_f) if self.csv_f else None
        if self.csv_w:
            self.csv_w.writerow(["recording_mbid", "listen_count"])

    def add(self, mbid: str, count: int) -> None:
        self.mbids.append(mbid)
        self.counts.append(count)

    def flush(self) -> None:
        if self.parquet is not None and self.mbids:
            self.parquet.write_table(self._pa.table(
                {"recording_mbid": self.mbids, "listen_count": self.counts}, schema=self.schema))
        if self.csv_w is not None:
            self.csv_w.writerows(zip(self.mbids, self.counts, strict=True))
        self.mbids.clear()
        self.counts.clear()

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self.csv_f is not None:
            self.csv_f.close()


def _write_releases(gen: _Generator, rel_f: BinaryIO, listens: _ListenFiles,
                    progress: Callable[[int], object] | None) -> None:
    """One dump line per release until the track (or release) count is reached."""
    while gen.more():
        release, n = gen.release(listens)
        rel_f.write(orjson.dumps(release))
        rel_f.write(b"\n")
        if len(listens.mbids) >= _LISTENS_BATCH:
            listens.flush()
        if progress is not None:
            progress(n)
    listens.flush()


class _Generator:
    """Releases, tracks and listen counts from two seeded random streams, in order.

    The order of the random draws is what makes a seed give the same bytes:
    changing it changes every file.
    """

    def __init__(self, options: SynthOptions) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.listen_rng = random.Random(options.seed * 7919 + 1)
        self.report = SynthReport(seed=options.seed)
        expected_tracks = options.tracks if options.releases is None else options.releases * 8
        self.n_artists = max(5, expected_tracks // 40)
        self.used_artists = bytearray(self.n_artists)
        self.recent_isrcs: deque[str] = deque(maxlen=1000)
        self.mu = math.log(options.median_duration_ms)
        self.t = 0  # tracks so far
        self.r = 0  # releases so far

    def more(self) -> bool:
        o = self.options
        return (self.t < o.tracks) if o.releases is None else (self.r < o.releases)

    def release(self, listens: _ListenFiles) -> tuple[dict[str, object], int]:
        """The next release (a dump line) and its number of tracks."""
        o, rng = self.options, self.rng
        kind = rng.random()
        n = 1 if kind < 0.2 else rng.randint(2, 6) if kind < 0.4 else rng.randint(8, 16)
        if o.releases is None:
            n = min(n, o.tracks - self.t)
        artist = rng.randrange(self.n_artists)
        self.used_artists[artist] = 1
        credit = _credit(o.seed, artist, rng)
        rel_id = _uuid(o.seed, "release", self.r)
        discs = 2 if n > 12 and rng.random() < 0.2 else 1
        per_disc = math.ceil(n / discs)
        media = []
        for d in range(discs):
            tracks = [self.track(p, credit, listens)
                      for p in range(1, min(per_disc, n - d * per_disc) + 1)]
            media.append({"position": d + 1, "format": "Digital Media",
                          "track-count": len(tracks), "tracks": tracks})
        release: dict[str, object] = {
            "id": rel_id,
            "title": _name(rng, rng.randint(1, 3)),
            "status": "Official",
            "date": f"{rng.randint(1955, 2025)}-{rng.randint(1, 12):02d}-"
                    f"{rng.randint(1, 28):02d}",
            "barcode": f"{rng.randrange(10**12):012d}",
            "label-info": [{"catalog-number": f"SYN-{self.r}",
                            "label": {"id": _uuid(o.seed, "label", artist % 97),
                                      "name": f"Label {artist % 97}"}}],
            "artist-credit": credit,
            "media": media,
        }
        self.r += 1
        return release, n

    def track(self, position: int, credit: list[dict[str, object]],
              listens: _ListenFiles) -> dict[str, object]:
        """Track ``position`` of a medium, its recording, and the recording's listen count."""
        o, rng, t = self.options, self.rng, self.t
        isrcs = _isrcs(o, rng, t, self.recent_isrcs, self.report)
        duration = int(min(max(rng.lognormvariate(self.mu, 0.4), 20_000), 1_800_000))
        rec_id = _uuid(o.seed, "recording", t)
        title = _name(rng, rng.randint(1, 4))
        track = {
            "id": _uuid(o.seed, "track", t),
            "position": position,
            "number": str(position),
            "title": title,
            "length": duration,
            "recording": {
                "id": rec_id,
                "title": title,
                "length": duration,
                "video": False,
                "isrcs": isrcs,
                "artist-credit": credit,
            },
        }
        count = self.listen_count()
        listens.add(rec_id, count)
        self.report.total_listens += count
        self.report.zero_listen_tracks += count == 0
        self.t += 1
        return track

    def listen_count(self) -> int:
        """A power-law (Zipf-like) count with many zeros."""
        u = 1.0 - self.listen_rng.random()  # (0, 1]
        return min(int(u ** (-1.0 / self.options.zipf_a)) - 1, 1_000_000_000)

    def finish(self, release_file: Path, listens_files: list[Path]) -> SynthReport:
        """The report, with the totals known only at the end."""
        report = self.report
        report.tracks = self.t
        report.artists = sum(self.used_artists)
        report.releases = self.r
        report.unique_isrcs = report.isrc_links - report.shared_isrc_links
        report.release_file = str(release_file)
        report.listens_files = tuple(str(x) for x in listens_files)
        return report


def _credit(seed: int, artist: int, rng: random.Random) -> list[dict[str, object]]:
    name = f"{_name(random.Random(seed * 1_000_003 + artist), 2)} {artist}"
    credit: list[dict[str, object]] = [{
        "name": name, "joinphrase": "",
        "artist": {"id": _uuid(seed, "artist", artist), "name": name, "sort-name": name},
    }]
    return credit


def _isrcs(
    options: SynthOptions, rng: random.Random, t: int, recent: deque[str], report: SynthReport
) -> list[str]:
    x = rng.random()
    if x < options.no_isrc_share:
        report.tracks_without_isrc += 1
        return []
    if x < options.no_isrc_share + options.shared_isrc_share and recent:
        # Reuse an ISRC another recording already has (a shared ISRC).
        report.isrc_links += 1
        report.shared_isrc_links += 1
        return [rng.choice(recent)]
    # Unique by construction: registrant and designation encode the track number.
    codes = []
    for k in range(2 if rng.random() < options.two_isrc_share else 1):
        i = t * 2 + k
        code = (f"{rng.choice(_COUNTRIES)}{_b36(i // 100_000, 3)}{rng.randint(0, 99):02d}"
                f"{i % 100_000:05d}")
        codes.append(code)
        recent.append(code)
    report.isrc_links += len(codes)
    return codes
