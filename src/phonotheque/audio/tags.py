"""Tags as MusicBrainz Picard writes them, for every container mutagen can tag.

Tags are written onto an in-memory copy of the file (``io.BytesIO``): the audio
packets are never touched, and the caller hashes and writes the result once.

Container families (a registry keyed by mutagen's tag class, not an if/elif chain):

* Vorbis comments — FLAC (pictures as native PICTURE blocks), Ogg Vorbis, Ogg
  Opus, Ogg FLAC, Speex (pictures as ``METADATA_BLOCK_PICTURE``);
* ID3v2.4 — MP3, AIFF, WAV, DSF, DSDIFF (``TXXX``, ``TSRC``, ``UFID``, ``APIC``);
* MP4 — m4a/ALAC (iTunes atoms and ``----:com.apple.iTunes:`` freeform, ``covr``);
* APEv2 — WavPack, Monkey's Audio, Musepack, TAK, OptimFROG, TrueAudio;
* ASF — WMA (text attributes; the cover is *not* written: mutagen exposes
  ``WM/Picture`` only as raw bytes).

Anything else (raw AAC/AC3 streams, ...) is archived untagged; the caller records
that in the reconstruction JSON.

ReplayGain: for Opus the RFC 7845 ``R128_TRACK_GAIN`` tag is written instead of
``REPLAYGAIN_*`` (RFC 7845 §5.2.1 asks Opus files not to carry the latter); the
catalogue keeps the ReplayGain 2.0 gain/peak for every file either way.
"""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from phonotheque.images import sniff_image

MB_ID3_UFID_OWNER = "http://musicbrainz.org"


@dataclass(frozen=True, slots=True)
class Picture:
    data: bytes
    mime: str
    width: int = 0
    height: int = 0
    depth: int = 0

    @classmethod
    def from_bytes(cls, data: bytes) -> Picture | None:
        """A front cover from image bytes, or ``None`` if they are not JPEG/PNG/GIF/WebP."""
        mime = sniff_image(data)
        if mime is None:
            return None
        w, h, d = _dimensions(data, mime)
        return cls(data=data, mime=mime, width=w, height=h, depth=d)


@dataclass(frozen=True, slots=True)
class TagSet:
    """What the catalogue knows about one track, ready to be written as tags."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    tracknumber: int | None = None
    discnumber: int | None = None
    date: str | None = None
    isrcs: tuple[str, ...] = ()
    mb_recording_id: str | None = None  # Picard's MUSICBRAINZ_TRACKID (a recording MBID)
    mb_album_id: str | None = None
    mb_artist_ids: tuple[str, ...] = ()
    label: str | None = None
    source: str | None = None  # PHONOTHEQUE_SOURCE: where the metadata came from
    licence: str | None = None  # LICENSE: the *audio's* licence, when the source file's is known
    metadata_licence: str | None = None  # PHONOTHEQUE_METADATA_LICENSE (e.g. CC0-1.0)
    art_path: str | None = None  # absolute path of the release's cover, read by the worker
    replaygain_gain: float | None = None  # dB, ReplayGain 2.0 (-18 LUFS reference)
    replaygain_peak: float | None = None  # linear sample peak
    r128_track_gain: int | None = None  # Q7.8 dB relative to -23 LUFS (Opus only)

    def with_loudness(self, gain: float | None, peak: float | None, r128: int | None) -> TagSet:
        return replace(self, replaygain_gain=gain, replaygain_peak=peak, r128_track_gain=r128)

    def fields(self) -> dict[str, list[str]]:
        """Picard's generic tag names -> values (NUL removed, empty values dropped)."""
        raw: dict[str, list[str | None]] = {
            "title": [self.title],
            "artist": [self.artist],
            "album": [self.album],
            "tracknumber": [str(self.tracknumber) if self.tracknumber else None],
            "discnumber": [str(self.discnumber) if self.discnumber else None],
            "date": [self.date],
            "isrc": list(self.isrcs),
            "musicbrainz_trackid": [self.mb_recording_id],
            "musicbrainz_albumid": [self.mb_album_id],
            "musicbrainz_artistid": list(self.mb_artist_ids),
            "label": [self.label],
            "phonotheque_source": [self.source],
            "license": [self.licence],
            "phonotheque_metadata_license": [self.metadata_licence],
            "replaygain_track_gain": [
                f"{self.replaygain_gain:.2f} dB" if self.replaygain_gain is not None else None
            ],
            "replaygain_track_peak": [
                f"{self.replaygain_peak:.6f}" if self.replaygain_peak is not None else None
            ],
        }
        out: dict[str, list[str]] = {}
        for key, values in raw.items():
            kept = [clean_text(v) for v in values if v]
            kept = [v for v in kept if v]
            if kept:
                out[key] = kept
        return out


