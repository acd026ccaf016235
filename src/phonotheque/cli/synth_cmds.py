"""`phono synth`: write a synthetic catalogue for benchmarks."""

from __future__ import annotations

from pathlib import Path

import click

from phonotheque.cli._common import command, console, progress_bar, workers_type
from phonotheque.synth import AUTO_COMPRESS_TRACKS, SynthOptions, synth


@command("synth")
@click.option("--tracks", type=click.IntRange(1),
              help="Number of tracks (recordings) to generate.")
@click.option("--releases", type=click.IntRange(1),
              help="Instead of --tracks: number of releases (dump lines) to generate.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (created if missing).")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Random seed; the same seed writes the same bytes.")
@click.option("--listens", "listens_formats", multiple=True,
              type=click.Choice(["parquet", "csv"]), default=("parquet",),
              show_default=True, help="Listen-count file format(s); repeat for both.")
@click.option("--compress", type=click.Choice(["auto", "none", "zstd"]), default="auto",
              show_default=True,
              help=f"zstd: release.jsonl.zst (and listens.csv.zst); auto: zstd from "
                   f"{AUTO_COMPRESS_TRACKS:,} tracks on.")
@click.option("--workers", type=workers_type(1), default=None,
              help="Generating processes (default: one per core); the bytes are the same "
                   "for any number.")
def synth_cmd(tracks: int | None, releases: int | None, out: Path, seed: int,
              listens_formats: tuple[str, ...], compress: str, workers: int | None) -> None:
    """Write a synthetic catalogue: release.jsonl (MusicBrainz JSON dump lines) and
    listen counts keyed by recording_mbid, plus synth.json with the exact counts.

    Durations are log-normal around 3.5 min; ~10 % of tracks have no ISRC and
    ~1 % share one; listen counts follow a power law with many zeros. Memory
    stays flat and chunks are generated in parallel, so 100 M tracks work
    (compressed: ~110 bytes per track on disk, ~500 plain).
    """
    if (tracks is None) == (releases is None):
        raise click.UsageError("give exactly one of --tracks, --releases")
    with progress_bar("synth", total=tracks, unit="tracks") as advance:
        report = synth(out, SynthOptions(tracks=tracks or 0, releases=releases, seed=seed,
                                         listens_formats=listens_formats, compress=compress),
                       advance, workers=workers)
    console.print(
        f"{report.tracks:,} tracks on {report.releases:,} releases by {report.artists:,} "
        f"artists; {report.unique_isrcs:,} ISRCs ({report.shared_isrc_links:,} shared "
        f"links, {report.tracks_without_isrc:,} tracks without); "
        f"{report.total_listens:,} listens ({report.zero_listen_tracks:,} tracks at zero)"
    )
    console.print(f"wrote {report.release_file}, {', '.join(report.listens_files)}")
