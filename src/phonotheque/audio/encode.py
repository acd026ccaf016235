"""ffmpeg invocations: Opus re-encode and loudness measurement, in one decode each.

The re-encode runs ``ebur128`` in the same filter graph as the encoder, so the
source is decoded once for both the Opus stream and its ReplayGain values. The
Ogg output goes to a pipe (the Ogg muxer never seeks) and lands in memory, where
tags are written and the bytes hashed before they touch the disk.

Determinism: ``-fflags +bitexact -flags:a +bitexact`` make the Ogg muxer use
serial number ``-serial_offset`` instead of a random one (the stage derives it
from the source's sha256: stable, and distinct between files, as chained Ogg
streams require) and drop the
version-stamped encoder strings, so the same input and options give the same
bytes on every run on the same ffmpeg/libopus build — what the kill-and-resume
test checks. Different ffmpeg or libopus versions may encode differently; the
reconstruction record keeps the versions.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from phonotheque.audio.probe import Refused
from phonotheque.errors import InputError, ToolError

_LOUDNESS_FILTER = "ebur128=peak=sample:framelog=verbose"
REPLAYGAIN_REFERENCE_LUFS = -18.0  # ReplayGain 2.0
R128_REFERENCE_LUFS = -23.0  # RFC 7845 R128_TRACK_GAIN


@dataclass(frozen=True, slots=True)
class EncodeOptions:
    """How the ``reencode`` tier is encoded (libopus in Ogg)."""

    bitrate: str = "75k"
    vbr: str = "on"  # on | off | constrained
    application: str = "audio"  # audio | voip | lowdelay
    compression_level: int = 10
    sample_rate: int = 48000
    extra_args: tuple[str, ...] = ()  # appended to the output options, e.g. ("-frame_duration", "40")
    ffmpeg: str = "ffmpeg"
    replaygain: bool = True

    @property
    def bitrate_bps(self) -> int:
        return parse_bitrate(self.bitrate)


def parse_bitrate(text: str) -> int:
    """``"75k"`` -> 75000; ``"96000"`` -> 96000."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not m:
        raise InputError(text, "not a bitrate (expected e.g. 75k or 96000)")
    value = float(m.group(1)) * {"": 1, "k": 1000, "m": 1_000_000}[m.group(2).lower()]
    if not 6000 <= value <= 512000:
        raise InputError(text, "Opus bitrates range from 6k to 512k")
    return int(value)


@dataclass(frozen=True, slots=True)
class Loudness:
    integrated_lufs: float
    sample_peak_dbfs: float

    @property
    def replaygain_gain(self) -> float | None:
        """ReplayGain 2.0 track gain in dB; None for (gated) silence."""
        if self.integrated_lufs <= -70.0:
            return None
        return round(REPLAYGAIN_REFERENCE_LUFS - self.integrated_lufs, 2)

    @property
    def replaygain_peak(self) -> float:
        if math.isinf(self.sample_peak_dbfs):
            return 0.0
        return round(10 ** (self.sample_peak_dbfs / 20), 6)

    @property
    def r128_track_gain(self) -> int | None:
        if self.integrated_lufs <= -70.0:
            return None
        q78 = round((R128_REFERENCE_LUFS - self.integrated_lufs) * 256)
        return max(-32768, min(32767, q78))


@dataclass(frozen=True, slots=True)
class FFmpegRun:
    data: bytes  # stdout (the Ogg Opus file), empty for a measuring run
    loudness: Loudness | None
    decoded_ms: int | None  # how much audio ffmpeg got through
    command: tuple[str, ...] = field(default=())


def _input_url(path: Path) -> str:
    # "file:" keeps ffmpeg from reading protocol or option syntax into a file name.
    return "file:" + str(Path(path).absolute())


