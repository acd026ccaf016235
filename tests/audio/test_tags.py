"""Tags written onto in-memory copies of real files, re-parsed by mutagen."""

from __future__ import annotations

import io
from pathlib import Path

import mutagen
import pytest

from phonotheque.audio.tags import Picture, TagSet, extract_picture, load, write_tags

HOSTILE = "../../etc/passwd/\x00\x01\x1b[31m" + "é" * 150 + " ＡＢＣ"  # NUL, controls, look-alikes

TAGS = TagSet(
    title=HOSTILE,
    artist="Artist One",
    album="Album",
    tracknumber=3,
    discnumber=1,
    date="2001-02-03",
    isrcs=("GBAYE0601498", "USRC17607839"),
    mb_recording_id="b1a9c0e9-d987-4042-ae91-78d6a3267d69",
    mb_album_id="a5a9d5d5-4b09-4b5a-8b0a-8e4c7b8f3c2d",
    mb_artist_ids=("a74b1b7f-71a5-4011-9441-d0b5e4122711",),
    label="Label",
    source="musicbrainz:test",
    licence="https://creativecommons.org/licenses/by/4.0/",
    replaygain_gain=-3.5,
    replaygain_peak=0.891251,
    r128_track_gain=-2432,
)


def _tagged(path: Path, ext: str, art: Picture | None = None) -> tuple[bytes, object]:
    buf = io.BytesIO(path.read_bytes())
    outcome = write_tags(buf, ext, TAGS, art)
    out = buf.getvalue()
    parsed = mutagen.File(io.BytesIO(out))  # re-parse with mutagen's own detection
    assert parsed is not None
    return out, (outcome, parsed)


@pytest.mark.parametrize(
    ("name", "ext"),
    [("beets/full.flac", "flac"), ("beets/full.ogg", "ogg"), ("mutagen/empty.oggflac", "oga"),
     ("picard/test.spx", "spx")],
)
def test_vorbis_comments(data: Path, name: str, ext: str) -> None:
    _, (outcome, f) = _tagged(data / name, ext)
    assert outcome.family == "vorbis"  # type: ignore[attr-defined]
    t = f.tags  # type: ignore[attr-defined]
    assert t["TITLE"] == [HOSTILE.replace("\x00", "")]
    assert t["ISRC"] == ["GBAYE0601498", "USRC17607839"]
    assert t["MUSICBRAINZ_TRACKID"] == ["b1a9c0e9-d987-4042-ae91-78d6a3267d69"]
    assert t["TRACKNUMBER"] == ["3"] and t["DATE"] == ["2001-02-03"]
    assert t["LICENSE"] == ["https://creativecommons.org/licenses/by/4.0/"]
    assert t["PHONOTHEQUE_SOURCE"] == ["musicbrainz:test"]
    assert t["REPLAYGAIN_TRACK_GAIN"] == ["-3.50 dB"]
    assert t["REPLAYGAIN_TRACK_PEAK"] == ["0.891251"]


def test_opus_uses_r128(data: Path) -> None:
    _, (_, f) = _tagged(data / "beets" / "full.opus", "opus")
    t = f.tags  # type: ignore[attr-defined]
    assert t["R128_TRACK_GAIN"] == ["-2432"]
    assert "REPLAYGAIN_TRACK_GAIN" not in t


def test_id3(data: Path) -> None:
    _, (outcome, f) = _tagged(data / "beets" / "full.mp3", "mp3")
    t = f.tags  # type: ignore[attr-defined]
    assert outcome.family == "id3"  # type: ignore[attr-defined]
    assert t["TIT2"].text == [HOSTILE.replace("\x00", "")]
    assert t["TSRC"].text == ["GBAYE0601498", "USRC17607839"]
    assert t["UFID:http://musicbrainz.org"].data == b"b1a9c0e9-d987-4042-ae91-78d6a3267d69"
    assert t["TXXX:MusicBrainz Album Id"].text == ["a5a9d5d5-4b09-4b5a-8b0a-8e4c7b8f3c2d"]
    assert t["TXXX:REPLAYGAIN_TRACK_GAIN"].text == ["-3.50 dB"]
    assert t["TPUB"].text == ["Label"]


def test_mp4(data: Path) -> None:
    _, (outcome, f) = _tagged(data / "beets" / "full.m4a", "m4a")
    t = f.tags  # type: ignore[attr-defined]
    assert outcome.family == "mp4"  # type: ignore[attr-defined]
    assert t["\xa9nam"] == [HOSTILE.replace("\x00", "")]
    assert t["trkn"] == [(3, 0)]
    assert bytes(t["----:com.apple.iTunes:MusicBrainz Track Id"][0]) == (
        b"b1a9c0e9-d987-4042-ae91-78d6a3267d69")
    assert [bytes(v) for v in t["----:com.apple.iTunes:ISRC"]] == [b"GBAYE0601498",
                                                                   b"USRC17607839"]


@pytest.mark.parametrize(("name", "ext"), [("beets/full.wv", "wv"), ("beets/full.ape", "ape"),
                                           ("beets/full.mpc", "mpc")])
def test_apev2(data: Path, name: str, ext: str) -> None:
    _, (outcome, f) = _tagged(data / name, ext)
    assert outcome.family == "apev2"  # type: ignore[attr-defined]
    assert str(f.tags["MUSICBRAINZ_TRACKID"]) == "b1a9c0e9-d987-4042-ae91-78d6a3267d69"  # type: ignore[attr-defined]


def test_aiff_wav_wma(data: Path) -> None:
    for name, ext, family in (("beets/full.aiff", "aiff", "id3"),
                              ("picard/test.wav", "wav", "id3"),
                              ("picard/test.wma", "wma", "asf")):
        _, (outcome, _) = _tagged(data / name, ext)
        assert outcome.family == family  # type: ignore[attr-defined]


def test_untaggable_container_left_alone(data: Path) -> None:
    raw = (data / "picard" / "test.ac3").read_bytes()
    buf = io.BytesIO(raw)
    outcome = write_tags(buf, "ac3", TAGS, None)
    assert outcome.family is None and buf.getvalue() == raw


def test_pictures(data: Path) -> None:
    art = Picture.from_bytes((data / "beets" / "image-2x3.png").read_bytes())
    assert art is not None and (art.mime, art.width, art.height) == ("image/png", 2, 3)
    jpeg = Picture.from_bytes((data / "beets" / "image-2x3.jpg").read_bytes())
    assert jpeg is not None and (jpeg.width, jpeg.height) == (2, 3)
    for name, ext in (("beets/full.flac", "flac"), ("beets/full.opus", "opus"),
                      ("beets/full.mp3", "mp3"), ("beets/full.m4a", "m4a")):
        out, (outcome, _) = _tagged(data / name, ext, art)
        assert outcome.picture == "added"  # type: ignore[attr-defined]
        back = extract_picture(io.BytesIO(out), ext)
        assert back is not None and back.data == art.data, name
    # a file that has a cover keeps it
    out, (outcome, _) = _tagged(data / "beets" / "image.flac", "flac", art)
    assert outcome.picture == "kept"  # type: ignore[attr-defined]
    assert extract_picture(io.BytesIO((data / "beets" / "image.mp3").read_bytes()), "mp3")
    assert Picture.from_bytes(b"not an image") is None


def test_load_raises_on_broken_tags(data: Path) -> None:
    with pytest.raises(Exception):  # noqa: B017 - mutagen's own error types
        load(io.BytesIO((data / "mutagen" / "106-invalid-streaminfo.flac").read_bytes()), "flac")
