"""Audio files: walk a tree, read tags and stream properties with mutagen.

Each audio file becomes a :class:`~phonotheque.model.SourceAudio` that the store
attaches to a track found by MusicBrainz recording id, then by ISRC; when
neither matches, the file's own tags describe a new track (the ``fallback``
records), keyed by the recording MBID if the file has one, else by
``tags:<sha1 of the path>``.

Tag names differ per container; a registry maps each mutagen tag class
(Vorbis comments, ID3, MP4, APEv2, ASF) to a reader that returns the same
canonical fields. ``MUSICBRAINZ_TRACKID`` is the *recording* MBID, as Picard
writes it (``UFID:http://musicbrainz.org`` in ID3).

Refused, with the path and the reason, and the walk goes on: empty files,
unreadable files (permissions), files mutagen cannot parse, files that are not
audio, and names that are not UTF-8 (they could not be stored and found again);
and, by the rule every folder reader follows (:func:`found_entry`), a symbolic
link to nothing, a loop of links, a pipe or device (never opened) and a symbolic
link to a folder (not walked into). A symbolic link to a file is read as that file.
A tag value that cannot be understood (e.g. a date ``Oct 3, 1995``) is recorded
as a reject too, but the file is still attached without that value.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mutagen
from mutagen._vorbis import VComment
from mutagen.apev2 import APEv2
from mutagen.asf import ASFTags
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Tags

from phonotheque import isrc as isrc_mod
from phonotheque.errors import InputError, InvalidISRC
from phonotheque.model import (
    Artist,
    Provenance,
    Record,
    Release,
    SourceAudio,
    Track,
    TrackISRC,
)
from phonotheque.sources._base import (
    CHECKPOINT_EVERY,
    Input,
    ReadOptions,
    checkpoint,
    found_entry,
    is_printable_utf8,
    printable,
    reject,
)

KIND = "tags"
# Never audio: skipped silently instead of being reported as unreadable.
SKIP_SUFFIXES = frozenset(
    ".jpg .jpeg .png .gif .bmp .tif .tiff .webp .txt .nfo .log .cue .m3u .m3u8 .pls .pdf "
    ".sfv .md5 .sha1 .sha256 .json .xml .html .db .ini .accurip .lrc .url .ds_store".split()
)
# Names that promise audio: if mutagen finds none inside, the file is reported.
AUDIO_SUFFIXES = frozenset(
    ".mp3 .mp2 .flac .ogg .oga .opus .spx .m4a .m4b .mp4 .aac .wma .asf .wav .aif .aiff .aifc "
    ".ape .wv .mpc .tta .tak .ofr .ofs .dsf .dff .ac3 .eac3 .alac .3g2 .webm .mka".split()
)
_MBID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DATE = re.compile(r"^(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?(?:[T ].*)?$")
_NUMBER = re.compile(r"^\s*([0-9]+)\s*(?:/\s*([0-9]+)\s*)?$")
# Longest disc or track number read as a number: more digits are refused before
# int() (a 5,000-digit TRACKNUMBER passes Python's digit limit and raises).
_NUMBER_DIGITS = 9

Fields = dict[str, list[str]]


# -- tag readers, one per tag container (registry) ------------------------------

# canonical field -> lower-cased tag keys, per container family
_VORBIS = {
    "title": ("title",), "artist": ("artist",), "artists": ("artists",),
    "album": ("album",), "albumartist": ("albumartist", "album artist"),
    "track": ("tracknumber", "track"), "disc": ("discnumber", "disc"),
    "isrc": ("isrc",), "recording_mbid": ("musicbrainz_trackid",),
    "release_mbid": ("musicbrainz_albumid",), "artist_mbid": ("musicbrainz_artistid",),
    "date": ("date", "year", "originaldate"),
    "label": ("label", "organization", "publisher"),
}
_APE = {**_VORBIS, "track": ("track", "tracknumber"), "disc": ("disc", "discnumber"),
        "albumartist": ("album artist", "albumartist")}
_ID3 = {
    "title": ("TIT2",), "artist": ("TPE1",), "artists": ("TXXX:ARTISTS", "TXXX:Artists"),
    "album": ("TALB",), "albumartist": ("TPE2",), "track": ("TRCK",), "disc": ("TPOS",),
    "isrc": ("TSRC",), "recording_mbid": ("UFID:http://musicbrainz.org",),
    "release_mbid": ("TXXX:MusicBrainz Album Id",),
    "artist_mbid": ("TXXX:MusicBrainz Artist Id",),
    "date": ("TDRC", "TYER", "TDOR"), "label": ("TPUB",),
}
_MP4 = {
    "title": ("©nam",), "artist": ("©ART",), "artists": ("----:com.apple.iTunes:ARTISTS",),
    "album": ("©alb",), "albumartist": ("aART",), "track": ("trkn",), "disc": ("disk",),
    "isrc": ("----:com.apple.iTunes:ISRC",),
    "recording_mbid": ("----:com.apple.iTunes:MusicBrainz Track Id",),
    "release_mbid": ("----:com.apple.iTunes:MusicBrainz Album Id",),
    "artist_mbid": ("----:com.apple.iTunes:MusicBrainz Artist Id",),
    "date": ("©day",),
    "label": ("----:com.apple.iTunes:LABEL", "----:com.apple.iTunes:Label",
              "----:com.apple.iTunes:publisher"),
}
_ASF = {
    "title": ("Title", "TITLE"), "artist": ("Author", "WM/ARTISTS"),
    "artists": ("WM/ARTISTS",), "album": ("WM/AlbumTitle",),
    "albumartist": ("WM/AlbumArtist",), "track": ("WM/TrackNumber",),
    "disc": ("WM/PartOfSet",), "isrc": ("WM/ISRC", "ISRC"),
    "recording_mbid": ("MusicBrainz/Track Id", "MUSICBRAINZ_TRACKID"),
    "release_mbid": ("MusicBrainz/Album Id", "MUSICBRAINZ_ALBUMID"),
    "artist_mbid": ("MusicBrainz/Artist Id", "MUSICBRAINZ_ARTISTID"),
    "date": ("WM/Year", "DATE", "YEAR"), "label": ("WM/Publisher", "LABEL"),
}


def _texts(value: Any) -> list[str]:
    """The text values of one tag, whatever the container's value type."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        out: list[str] = []
        for v in value:
            out.extend(_texts(v))
        return out
    if hasattr(value, "text") and not isinstance(value, str | bytes):  # ID3 text frames
        return _texts(value.text)
    if hasattr(value, "data") and type(value).__name__ == "UFID":
        return [value.data.decode("ascii", "replace")]
    if isinstance(value, bytes):  # MP4 freeform atoms
        return [value.decode("utf-8", "replace")]
    if isinstance(value, tuple):
        return [str(v) for v in value]
    return [str(value)]