def clean_text(value: str) -> str:
    """Tag text as given, minus NUL (a separator or terminator in most tag formats)."""
    return value.replace("\x00", "")


# -- the registry ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Family:
    name: str
    write: Callable[[Any, TagSet, Picture | None], list[str]]
    has_picture: Callable[[Any], bool]
    extract_picture: Callable[[Any], Picture | None]
    pictures: bool = True  # can we embed a cover in this family?


def _mutagen_class(ext: str) -> type | None:
    """The mutagen file class for an archive extension (from :func:`tiers.extension_for`)."""
    from mutagen import (
        aiff,
        asf,
        dsdiff,
        dsf,
        flac,
        monkeysaudio,
        mp3,
        mp4,
        musepack,
        oggflac,
        oggopus,
        oggspeex,
        oggvorbis,
        optimfrog,
        tak,
        trueaudio,
        wave,
        wavpack,
    )

    classes: dict[str, type] = {
        "flac": flac.FLAC,
        "opus": oggopus.OggOpus,
        "ogg": oggvorbis.OggVorbis,
        "oga": oggflac.OggFLAC,
        "spx": oggspeex.OggSpeex,
        "mp3": mp3.MP3,
        "m4a": mp4.MP4,
        "wv": wavpack.WavPack,
        "ape": monkeysaudio.MonkeysAudio,
        "mpc": musepack.Musepack,
        "ofr": optimfrog.OptimFROG,
        "tak": tak.TAK,
        "tta": trueaudio.TrueAudio,
        "aiff": aiff.AIFF,
        "wav": wave.WAVE,
        "dsf": dsf.DSF,
        "dff": dsdiff.DSDIFF,
        "wma": asf.ASF,
    }
    return classes.get(ext)


def _family_of(f: Any) -> _Family | None:
    from mutagen._vorbis import VCommentDict
    from mutagen.apev2 import APEv2
    from mutagen.asf import ASFTags
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags
    from mutagen.trueaudio import TrueAudio

    if f.tags is None:
        try:
            f.add_tags()
        except Exception:  # noqa: BLE001 - mutagen raises assorted errors for "no tags here"
            return None
    if isinstance(f, TrueAudio) and not isinstance(f.tags, ID3):
        return None
    tags = f.tags
    if isinstance(tags, VCommentDict):
        return _VORBIS
    if isinstance(tags, ID3):
        return _ID3
    if isinstance(tags, MP4Tags):
        return _MP4
    if isinstance(tags, APEv2):
        return _APE
    if isinstance(tags, ASFTags):
        return _ASF
    return None


@dataclass(frozen=True, slots=True)
class TagOutcome:
    family: str | None  # "vorbis", "id3", "mp4", "apev2", "asf", or None if untaggable
    written: tuple[str, ...]  # generic names written
    picture: str | None  # "added", "kept" (the file already had one) or None


def load(buf: io.BytesIO, ext: str) -> Any:
    """Parse ``buf`` with the mutagen class for ``ext``; raise mutagen's error if it fails."""
    cls = _mutagen_class(ext)
    if cls is None:
        return None
    buf.seek(0)
    return cls(buf)


