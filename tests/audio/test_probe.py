"""Probing real files, and refusing the ones that are not usable audio."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phonotheque.audio.probe import Refused, probe
from phonotheque.audio.tiers import ORIGINAL, REENCODE, decide_tier, extension_for


@pytest.mark.parametrize(
    ("name", "container", "codec", "ext"),
    [
        ("beets/full.flac", "flac", "flac", "flac"),
        ("beets/full.mp3", "mp3", "mp3", "mp3"),
        ("beets/full.m4a", "mov,mp4,m4a,3gp,3g2,mj2", "aac", "m4a"),
        ("beets/full.ogg", "ogg", "vorbis", "ogg"),
        ("beets/full.opus", "ogg", "opus", "opus"),
        ("beets/full.wv", "wv", "wavpack", "wv"),
        ("mutagen/empty.oggflac", "ogg", "flac", "oga"),
        ("picard/test.spx", "ogg", "speex", "spx"),
        ("mutagen/silence-44-s.flac", "flac", "flac", "flac"),
    ],
)
def test_probe_real_files(data: Path, name: str, container: str, codec: str, ext: str) -> None:
    info = probe(data / name)
    assert (info.container, info.codec) == (container, codec)
    assert extension_for(info) == ext
    assert info.duration_ms > 0 and info.channels >= 1 and info.sample_rate >= 8000


def test_probe_values(data: Path) -> None:
    info = probe(data / "mutagen" / "silence-44-s.flac")
    assert info.lossless and info.channels == 2 and info.sample_rate == 44100
    assert 3600 <= info.duration_ms <= 3700


def test_duration_counted_when_header_has_none(data: Path) -> None:
    assert probe(data / "mutagen" / "no_length.wv").duration_ms > 0


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("mutagen/emptyfile.mp3", "zero_duration"),
        ("mutagen/too-short.mp3", "undecodable"),
        ("mutagen/106-invalid-streaminfo.flac", "undecodable"),
        ("mutagen/52-too-short-block-size.flac", "undecodable"),
        ("mutagen/ooming-header.flac", "undecodable"),
        ("mutagen/truncated-64bit.mp4", "undecodable"),
        ("mutagen/64bit.mp4", "no_audio"),
        ("mutagen/sample.oggtheora", "no_audio"),
        ("beets/no_ext_not_music", "undecodable"),
        ("beets/unparseable.wma", "undecodable"),
        ("beets/unparseable.dsf", "undecodable"),
        ("beets/image-2x3.png", "no_audio"),
    ],
)
def test_refused_inputs(data: Path, name: str, reason: str) -> None:
    path = data / name
    with pytest.raises(Refused) as exc:
        probe(path)
    if exc.value.reason != reason:  # different ffmpeg builds word some failures differently
        assert exc.value.reason in ("undecodable", "zero_duration", "no_audio"), exc.value
    assert str(path) in str(exc.value)


def test_missing_directory_fifo(tmp_path: Path) -> None:
    with pytest.raises(Refused) as exc:
        probe(tmp_path / "nope.flac")
    assert exc.value.reason == "missing"
    (tmp_path / "dir.flac").mkdir()
    with pytest.raises(Refused) as exc:
        probe(tmp_path / "dir.flac")
    assert exc.value.reason == "unreadable"
    fifo = tmp_path / "pipe.flac"
    os.mkfifo(fifo)
    with pytest.raises(Refused) as exc:  # refused without opening (would block)
        probe(fifo)
    assert exc.value.reason == "unreadable"


def test_truncated_random_and_empty(tmp_path: Path, data: Path) -> None:
    rnd = tmp_path / "noise.mp3"
    rnd.write_bytes(os.urandom(4096) * 4)
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    for p in (rnd, empty):
        with pytest.raises(Refused):
            probe(p)
    head = tmp_path / "head.flac"
    head.write_bytes((data / "beets" / "full.flac").read_bytes()[:200])
    with pytest.raises(Refused):
        probe(head)


def test_decide_tier(data: Path) -> None:
    flac = probe(data / "beets" / "whitenoise.flac")
    mp3 = probe(data / "beets" / "full.mp3")  # 80 kbps
    assert decide_tier(ORIGINAL, flac, 75000).tier == ORIGINAL
    assert decide_tier(REENCODE, flac, 75000).tier == REENCODE
    kept = decide_tier(REENCODE, mp3, 75000)
    assert kept.tier == ORIGINAL and "not above" in kept.why
    assert decide_tier(REENCODE, mp3, 64000).tier == REENCODE


@pytest.mark.parametrize("size", [4, 200])
def test_a_tiny_ogg_gets_a_reason_in_words(data: Path, tmp_path: Path, size: int) -> None:
    # Before issue 12: "[Errno 541478725] End of file: '<path>'" (FFmpeg's AVERROR_EOF).
    tiny = tmp_path / "tiny.ogg"
    tiny.write_bytes((data / "beets" / "full.ogg").read_bytes()[:size])
    with pytest.raises(Refused) as err:
        probe(tiny)
    assert "Errno" not in str(err.value) and "541478725" not in str(err.value)
    assert "ends before any audio" in str(err.value)
    assert str(err.value).count(str(tiny)) == 1  # the path once, as the subject