def _by_keys(get: Callable[[str], Any], mapping: dict[str, tuple[str, ...]]) -> Fields:
    out: Fields = {}
    for name, keys in mapping.items():
        for k in keys:
            values = [v for v in _texts(get(k)) if v.strip()]
            if values or (name == "date" and get(k) is not None):
                out[name] = values
                break
    return out


def _vorbis(tags: Any) -> Fields:
    lower: dict[str, list[str]] = {}
    for k, v in tags.items():
        lower.setdefault(k.lower(), []).extend(_texts(v))
    return _by_keys(lambda k: lower.get(k), _VORBIS)


def _ape(tags: Any) -> Fields:
    lower = {k.lower(): v for k, v in tags.items()}
    return _by_keys(lambda k: _ape_text(lower.get(k)), _APE)


def _ape_text(value: Any) -> list[str] | None:
    if value is None:
        return None
    try:
        return list(value)  # APETextValue iterates over its NUL-separated values
    except TypeError:
        return None


def _id3(tags: Any) -> Fields:
    def get(key: str) -> Any:
        if key.startswith("TXXX:"):
            want = key[5:].lower()
            for frame in tags.getall("TXXX"):
                if frame.desc.lower() == want:
                    return frame
            return None
        return tags.get(key)

    fields = _by_keys(get, _ID3)
    return fields


def _mp4(tags: Any) -> Fields:
    def get(key: str) -> Any:
        value = tags.get(key)
        if key in ("trkn", "disk") and value:
            n, total = value[0]
            return [f"{n}/{total}" if total else str(n)]
        return value

    return _by_keys(get, _MP4)