def write_tags(buf: io.BytesIO, ext: str, tags: TagSet, art: Picture | None) -> TagOutcome:
    """Write ``tags`` (and ``art`` if the file has no picture yet) into the file in ``buf``.

    Existing tags we do not set are kept. Raises mutagen's errors on unparseable
    input; the caller classifies them.
    """
    f = load(buf, ext)
    if f is None:
        return TagOutcome(None, (), None)
    family = _family_of(f)
    if family is None:
        return TagOutcome(None, (), None)
    pic_state: str | None = None
    picture = art if family.pictures else None
    if family.has_picture(f):
        picture, pic_state = None, "kept"
    written = family.write(f, tags, picture)
    if picture is not None:
        pic_state = "added"
    buf.seek(0)
    f.save(buf)
    return TagOutcome(family.name, tuple(written), pic_state)


def extract_picture(buf: io.BytesIO, ext: str) -> Picture | None:
    """The first embedded picture of the file in ``buf`` (front cover preferred), or None."""
    try:
        f = load(buf, ext)
    except Exception:  # noqa: BLE001 - a broken tag block just means "no usable picture"
        return None
    if f is None:
        return None
    family = _family_of(f)  # (adds an empty tag block in memory if there is none)
    return family.extract_picture(f) if family else None


# -- Vorbis comments ---------------------------------------------------------------


def _vorbis_write(f: Any, tags: TagSet, picture: Picture | None) -> list[str]:
    from mutagen.flac import FLAC
    from mutagen.oggopus import OggOpus

    fields = tags.fields()
    if isinstance(f, OggOpus):
        # RFC 7845: Opus carries R128 gains, not REPLAYGAIN_* tags.
        fields.pop("replaygain_track_gain", None)
        fields.pop("replaygain_track_peak", None)
        if tags.r128_track_gain is not None:
            fields["r128_track_gain"] = [str(tags.r128_track_gain)]
    for key, values in fields.items():
        f.tags[key.upper()] = values
    if picture is not None:
        pic = _flac_picture(picture)
        if isinstance(f, FLAC):
            f.add_picture(pic)
        else:
            f.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(pic.write()).decode("ascii")]
    return sorted(fields)


def _vorbis_has_picture(f: Any) -> bool:
    if getattr(f, "pictures", None):
        return True
    return bool(f.tags and "metadata_block_picture" in f.tags)


def _vorbis_extract(f: Any) -> Picture | None:
    from mutagen.flac import Picture as FPicture

    pics = list(getattr(f, "pictures", []) or [])
    for b64 in (f.tags.get("metadata_block_picture", []) if f.tags else []):
        try:
            pics.append(FPicture(base64.b64decode(b64)))
        except Exception:  # noqa: BLE001,S112 - skip a malformed picture block
            continue
    pics.sort(key=lambda p: p.type != 3)
    for p in pics:
        pic = Picture.from_bytes(bytes(p.data))
        if pic:
            return pic
    return None


def _flac_picture(picture: Picture) -> Any:
    from mutagen.flac import Picture as FPicture

    pic = FPicture()
    pic.type = 3  # front cover
    pic.mime = picture.mime
    pic.desc = ""
    pic.width, pic.height, pic.depth = picture.width, picture.height, picture.depth
    pic.data = picture.data
    return pic


_VORBIS = _Family("vorbis", _vorbis_write, _vorbis_has_picture, _vorbis_extract)


# -- ID3 -----------------------------------------------------------------------------

_ID3_TEXT = {
    "title": "TIT2",
    "artist": "TPE1",
    "album": "TALB",
    "tracknumber": "TRCK",
    "discnumber": "TPOS",
    "date": "TDRC",
    "isrc": "TSRC",
    "label": "TPUB",
}
_ID3_TXXX = {
    "musicbrainz_albumid": "MusicBrainz Album Id",
    "musicbrainz_artistid": "MusicBrainz Artist Id",
    "phonotheque_source": "PHONOTHEQUE_SOURCE",
    "phonotheque_metadata_license": "PHONOTHEQUE_METADATA_LICENSE",
    "license": "LICENSE",
    "replaygain_track_gain": "REPLAYGAIN_TRACK_GAIN",
    "replaygain_track_peak": "REPLAYGAIN_TRACK_PEAK",
}


