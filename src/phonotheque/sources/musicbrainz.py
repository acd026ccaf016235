"""MusicBrainz JSON dumps: one entity per line, the web service's JSON.

Reads release objects (media -> tracks -> recording with ``isrcs``), recording
objects (``isrcs`` + ``artist-credit``) and artist objects, from

* ``.jsonl`` files and ``.json`` files holding one object per line, or one
  (pretty-printed) object or array of objects;
* the published ``.tar.xz`` archives, streamed (``tarfile`` ``r|*``) without
  unpacking: entities come from the ``mbdump/<entity>`` members (one that is a link
  is read as the file it names in the archive, after the others; one leading
  outside it, to nothing, in a loop, or a folder is a reject: :func:`archive_entities`);
* any of the line files compressed: ``.jsonl.zst`` (what ``phono synth`` writes
  at scale), ``.jsonl.gz``, ``.json.bz2``, ``.ndjson.xz``, decompressed as read.

Keys are accepted hyphenated (``artist-credit``, the web service and dumps) and
with underscores (``artist_credit``, as python-musicbrainzngs-style clients and
beets store them). MusicBrainz data is CC0, so every record carries that licence.

Resuming: line files resume at the byte offset of the last checkpoint; archives
and compressed line files are decompressed again from the start but lines (bytes)
before the checkpoint, which counts uncompressed bytes, are skipped without
parsing; a compressed file that ends early or is corrupt keeps the lines before
the break and gets one reject saying where it broke; single JSON documents are read again whole (writes are
idempotent upserts, so nothing is counted twice).
"""

from __future__ import annotations

import lzma
import math
import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from phonotheque import isrc as isrc_mod
from phonotheque.errors import InvalidISRC, wrap_os_error
from phonotheque.model import Artist, Provenance, Record, Reject, Release, Track, TrackISRC
from phonotheque.sources._base import (
    CHECKPOINT_EVERY,
    MAX_LINE,
    CorruptStream,
    DiskPosition,
    Input,
    ReadOptions,
    archive_members,
    bounded_lines,
    checkpoint,
    expand_files,
    lines_on_disk,
    open_input,
    printable,
    reject,
    too_long,
    without_compression,
)

KIND = "musicbrainz"
LICENCE = "CC0-1.0"
_LINE_FILES = (".json", ".jsonl", ".ndjson")
_COMPRESSED_LINE_FILES = tuple(s + c for s in _LINE_FILES for c in (".zst", ".gz", ".bz2", ".xz"))
SUFFIXES = (*_LINE_FILES, ".tar.xz", ".txz", ".tar", ".tar.gz", ".tar.bz2",
            *_COMPRESSED_LINE_FILES)