def _asf(tags: Any) -> Fields:
    return _by_keys(lambda k: [str(v) for v in tags[k]] if k in tags else None, _ASF)


# mutagen tag class -> reader; the first class the tags are an instance of wins.
TAG_READERS: list[tuple[type, Callable[[Any], Fields]]] = [
    (ID3, _id3),
    (MP4Tags, _mp4),
    (ASFTags, _asf),
    (APEv2, _ape),
    (VComment, _vorbis),
]

# mutagen file class name -> (container, codec)
CODECS: dict[str, tuple[str, str]] = {
    "FLAC": ("flac", "flac"), "OggFLAC": ("ogg", "flac"), "OggVorbis": ("ogg", "vorbis"),
    "OggOpus": ("ogg", "opus"), "OggSpeex": ("ogg", "speex"), "OggTheora": ("ogg", "theora"),
    "MP3": ("mp3", "mp3"), "EasyMP3": ("mp3", "mp3"), "MP4": ("mp4", "aac"),
    "ASF": ("asf", "wma"), "AIFF": ("aiff", "pcm"), "WAVE": ("wav", "pcm"),
    "MonkeysAudio": ("ape", "ape"), "WavPack": ("wavpack", "wavpack"),
    "Musepack": ("mpc", "musepack"), "TrueAudio": ("tta", "tta"), "TAK": ("tak", "tak"),
    "OptimFROG": ("ofr", "optimfrog"), "DSF": ("dsf", "dsd"), "DSDIFF": ("dff", "dsd"),
    "AAC": ("aac", "aac"), "AC3": ("ac3", "ac3"), "SMF": ("midi", "midi"),
    "APEv2File": ("apev2", "unknown"),
}


@dataclass(slots=True)
class _Tags:
    fields: Fields = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def first(self, name: str) -> str | None:
        values = self.fields.get(name) or []
        for v in values:
            if v.strip():
                return v.strip()
        return None


def read_tags(audio: Any) -> _Tags:
    """Canonical fields of a mutagen file's tags (empty if it has none)."""
    tags = audio.tags
    out = _Tags()
    if tags is None:
        return out
    for cls, reader in TAG_READERS:
        if isinstance(tags, cls):
            out.fields = reader(tags)
            break
    return out


def _date(raw: str | None, present: bool, problems: list[str]) -> str | None:
    if raw is None:
        if present:
            problems.append("tag date: present but empty or not a date")
        return None
    m = _DATE.match(raw.strip())
    if not m:
        problems.append(f"tag date: unparseable value {raw!r}")
        return None
    y, mo, d = m.groups()
    return y + (f"-{int(mo):02d}" if mo else "") + (f"-{int(d):02d}" if mo and d else "")


def _number(raw: str | None, name: str, problems: list[str]) -> int | None:
    if raw is None:
        return None
    m = _NUMBER.match(raw)
    if not m:
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        problems.append(f"tag {name}: unparseable value {shown!r}")
        return None
    digits = m.group(1).lstrip("0") or "0"
    if len(digits) > _NUMBER_DIGITS:
        problems.append(f"tag {name}: a {len(digits):,}-digit number is out of range")
        return None
    return int(digits)


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def _mbid(raw: str | None, name: str, problems: list[str]) -> str | None:
    if raw is None:
        return None
    v = raw.strip().lower()
    if not _MBID.match(v):
        problems.append(f"tag {name}: not a MusicBrainz id {raw!r}")
        return None
    return v


def _undecodable(fields: Fields, problems: list[str]) -> None:
    """Report values mutagen decoded with U+FFFD in place of bytes that were not UTF-8.

    The value is kept (with the replacement characters): the rest of it is still
    the best text the file offers, but the catalogue should know it is damaged.
    """
    for name, values in fields.items():
        if any("\ufffd" in v for v in values):
            problems.append(f"tag {name}: not valid UTF-8 (bad bytes stored as U+FFFD)")