def _id3_write(f: Any, tags: TagSet, picture: Picture | None) -> list[str]:
    from mutagen import id3

    fields = tags.fields()
    t = f.tags
    for key, values in fields.items():
        if key in _ID3_TEXT:
            frame_id = _ID3_TEXT[key]
            t.setall(frame_id, [getattr(id3, frame_id)(encoding=3, text=values)])
        elif key == "musicbrainz_trackid":
            t.delall(f"UFID:{MB_ID3_UFID_OWNER}")
            t.add(id3.UFID(owner=MB_ID3_UFID_OWNER, data=values[0].encode("ascii", "replace")))
        elif key in _ID3_TXXX:
            desc = _ID3_TXXX[key]
            t.delall(f"TXXX:{desc}")
            t.add(id3.TXXX(encoding=3, desc=desc, text=values))
    if picture is not None:
        t.add(id3.APIC(encoding=3, mime=picture.mime, type=3, desc="", data=picture.data))
    return sorted(fields)


def _id3_has_picture(f: Any) -> bool:
    return bool(f.tags and f.tags.getall("APIC"))


def _id3_extract(f: Any) -> Picture | None:
    frames = sorted(f.tags.getall("APIC"), key=lambda a: a.type != 3)
    for a in frames:
        pic = Picture.from_bytes(bytes(a.data))
        if pic:
            return pic
    return None


_ID3 = _Family("id3", _id3_write, _id3_has_picture, _id3_extract)


# -- MP4 -------------------------------------------------------------------------------