Layout = Literal["archive", "document", "lines"]
_ARCHIVE = (".tar.xz", ".txz", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2")
_MBID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MBID_FAST = _MBID.fullmatch
_ENTITIES = ("release", "recording", "artist")
# Keys only a release has, for releases fetched without their media.
_RELEASE_ONLY = ("barcode", "release-events", "release_events", "text-representation",
                 "text_representation", "label-info", "label_info")


def _get(obj: dict[str, Any], key: str) -> Any:
    """``obj[key]`` with the key hyphenated or with underscores (beets stores the latter)."""
    value = obj.get(key)
    if value is None and "-" in key:
        value = obj.get(key.replace("-", "_"))
    return value


def _mbid(value: Any) -> str | None:
    if type(value) is str:
        if _MBID_FAST(value):  # already normal: the dumps' case
            return value
        v = value.strip().lower()
        if _MBID_FAST(v):
            return v
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    s = (value if type(value) is str else str(value)).strip()
    return s or None


def _length(value: Any) -> int | None:
    """A positive length in ms as an int (range checked by :mod:`.bounds`), else None."""
    if type(value) is float and math.isfinite(value) and value > 0:
        return int(value)
    if type(value) is int and value > 0:
        return value
    return None


class _Missing(ValueError):
    """An entity lacks a key we need; becomes a reject naming the key."""


def entity_kind(obj: dict[str, Any]) -> str | None:
    """Guess the entity type of a web-service object read from a plain file."""
    if "media" in obj or any(k in obj for k in _RELEASE_ONLY):
        return "release"
    if "recording" in obj and "position" in obj:
        return None  # a single track of a release, not a dump entity
    if "title" in obj and ("length" in obj or "video" in obj or "isrcs" in obj):
        return "recording"
    if "name" in obj and _get(obj, "sort-name") is not None and "title" not in obj:
        return "artist"
    return None


class _Parser:
    """Turns one entity into records; holds what every record of a file shares."""

    def __init__(self, file_name: str, reject_source: str) -> None:
        self.file_name = file_name
        self.reject_source = reject_source
        self._last_credits: Any = None
        self._last_out: list[Record] | None = None
        self._last_result: tuple[str | None, tuple[str, ...]] = (None, ())
        self._last_artists: list[Record] = []

    def entity(self, obj: Any, kind: str | None, locator: str) -> list[Record]:
        if not isinstance(obj, dict):
            return [reject(self.reject_source, locator,
                           f"not a JSON object (got {type(obj).__name__})")]
        kind = kind or entity_kind(obj)
        prov = Provenance(self.file_name, locator, LICENCE)
        out: list[Record] = []
        try:
            if kind == "release":
                self._release(obj, prov, out)
            elif kind == "recording":
                self._recording(obj, prov, out, None)
            elif kind == "artist":
                self._artist_entity(obj, prov, out)
            else:
                keys = ", ".join(sorted(obj)[:8])
                return [reject(self.reject_source, locator,
                               f"not a MusicBrainz release, recording or artist (keys: {keys})")]
        except _Missing as exc:
            return [reject(self.reject_source, locator, str(exc))]
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            return [reject(self.reject_source, locator,
                           f"malformed {kind}: {type(exc).__name__}: {exc}")]
        return out

    # -- entities -------------------------------------------------------------

    def _artist_entity(self, obj: dict[str, Any], prov: Provenance, out: list[Record]) -> None:
        mbid = _mbid(obj.get("id"))
        if mbid is None:
            raise _Missing(f"artist: missing or invalid key 'id' ({obj.get('id')!r})")
        name = _text(obj.get("name"))
        if name is None:
            raise _Missing(f"artist {mbid}: missing key 'name'")
        out.append(Artist(mbid, name, mbid=mbid, sort_name=_text(_get(obj, "sort-name")),
                          prov=prov))

    def _credit(
        self, credits: Any, prov: Provenance, out: list[Record]
    ) -> tuple[str | None, tuple[str, ...]]:
        """Artist records for a credit; return the credit as text and the artist keys.

        Every credit gives its artists' records, also one that repeats the credit before
        it: ``read`` counts each artist of each release's and track's own credit
        (README, docs/cli.md), as the columnar path stages them.
        """
        if not credits or not isinstance(credits, list):
            return None, ()
        # A release and its recordings usually share one credit: convert it once per
        # entity and give the same records again (the same values and provenance, so the
        # catalogue is the same either way; only ``read`` counts them).
        if credits == self._last_credits and out is self._last_out:
            out.extend(self._last_artists)
            return self._last_result
        before = len(out)
        result = self._convert_credit(credits, prov, out)
        self._last_credits, self._last_out, self._last_result = credits, out, result
        self._last_artists = out[before:]
        return result

    def _convert_credit(
        self, credits: list[Any], prov: Provenance, out: list[Record]
    ) -> tuple[str | None, tuple[str, ...]]:
        text = []
        keys: list[str] = []
        for c in credits:
            if isinstance(c, str):  # some clients flatten join phrases into the list
                text.append(c)
                continue
            artist = c.get("artist") or {}
            name = _text(c.get("name")) or _text(artist.get("name"))
            text.append((name or "") + (c.get("joinphrase") or ""))
            mbid = _mbid(artist.get("id"))
            artist_name = _text(artist.get("name")) or name
            if mbid and artist_name and mbid not in keys:
                keys.append(mbid)
                out.append(Artist(mbid, artist_name, mbid=mbid,
                                  sort_name=_text(_get(artist, "sort-name")), prov=prov))
        credit = "".join(text).strip() or None
        return credit, tuple(keys)

    def _release(self, obj: dict[str, Any], prov: Provenance, out: list[Record]) -> None:
        mbid = _mbid(obj.get("id"))
        if mbid is None:
            raise _Missing(f"release: missing or invalid key 'id' ({obj.get('id')!r})")
        title = _text(obj.get("title"))
        if title is None:
            raise _Missing(f"release {mbid}: missing key 'title'")
        credit, artist_keys = self._credit(_get(obj, "artist-credit"), prov, out)
        label = None
        for info in _get(obj, "label-info") or ():
            label = _text(((info or {}).get("label") or {}).get("name"))
            if label:
                break
        out.append(Release(mbid, title, mbid=mbid, date=_text(obj.get("date")), label=label,
                           barcode=_text(obj.get("barcode")), artist_credit=credit, prov=prov))
        for m_index, medium in enumerate(obj.get("media") or (), start=1):
            disc = medium.get("position") or m_index
            tracks = list(medium.get("tracks") or ())
            pregap = medium.get("pregap")
            if isinstance(pregap, dict):
                tracks.insert(0, pregap)
            for t_index, track in enumerate(tracks, start=1):
                rec = track.get("recording")
                where = f"release {mbid} medium {disc} track {track.get('position', t_index)}"
                if not isinstance(rec, dict) or _mbid(rec.get("id")) is None:
                    out.append(reject(self.reject_source, prov.locator,
                                      f"{where}: missing or invalid recording id"))
                    continue
                placement = (mbid, disc, track.get("position", t_index), track)
                self._recording(rec, prov, out, placement, credit, artist_keys)

    def _recording(
        self,
        rec: dict[str, Any],
        prov: Provenance,
        out: list[Record],
        placement: tuple[str, int, int, dict[str, Any]] | None,
        release_credit: str | None = None,
        release_artists: tuple[str, ...] = (),
    ) -> None:
        mbid = _mbid(rec.get("id"))
        if mbid is None:
            raise _Missing(f"recording: missing or invalid key 'id' ({rec.get('id')!r})")
        track = placement[3] if placement else {}
        title = _text(rec.get("title")) or _text(track.get("title"))
        if title is None:
            raise _Missing(f"recording {mbid}: missing key 'title'")
        credits = _get(rec, "artist-credit") or _get(track, "artist-credit")
        credit, artist_keys = self._credit(credits, prov, out)
        if credit is None:
            credit, artist_keys = release_credit, release_artists
        length = rec.get("length") or track.get("length")
        out.append(Track(
            mbid, title, mbid=mbid, artist_credit=credit, artist_keys=artist_keys,
            release_key=placement[0] if placement else None,
            disc=placement[1] if placement else None,
            position=placement[2] if placement else None,
            duration_ms=_length(length),
            prov=prov,
        ))
        for raw in rec.get("isrcs") or ():
            try:
                code = isrc_mod.parse(raw)
            except InvalidISRC as exc:
                out.append(reject(self.reject_source, prov.locator, f"recording {mbid}: {exc}"))
                continue
            out.append(TrackISRC(mbid, code.code, known_country=code.known_country, prov=prov))


class MusicBrainzJSON:
    """The ``musicbrainz`` source."""

    kind = KIND
    licence: str | None = LICENCE
    resumable = True
    always_rescan = False
    ingest_order = 0  # catalogue sources first: listens and tags resolve against them
    max_batch: int | None = None

    def score(self, path: Path, header: bytes) -> int:
        # JSON dump lines, unless ListenBrainz's markers make listens the better claim
        if path.name.lower().endswith(_LINE_FILES + _COMPRESSED_LINE_FILES):
            return 1
        return 2 if path.name.lower().endswith((".tar.xz", ".txz", ".tar")) else 0

    def inputs(self, paths: Sequence[Path]) -> list[Input]:
        # Progress counts bytes of the files on disk: a compressed file's or an archive's
        # checkpoints say how far into it they reach (``Checkpoint.disk``), as offsets
        # count uncompressed bytes.
        return expand_files(paths, SUFFIXES)

    def layout(self, path: Path) -> Layout:
        """How :meth:`read` reads ``path``: a tar archive of ``mbdump/<entity>`` members,
        one JSON document (or array), or JSON Lines (plain or compressed)."""
        name = path.name.lower()
        if name.endswith(_ARCHIVE):
            return "archive"
        if without_compression(name).endswith(".json") and not _first_line_is_object(path):
            return "document"
        return "lines"

    def read(
        self, item: Input, options: ReadOptions, start: int = 0, line: int = 0
    ) -> Iterator[Record]:
        parser = _Parser(printable(item.path.name), item.source)
        layout = self.layout(item.path)
        if layout == "archive":
            yield from self._archive(item, parser, start)
        elif layout == "document":
            yield from self._document(item, parser)
        else:
            yield from self._lines(item, parser, start, line)

    # -- layouts --------------------------------------------------------------

    def _lines(self, item: Input, parser: _Parser, start: int, line: int) -> Iterator[Record]:
        pos, n = start, line
        before = start
        try:
            with lines_on_disk(item.path, start, line) as (numbered, disk):
                for n, pos, raw in numbered:
                    yield from _line(item, parser, n, raw, pos - before)
                    before = pos
                    if n % CHECKPOINT_EVERY == 0:
                        yield checkpoint(item, KIND, pos, n, disk=disk())
        except CorruptStream as exc:
            # A compressed file ends early or is corrupt: keep the lines before, say where.
            yield reject(item.source, f"after line {n} (uncompressed byte {pos:,})", exc.problem)
        yield checkpoint(item, KIND, pos, n, done=True)

    def parse_lines(self, item: Input, numbered: Iterable[tuple[int, bytes]],
                    member: str | None = None,
                    base: int = 0) -> Iterator[tuple[int, list[Record]]]:
        """``(line number, its records)`` for lines of a JSON Lines input the caller
        has read already (raw, with their newline), exactly as :meth:`read` gives them
        (the columnar path reads the other lines set-based and hands these over).
        ``member``: the lines are from that member of an archive, line ``n`` being its
        line ``n - base`` (read as :meth:`read` reads an archive's lines)."""
        parser = _Parser(printable(item.path.name), item.source)
        entity = None if member is None else member_entity(member)
        for n, raw in numbered:
            line = raw if len(raw) <= MAX_LINE else None
            if member is None:
                yield n, list(_line(item, parser, n, line, len(raw)))
            else:
                yield n, list(_member_line(item, parser, entity, f"{member}:line {n - base}",
                                           line, len(raw)))

    def _document(self, item: Input, parser: _Parser) -> Iterator[Record]:
        try:
            with open_input(item.path) as f:
                data = f.read()
        except CorruptStream as exc:
            yield reject(item.source, "document", exc.problem)
            yield checkpoint(item, KIND, item.size, 0, done=True)
            return
        except OSError as exc:
            raise wrap_os_error(exc, item.source) from exc
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            yield reject(item.source, f"line {exc.lineno}", f"malformed JSON: {exc.msg}")
        else:
            objs = doc if isinstance(doc, list) else [doc]
            for i, obj in enumerate(objs, start=1):
                yield from parser.entity(obj, None, "document" if len(objs) == 1 else f"item {i}")
        yield checkpoint(item, KIND, item.size, 0, done=True)

    def _archive(self, item: Input, parser: _Parser, start: int) -> Iterator[Record]:
        """Stream ``mbdump/<entity>`` members; offsets count uncompressed bytes of their
        lines, lines count the lines of all of them."""
        pos = total_lines = n = 0
        name: str | None = None  # the member being read
        try:
            for entity, member, f, disk in archive_entities(item.path, item.source):
                if isinstance(f, Reject):  # a link to nothing, a folder...: said, not read
                    yield f
                    continue
                name, n = member.name, 0
                for raw, length in bounded_lines(f):
                    n += 1
                    total_lines += 1
                    pos += length
                    if pos <= start:
                        continue  # already written by the run that was interrupted
                    yield from _member_line(item, parser, entity, f"{name}:line {n}",
                                            raw, length)
                    if total_lines % CHECKPOINT_EVERY == 0:
                        yield checkpoint(item, KIND, pos, total_lines, disk=disk.tell())
        except ARCHIVE_ERRORS as exc:
            yield archive_broken(item, name, n, exc)
        yield checkpoint(item, KIND, pos, total_lines, done=True)


#: What reading a truncated or corrupt archive raises.
ARCHIVE_ERRORS = (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError)


def archive_broken(item: Input, member: str | None, n: int, exc: Exception) -> Reject:
    """The reject of an archive that breaks after line ``n`` of ``member`` (the lines
    before are kept): it says where it broke."""
    where = "archive" if member is None else f"{member}:line {n}" if n else f"{member}:start"
    return reject(item.source, f"after {where}",
                  f"truncated or corrupt archive: {type(exc).__name__}: {exc}")


def member_entity(name: str) -> str | None:
    """The entity the archive member ``name`` holds (``mbdump/release``: release), or
    None for a member that is not read."""
    entity = name.rsplit("/", 1)[-1]
    return entity if entity in _ENTITIES else None


def archive_entities(path: Path, reject_source: str
                     ) -> Iterator[tuple[str, tarfile.TarInfo, IO[bytes] | Reject, DiskPosition]]:
    """The members of the dump archive ``path`` read (``mbdump/<entity>``, by
    :func:`member_entity`): ``(entity, the member, its bytes or the reject saying why
    they cannot be read, the archive's disk position)``. A member that is a link is read
    as the file it names in the archive, after the others; one leading outside it, to
    nothing, in a loop, or a member of another kind (a folder) is a reject naming it
    (:func:`~phonotheque.sources._base.archive_members`, as the mbdump reader's tables).
    Both engines read this."""
    return archive_members(path, reject_source, member_entity, "its lines are not read")


def _member_line(item: Input, parser: _Parser, entity: str | None, locator: str,
                 raw: bytes | None, length: int) -> Iterator[Record]:
    """The records of one line of an archive member (``raw`` None: longer than the limit)."""
    if raw is None:
        yield reject(item.source, locator, too_long(length))
    elif not raw.isspace():
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield reject(item.source, locator, f"malformed JSON: {exc}")
        else:
            yield from parser.entity(obj, entity, locator)


def _line(item: Input, parser: _Parser, n: int, raw: bytes | None,
          length: int) -> Iterator[Record]:
    """The records of line ``n`` (``raw`` None: longer than the limit)."""
    locator = f"line {n}"
    if raw is None:
        yield reject(item.source, locator, too_long(length))
    elif not raw.isspace():
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            why = f"malformed JSON: {exc}"
            if not raw.endswith(b"\n"):
                why = f"truncated line (no newline at end of file); {why}"
            yield reject(item.source, locator, why)
        else:
            yield from parser.entity(obj, None, locator)


def _first_line_is_object(path: Path) -> bool:
    """True if the file's first non-blank line is a whole JSON object (JSON Lines layout)."""
    try:
        with open_input(path) as f:
            for raw, _ in bounded_lines(f):
                if raw is None:
                    return True  # a line too long for a document's first line
                if raw.strip():
                    try:
                        return isinstance(orjson.loads(raw), dict)
                    except orjson.JSONDecodeError:
                        return False
    except CorruptStream:
        return True  # read it line by line: the lines before the break are kept
    except OSError as exc:
        raise wrap_os_error(exc, printable(path)) from exc
    return True


SOURCE = MusicBrainzJSON()