def describe(path: str, audio: Any, size: int, mtime_ns: int) -> tuple[SourceAudio, list[str]]:
    """A SourceAudio (with fallback records) for one parsed file, and tag problems found."""
    t = read_tags(audio)
    problems = t.problems
    _undecodable(t.fields, problems)
    info = audio.info
    container, codec = CODECS.get(type(audio).__name__, (type(audio).__name__.lower(), ""))
    if type(audio).__name__ == "MP4":
        codec = str(getattr(info, "codec", "") or "").split(".")[0] or "aac"
        codec = {"mp4a": "aac"}.get(codec, codec)
    elif type(audio).__name__ == "AC3":
        codec = str(getattr(info, "codec", "ac-3"))
    prov = Provenance(path, "tags", None)
    rec_mbid = _mbid(t.first("recording_mbid"), "MUSICBRAINZ_TRACKID", problems)
    rel_mbid = _mbid(t.first("release_mbid"), "MUSICBRAINZ_ALBUMID", problems)
    isrcs: list[str] = []
    fallback: list[Artist | Release | Track | TrackISRC] = []
    for raw in t.fields.get("isrc", []):
        for part in re.split(r"[;,/]", raw):
            if not part.strip():
                continue
            try:
                code = isrc_mod.parse(part)
            except InvalidISRC as exc:
                problems.append(f"tag ISRC: {exc}")
                continue
            if code.code not in isrcs:
                isrcs.append(code.code)
    artist_names = t.fields.get("artists") or t.fields.get("artist") or []
    artist_mbids = [
        m for m in (_mbid(v, "MUSICBRAINZ_ARTISTID", problems)
                    for raw in t.fields.get("artist_mbid", []) for v in raw.split(";"))
        if m
    ]
    artist_keys: list[str] = []
    for i, name in enumerate(artist_names):
        mbid = artist_mbids[i] if i < len(artist_mbids) and len(artist_mbids) == len(
            artist_names) else (artist_mbids[0] if len(artist_names) == 1 and artist_mbids
                                else None)
        key = mbid or f"tags:{_sha1('artist:' + name.strip().casefold())}"
        if key not in artist_keys:
            artist_keys.append(key)
            fallback.append(Artist(key, name.strip(), mbid=mbid, prov=prov))
    album = t.first("album")
    release_key = None
    date = _date(t.first("date"), "date" in t.fields, problems)
    if album or rel_mbid:
        albumartist = t.first("albumartist") or t.first("artist") or ""
        release_key = rel_mbid or f"tags:{_sha1('release:' + albumartist + chr(0) + (album or ''))}"
        fallback.append(Release(release_key, album or "", mbid=rel_mbid, date=date,
                                label=t.first("label"), artist_credit=albumartist or None,
                                prov=prov))
    duration = getattr(info, "length", None)
    duration_ms = int(round(duration * 1000)) if duration and duration > 0 else None
    track_key = rec_mbid or f"tags:{_sha1(path)}"
    title = t.first("title") or Path(path).stem
    credit = t.first("artist") or (" / ".join(artist_names) if artist_names else None)
    fallback.append(Track(
        track_key, title, mbid=rec_mbid, artist_credit=credit, artist_keys=tuple(artist_keys),
        release_key=release_key,
        disc=_number(t.first("disc"), "disc number", problems),
        position=_number(t.first("track"), "track number", problems),
        duration_ms=duration_ms, prov=prov,
    ))
    fallback.extend(TrackISRC(track_key, code, known_country=isrc_mod.parse(code).known_country,
                              prov=prov) for code in isrcs)
    bitrate = getattr(info, "bitrate", None)
    sample_rate = getattr(info, "sample_rate", None)
    if codec == "opus" and not sample_rate:
        sample_rate = 48_000  # Opus always decodes at 48 kHz; mutagen does not say so
    channels = getattr(info, "channels", None)
    audio_rec = SourceAudio(
        path, size, mtime_ns, codec=codec or None, container=container,
        bitrate=int(bitrate) if bitrate else None, duration_ms=duration_ms,
        sample_rate=int(sample_rate) if sample_rate else None,
        channels=int(channels) if channels and not isinstance(channels, bool) else (
            1 if channels is True else None),
        mbid=rec_mbid, isrcs=tuple(isrcs), fallback=tuple(fallback), prov=prov,
    )
    return audio_rec, problems