_MP4_ATOMS = {"title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "date": "\xa9day"}
_MP4_FREEFORM = {
    "isrc": "ISRC",
    "musicbrainz_trackid": "MusicBrainz Track Id",
    "musicbrainz_albumid": "MusicBrainz Album Id",
    "musicbrainz_artistid": "MusicBrainz Artist Id",
    "label": "LABEL",
    "phonotheque_source": "PHONOTHEQUE_SOURCE",
    "phonotheque_metadata_license": "PHONOTHEQUE_METADATA_LICENSE",
    "license": "LICENSE",
    "replaygain_track_gain": "replaygain_track_gain",
    "replaygain_track_peak": "replaygain_track_peak",
}


def _mp4_write(f: Any, tags: TagSet, picture: Picture | None) -> list[str]:
    from mutagen.mp4 import MP4Cover, MP4FreeForm

    fields = tags.fields()
    t = f.tags
    for key, values in fields.items():
        if key in _MP4_ATOMS:
            t[_MP4_ATOMS[key]] = values
        elif key == "tracknumber":
            t["trkn"] = [(int(values[0]), 0)]
        elif key == "discnumber":
            t["disk"] = [(int(values[0]), 0)]
        elif key in _MP4_FREEFORM:
            t[f"----:com.apple.iTunes:{_MP4_FREEFORM[key]}"] = [
                MP4FreeForm(v.encode("utf-8")) for v in values
            ]
    if picture is not None and picture.mime in ("image/jpeg", "image/png"):
        fmt = MP4Cover.FORMAT_JPEG if picture.mime == "image/jpeg" else MP4Cover.FORMAT_PNG
        t["covr"] = [MP4Cover(picture.data, imageformat=fmt)]
    return sorted(fields)


def _mp4_has_picture(f: Any) -> bool:
    return bool(f.tags and f.tags.get("covr"))


def _mp4_extract(f: Any) -> Picture | None:
    for c in f.tags.get("covr", []):
        pic = Picture.from_bytes(bytes(c))
        if pic:
            return pic
    return None


_MP4 = _Family("mp4", _mp4_write, _mp4_has_picture, _mp4_extract)


# -- APEv2 -----------------------------------------------------------------------------

_APE_KEYS = {
    "title": "Title",
    "artist": "Artist",
    "album": "Album",
    "tracknumber": "Track",
    "discnumber": "Disc",
    "date": "Year",
    "isrc": "ISRC",
    "musicbrainz_trackid": "MUSICBRAINZ_TRACKID",
    "musicbrainz_albumid": "MUSICBRAINZ_ALBUMID",
    "musicbrainz_artistid": "MUSICBRAINZ_ARTISTID",
    "label": "Label",
    "phonotheque_source": "PHONOTHEQUE_SOURCE",
    "phonotheque_metadata_license": "PHONOTHEQUE_METADATA_LICENSE",
    "license": "LICENSE",
    "replaygain_track_gain": "REPLAYGAIN_TRACK_GAIN",
    "replaygain_track_peak": "REPLAYGAIN_TRACK_PEAK",
}
_APE_COVER = "Cover Art (Front)"


def _ape_write(f: Any, tags: TagSet, picture: Picture | None) -> list[str]:
    from mutagen.apev2 import BINARY, APEValue

    fields = tags.fields()
    for key, values in fields.items():
        f.tags[_APE_KEYS[key]] = values
    if picture is not None:
        ext = "png" if picture.mime == "image/png" else "jpg"
        f.tags[_APE_COVER] = APEValue(f"cover.{ext}".encode() + b"\x00" + picture.data, BINARY)
    return sorted(fields)


def _ape_has_picture(f: Any) -> bool:
    return bool(f.tags and _APE_COVER in f.tags)


def _ape_extract(f: Any) -> Picture | None:
    value = f.tags.get(_APE_COVER)
    if value is None:
        return None
    raw = bytes(value.value)
    return Picture.from_bytes(raw.split(b"\x00", 1)[-1])


_APE = _Family("apev2", _ape_write, _ape_has_picture, _ape_extract)


# -- ASF -------------------------------------------------------------------------------

_ASF_KEYS = {
    "title": "Title",
    "artist": "Author",
    "album": "WM/AlbumTitle",
    "tracknumber": "WM/TrackNumber",
    "discnumber": "WM/PartOfSet",
    "date": "WM/Year",
    "isrc": "WM/ISRC",
    "musicbrainz_trackid": "MusicBrainz/Track Id",
    "musicbrainz_albumid": "MusicBrainz/Album Id",
    "musicbrainz_artistid": "MusicBrainz/Artist Id",
    "label": "WM/Publisher",
    "phonotheque_source": "PHONOTHEQUE_SOURCE",
    "phonotheque_metadata_license": "PHONOTHEQUE_METADATA_LICENSE",
    "license": "LICENSE",
    "replaygain_track_gain": "replaygain_track_gain",
    "replaygain_track_peak": "replaygain_track_peak",
}


def _asf_write(f: Any, tags: TagSet, picture: Picture | None) -> list[str]:
    fields = tags.fields()
    for key, values in fields.items():
        f.tags[_ASF_KEYS[key]] = values
    return sorted(fields)


_ASF = _Family(
    "asf", _asf_write, lambda f: bool(f.tags and f.tags.get("WM/Picture")), lambda f: None,
    pictures=False,
)


# -- images ------------------------------------------------------------------------------


def _dimensions(data: bytes, mime: str) -> tuple[int, int, int]:
    """Width, height and colour depth when cheaply known (0 otherwise; both are allowed)."""
    try:
        if mime == "image/png" and len(data) >= 26:
            w, h = struct.unpack(">II", data[16:24])
            bit_depth, colour = data[24], data[25]
            channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 0)
            return w, h, bit_depth * channels
        if mime == "image/jpeg":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    i += 1
                    continue
                marker = data[i + 1]
                length = struct.unpack(">H", data[i + 2 : i + 4])[0]
                if marker in (0xC0, 0xC1, 0xC2):
                    bits, h, w, comps = struct.unpack(">BHHB", data[i + 4 : i + 10])
                    return w, h, bits * comps
                i += 2 + length
    except struct.error:
        pass
    return 0, 0, 0