def transcode_command(src: Path, opts: EncodeOptions, serial: int = 0) -> list[str]:
    """The ffmpeg command; ``serial`` is the Ogg stream serial (deterministic, see module doc)."""
    cmd = [opts.ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
           "-i", _input_url(src),
           "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"]
    if opts.replaygain:
        cmd += ["-af", _LOUDNESS_FILTER]
    cmd += ["-c:a", "libopus", "-b:a", opts.bitrate, "-vbr", opts.vbr,
            "-application", opts.application, "-compression_level", str(opts.compression_level),
            "-ar", str(opts.sample_rate),
            "-fflags", "+bitexact", "-flags:a", "+bitexact", "-serial_offset", str(serial),
            *opts.extra_args, "-f", "ogg", "pipe:1"]
    return cmd


def measure_command(src: Path, opts: EncodeOptions) -> list[str]:
    return [opts.ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
            "-i", _input_url(src), "-map", "0:a:0", "-af", _LOUDNESS_FILTER, "-f", "null", "-"]


def transcode(src: Path, opts: EncodeOptions, serial: int = 0) -> FFmpegRun:
    """Encode ``src``'s first audio stream to Ogg Opus in memory (+ its loudness)."""
    cmd = transcode_command(src, opts, serial)
    return _run(cmd, src)


def measure(src: Path, opts: EncodeOptions) -> FFmpegRun:
    """Decode ``src`` once to measure its loudness (tier ``original``)."""
    return _run(measure_command(src, opts), src)


def _run(cmd: list[str], src: Path) -> FFmpegRun:
    try:
        # its own session: a Ctrl-C meant for the coordinator must not fail this file
        # (a dead worker still stops it: its next write to the closed pipe fails)
        proc = subprocess.run(cmd, capture_output=True, check=False, start_new_session=True)
    except FileNotFoundError as exc:
        raise ToolError(cmd[0], "ffmpeg not found (install ffmpeg)") from exc
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = " | ".join(line.strip() for line in err.strip().splitlines()[-3:])
        if "Unknown encoder" in err or "Encoder not found" in err:
            raise ToolError(cmd[0], f"ffmpeg lacks an encoder: {tail}")
        raise Refused(src, f"ffmpeg could not decode it: {tail[:300]}", "undecodable")
    return FFmpegRun(proc.stdout, parse_loudness(err), parse_decoded_ms(err), tuple(cmd))


_I = re.compile(r"Integrated loudness:\s*\n\s*I:\s*(-?[\d.]+|-?inf)\s*LUFS")
_PEAK = re.compile(r"Sample peak:\s*\n\s*Peak:\s*(-?[\d.]+|-?inf)\s*dBFS")
_TIME = re.compile(r"time=\s*(-?)(\d+):(\d\d):(\d\d(?:\.\d+)?)")


def parse_loudness(stderr: str) -> Loudness | None:
    """The ``ebur128`` summary (printed with one decimal: 0.1 dB precision)."""
    i = _I.search(stderr)
    p = _PEAK.search(stderr)
    if not i or not p:
        return None
    return Loudness(float(i.group(1)), float(p.group(1)))


def parse_decoded_ms(stderr: str) -> int | None:
    found = _TIME.findall(stderr)
    if not found:
        return None
    neg, h, m, s = found[-1]
    if neg:
        return None
    return int((int(h) * 3600 + int(m) * 60 + float(s)) * 1000)


@lru_cache(maxsize=4)
def tool_versions(ffmpeg: str = "ffmpeg") -> dict[str, str]:
    """ffmpeg and libopus versions, for the reconstruction record."""
    out: dict[str, str] = {}
    try:
        text = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True,
                              text=True, check=False).stdout
    except FileNotFoundError as exc:
        raise ToolError(ffmpeg, "ffmpeg not found (install ffmpeg)") from exc
    m = re.search(r"ffmpeg version (\S+)", text)
    if m:
        out["ffmpeg"] = m.group(1)
    for lib in ("libavcodec", "libavformat"):
        m = re.search(rf"{lib}\s+(\d+\.\s*\d+\.\s*\d+)", text)
        if m:
            out[lib] = m.group(1).replace(" ", "")
    try:
        import av

        out["pyav"] = av.__version__
    except ImportError:  # pragma: no cover
        pass
    return out