def walk(root: Path) -> Iterator[tuple[str, os.stat_result | OSError | str]]:
    """Every entry under ``root`` but folders, in sorted order: a regular file (a symbolic
    link to one being that file) with its stat, one that cannot be looked at with its
    error, and what is not read (a broken link, a loop, a link to a folder, which is not
    walked into, a pipe or device) with the reason, :func:`found_entry`'s rule."""
    if not root.is_dir():
        try:
            yield str(root), root.stat()
        except OSError as exc:
            yield str(root), exc
        return
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            yield folder, exc
            continue
        subdirs = []
        for e in entries:
            try:
                st, problem = found_entry(e.path)
            except OSError as exc:
                yield e.path, exc
                continue
            if st is None:
                subdirs.append(e.path)
            else:
                yield e.path, st if problem is None else problem
        stack.extend(reversed(subdirs))


class AudioTags:
    """The ``tags`` source."""

    kind = KIND
    licence: str | None = None
    resumable = False  # files already attached unchanged are skipped instead
    # A folder's size and mtime do not change when files deep inside it do, so a
    # finished folder is walked again every run (unchanged files are not reopened).
    always_rescan = True
    ingest_order = 2
    # Each record costs opening an audio file: commit (and checkpoint) every 2,000
    # files, so a killed run redoes little and progress moves, whatever --batch-size.
    max_batch = 2_000

    def score(self, path: Path, header: bytes) -> int:
        return 1 if path.is_dir() else 0  # any folder: walked for audio files

    def inputs(self, paths: Sequence[Path]) -> list[Input]:
        out = []
        for p in paths:
            try:
                st = p.stat()
            except OSError as exc:
                raise InputError(printable(p), exc.strerror or str(exc)) from exc
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                raise InputError(printable(p), "not a folder or a regular file")
            absolute = Path(os.path.abspath(p))
            out.append(Input(absolute, printable(absolute), st.st_size, st.st_mtime_ns, None))
        return out

    def read(
        self, item: Input, options: ReadOptions, start: int = 0, line: int = 0
    ) -> Iterator[Record]:
        n = 0
        for path, st in walk(item.path):
            shown = printable(path)
            if isinstance(st, OSError):
                yield reject(shown, "file", f"cannot read: {st.strerror or st}")
                continue
            if isinstance(st, str):
                yield reject(shown, "file", st)
                continue
            if not stat.S_ISREG(st.st_mode):  # the input itself, changed since it was given
                yield reject(shown, "file", "not a regular file (a pipe or device): not read")
                continue
            suffix = os.path.splitext(path)[1].lower()
            if suffix in SKIP_SUFFIXES:
                continue
            n += 1
            if not is_printable_utf8(path):
                yield reject(shown, "file name", "file name is not valid UTF-8; rename the file")
                continue
            if options.known is not None and options.known(path, st.st_size, st.st_mtime_ns):
                continue
            if st.st_size == 0:
                yield reject(shown, "file", "empty file (0 bytes)")
                continue
            try:
                audio = mutagen.File(path)
            except PermissionError as exc:
                yield reject(shown, "file", f"cannot read: {exc.strerror}")
                continue
            except OSError as exc:
                yield reject(shown, "file", f"cannot read: {exc.strerror or exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - mutagen raises many kinds on bad input
                cause = exc.__cause__  # mutagen wraps a failed open (EACCES, EIO) in its error
                if isinstance(exc, mutagen.MutagenError) and isinstance(cause, OSError):
                    yield reject(shown, "file", f"cannot read: {cause.strerror or cause}")
                else:
                    yield reject(shown, "file",
                                 f"unparseable audio: {type(exc).__name__}: {exc}")
                continue
            if audio is None:
                if suffix in AUDIO_SUFFIXES:
                    yield reject(shown, "file", "not a recognised audio file (no known header)")
                continue  # a README or the like: not ours to judge
            try:
                record, problems = describe(path, audio, st.st_size, st.st_mtime_ns)
            except Exception as exc:  # noqa: BLE001 - a tag shape we did not foresee
                yield reject(shown, "tags", f"unreadable tags: {type(exc).__name__}: {exc}")
                continue
            for problem in problems:
                yield reject(shown, problem.split(":", 1)[0], problem, kept=True)
            yield record
            if n % CHECKPOINT_EVERY == 0:
                yield checkpoint(item, KIND, 0, n)
        yield checkpoint(item, KIND, 0, n, done=True)


SOURCE = AudioTags()
