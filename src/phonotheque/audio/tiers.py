"""Keep or transcode: which tier a file is archived in, and the archive file's extension.

``select`` plans a tier per track (``original`` for the head of the listen curve,
``reencode`` for the tail). The audio stage may keep an original even where a
re-encode was planned: re-encoding a lossy source that is already at or below the
target bitrate saves (almost) nothing and costs quality. The reverse never
happens: a planned original is always kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from phonotheque.audio.probe import ProbeResult

ORIGINAL = "original"
REENCODE = "reencode"
TIERS = (ORIGINAL, REENCODE)

# A lossy source at most this much above the target bitrate is kept as it is.
_KEEP_LOSSY_MARGIN = 1.1


@dataclass(frozen=True, slots=True)
class TierDecision:
    tier: str
    why: str


def decide_tier(planned: str, probe: ProbeResult, target_bps: int) -> TierDecision:
    """The tier ``probe``'s file is archived in, given the ``planned`` one and the Opus target."""
    if planned not in TIERS:
        raise ValueError(f"unknown tier {planned!r}")
    if planned == ORIGINAL:
        return TierDecision(ORIGINAL, "planned")
    if not probe.lossless and probe.bitrate and probe.bitrate <= target_bps * _KEEP_LOSSY_MARGIN:
        return TierDecision(
            ORIGINAL,
            f"lossy {probe.codec} source at {probe.bitrate // 1000} kbps is not above the "
            f"{target_bps // 1000} kbps target; kept instead of re-encoded",
        )
    return TierDecision(REENCODE, "planned")


# (demuxer, codec) -> archive extension. The demuxer comes first; codec breaks ties
# inside Ogg. The extension is derived from what the bytes are, never from the
# source file's name (which the archive must not trust).
_BY_CONTAINER = {
    "flac": "flac",
    "mp3": "mp3",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "wv": "wv",
    "ape": "ape",
    "mpc": "mpc",
    "mpc8": "mpc",
    "aiff": "aiff",
    "wav": "wav",
    "w64": "w64",
    "asf": "wma",
    "dsf": "dsf",
    "iff": "dff",
    "tak": "tak",
    "tta": "tta",
    "aac": "aac",
    "ac3": "ac3",
    "eac3": "eac3",
    "caf": "caf",
    "matroska,webm": "mka",
}
_OGG_BY_CODEC = {"opus": "opus", "vorbis": "ogg", "flac": "oga", "speex": "spx"}


def extension_for(probe: ProbeResult) -> str:
    """The archive extension of an original with this probe ("bin" if unknown)."""
    if probe.container == "ogg":
        return _OGG_BY_CODEC.get(probe.codec, "ogg")
    return _BY_CONTAINER.get(probe.container, "bin")
