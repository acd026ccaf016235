"""Probe an audio file with PyAV: container, codec, bitrate, duration, channels.

A probe also *decodes* the first packets of the first audio stream: a header that
parses is not proof that the audio does, and refusing a file here is far cheaper
than failing halfway through an encode.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from phonotheque.audio import oggpages
from phonotheque.errors import InputError

# Decode this many packets before trusting a file.
_DECODE_PACKETS = 8


class Refused(InputError):
    """An input file the audio stage will not archive; ``reason`` is the ledger suffix.

    Reasons: ``missing``, ``unreadable``, ``undecodable``, ``zero_duration``,
    ``no_audio``, ``unparseable``, ``truncated``, ``internal``.
    """

    def __init__(self, subject: object, problem: str, reason: str) -> None:
        super().__init__(subject, problem)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProbeResult:
    container: str  # PyAV/ffmpeg demuxer name, e.g. "flac", "ogg", "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str  # decoder name as ffmpeg spells it ("flac", "opus", "mp3float" -> "mp3")
    bitrate: int | None  # bits per second (stream, else container)
    duration_ms: int
    channels: int
    sample_rate: int
    lossless: bool


_LOSSLESS = {"flac", "alac", "wavpack", "ape", "tta", "tak", "mlp", "truehd", "wmalossless"}


def check_readable(path: Path) -> os.stat_result:
    """Stat ``path`` and refuse anything that is not a readable regular file.

    Directories, FIFOs and devices are refused *before* opening: opening a FIFO
    for reading would block until someone writes to it.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise Refused(path, "file not found", "missing") from exc
    except PermissionError as exc:
        raise Refused(path, f"cannot read: {exc.strerror}", "unreadable") from exc
    except OSError as exc:
        raise Refused(path, f"cannot stat: {exc.strerror or exc}", "unreadable") from exc
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise Refused(path, f"{kind}", "unreadable")
    if st.st_size == 0:
        raise Refused(path, "empty file (0 bytes)", "zero_duration")
    return st


def probe(path: Path, decode_packets: int = _DECODE_PACKETS) -> ProbeResult:
    """Describe the first audio stream of ``path``; raise :class:`Refused` if unusable."""
    import av

    check_readable(path)
    try:
        container = av.open(str(path), metadata_errors="replace")
    except PermissionError as exc:
        raise Refused(path, f"cannot read: {exc.strerror}", "unreadable") from exc
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise Refused(path, f"not a readable audio file: {_short(exc)}", "undecodable") from exc
    try:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise Refused(path, "no audio stream", "no_audio")
        stream = streams[0]
        ctx = stream.codec_context
        samples = 0
        packets = 0
        header_ms = _duration_ms(container, stream)
        counted = 0.0  # seconds, from packet durations, when the header gives none
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packets < decode_packets or samples == 0:
                    for frame in packet.decode():
                        samples += getattr(frame, "samples", 0)
                    packets += 1
                elif header_ms > 0:
                    break
                if packet.duration and packet.time_base:
                    counted += float(packet.duration * packet.time_base)
        except (av.error.FFmpegError, ValueError) as exc:
            if samples == 0:
                raise Refused(path, f"audio does not decode: {_short(exc)}", "undecodable") from exc
        if samples == 0:
            raise Refused(path, "no audio samples decode", "zero_duration")
        duration_ms = header_ms or int(counted * 1000)
        if duration_ms <= 0:
            raise Refused(path, "duration is zero", "zero_duration")
        codec = ctx.name or "unknown"
        if codec.endswith("float") and codec.startswith("mp"):  # mp3float -> mp3
            codec = codec[: -len("float")]
        bitrate = ctx.bit_rate or container.bit_rate or None
        if container.format.name == "ogg":
            # An Ogg file's header duration comes from its last page, so a cut file
            # announces what is left of it: check for the end-of-stream page instead.
            try:
                cut = oggpages.truncation(path)
            except OSError as exc:
                raise Refused(path, f"cannot read: {exc.strerror or exc}", "unreadable") from exc
            if cut is not None:
                raise Refused(path, f"truncated: {cut}", "truncated")
        return ProbeResult(
            container=container.format.name,
            codec=codec,
            bitrate=int(bitrate) if bitrate else None,
            duration_ms=duration_ms,
            channels=int(getattr(ctx, "channels", 0) or 0),
            sample_rate=int(getattr(ctx, "sample_rate", 0) or 0),
            lossless=codec in _LOSSLESS or codec.startswith("pcm_"),
        )
    finally:
        container.close()


def _duration_ms(container: object, stream: object) -> int:
    dur = getattr(stream, "duration", None)
    tb = getattr(stream, "time_base", None)
    if dur and tb:
        return int(dur * tb * 1000)
    cdur = getattr(container, "duration", None)  # microseconds
    if cdur:
        return int(cdur // 1000)
    return 0


def _short(exc: BaseException) -> str:
    """FFmpeg's reason in words: not ``[Errno 541478725] End of file: '<path>'`` (the
    negative AVERROR code and the path, which the reject already names)."""
    import av

    if isinstance(exc, av.error.EOFError):
        return "the file ends before any audio could be read (too short or cut off)"
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return exc.strerror.replace("\n", " ")[:200]
    text = str(exc).replace("\n", " ")
    return text[:200]
