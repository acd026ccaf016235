"""Album art: find one front image per archived release and pack them into a tar.

Where art comes from, first match wins:
1. ``release.art_path`` (set by ingest; relative paths are relative to the workspace);
2. an ``--art DIR`` folder: ``DIR/<release mbid>.<ext>`` or ``DIR/<release mbid>/<image>``;
3. an image beside the release's source audio (``cover.jpg``, ``folder.png``, ``front.*``...);
4. the front-cover picture embedded in the source audio's tags (read with mutagen).

Every candidate is checked by its magic bytes (JPEG, PNG, GIF, WebP) and size;
anything else becomes a reject and the next source is tried.

The tar is deterministic: members sorted, fixed mtime/uid/gid/mode, no owner
names, ustar format; images are stored once by content as
``<first two hex digits of sha256>/<sha256>.<ext>``, and an ``index.jsonl`` at
the top says which release uses which image.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from phonotheque.atomic import atomic_write
from phonotheque.errors import IntegrityError
from phonotheque.images import sniff_image
from phonotheque.model import Reject

MAX_IMAGE_BYTES = 64 * 2**20
_BESIDE_NAMES = ("cover", "folder", "front", "album", "albumart", "albumartsmall")
_EXT_BY_MIME = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")
TAR_MTIME = 0  # 1970-01-01: the tar's bytes must not depend on when it was built


@dataclass(frozen=True, slots=True)
class Image:
    """An image found for a release; its bytes are read again only when the tar is written."""

    sha256: str
    mime: str
    size: int
    path: str  # the image file, or the audio file it is embedded in
    embedded: bool = False

    @property
    def member(self) -> str:
        return f"{self.sha256[:2]}/{self.sha256}.{_EXT_BY_MIME[self.mime]}"

    def read(self) -> bytes:
        data = _embedded_bytes(Path(self.path)) if self.embedded else Path(self.path).read_bytes()
        if data is None or hashlib.sha256(data).hexdigest() != self.sha256:
            raise IntegrityError(self.path, "album art changed while packing; re-run `phono pack`")
        return data


@dataclass(frozen=True, slots=True)
class ReleaseArt:
    release_id: int
    release_mbid: str | None
    image: Image
    origin: str  # art_path | art_dir | beside_audio | embedded


@dataclass(frozen=True, slots=True)
class ReleaseSources:
    """What the finder may look at for one release."""

    release_id: int
    mbid: str | None
    art_path: str | None
    audio_paths: tuple[str, ...]


def _image(data: bytes, path: Path, embedded: bool = False) -> Image | None:
    mime = sniff_image(data[:16])
    if mime is None:
        return None
    return Image(hashlib.sha256(data).hexdigest(), mime, len(data), str(path), embedded)


class ArtFinder:
    """Finds release art; collects rejects for candidates that are not usable images."""

    def __init__(self, workspace_root: Path, art_dir: Path | None = None) -> None:
        self.root = workspace_root
        self.art_dir = art_dir
        self.rejects: list[Reject] = []
        self._dir_cache: dict[Path, list[Path]] = {}

    def _reject(self, path: Path | str, reason: str) -> None:
        self.rejects.append(Reject("pack", str(path), "art", reason))

    def _load(self, path: Path) -> Image | None:
        try:
            size = path.stat().st_size
            if size > MAX_IMAGE_BYTES:
                self._reject(path, f"image too large ({size} bytes, at most {MAX_IMAGE_BYTES})")
                return None
            data = path.read_bytes()
        except OSError as exc:
            self._reject(path, f"cannot read art: {exc.strerror or exc}")
            return None
        img = _image(data, path)
        if img is None:
            self._reject(path, "not a JPEG, PNG, GIF or WebP image")
        return img

    def _listing(self, folder: Path) -> list[Path]:
        if folder not in self._dir_cache:
            try:
                self._dir_cache[folder] = sorted(p for p in folder.iterdir() if p.is_file())
            except OSError:
                self._dir_cache[folder] = []
        return self._dir_cache[folder]

    def find(self, rel: ReleaseSources) -> ReleaseArt | None:
        for origin, candidates in (
            ("art_path", self._from_art_path(rel)),
            ("art_dir", self._from_art_dir(rel)),
            ("beside_audio", self._beside_audio(rel)),
        ):
            for path in candidates:
                img = self._load(path)
                if img is not None:
                    return ReleaseArt(rel.release_id, rel.mbid, img, origin)
        for audio in rel.audio_paths:
            data = _embedded_bytes(Path(audio))
            img = _image(data, Path(audio), embedded=True) if data else None
            if img is not None:
                return ReleaseArt(rel.release_id, rel.mbid, img, "embedded")
        return None

    def _from_art_path(self, rel: ReleaseSources) -> list[Path]:
        if not rel.art_path:
            return []
        p = Path(rel.art_path)
        p = p if p.is_absolute() else self.root / p
        if not p.is_file():
            self._reject(p, "release art_path does not exist")
            return []
        return [p]

    def _from_art_dir(self, rel: ReleaseSources) -> list[Path]:
        if self.art_dir is None or not rel.mbid:
            return []
        found = [p for p in self._listing(self.art_dir)
                 if p.stem.lower() == rel.mbid and p.suffix.lower() in _IMAGE_SUFFIXES]
        sub = self.art_dir / rel.mbid
        if sub.is_dir():
            images = [p for p in self._listing(sub) if p.suffix.lower() in _IMAGE_SUFFIXES]
            found += sorted(images, key=lambda p: (p.stem.lower() not in _BESIDE_NAMES, p.name))
        return found

    def _beside_audio(self, rel: ReleaseSources) -> list[Path]:
        out: list[Path] = []
        for folder in sorted({Path(a).parent for a in rel.audio_paths}):
            for p in self._listing(folder):
                if p.suffix.lower() in _IMAGE_SUFFIXES and p.stem.lower() in _BESIDE_NAMES:
                    out.append(p)
        return sorted(out, key=lambda p: (_BESIDE_NAMES.index(p.stem.lower()), str(p)))


def _embedded_bytes(path: Path) -> bytes | None:
    """The front cover (or else the first picture) in the file's tags, if it is an image."""
    try:
        import mutagen

        f = mutagen.File(path)
    except Exception:  # noqa: BLE001 - unreadable tags are the audio stage's concern
        return None
    if f is None:
        return None
    pictures: list[tuple[int, bytes]] = []
    for pic in getattr(f, "pictures", None) or []:  # FLAC
        pictures.append((pic.type, pic.data))
    tags = f.tags
    if tags is not None:
        try:
            for key in list(tags.keys()):
                if str(key).startswith("APIC"):  # ID3
                    frame = tags[key]
                    pictures.append((int(frame.type), frame.data))
            getter = getattr(tags, "get", None)
            if getter is not None:
                for cover in getter("covr") or []:  # MP4
                    pictures.append((3, bytes(cover)))
                for b64 in getter("metadata_block_picture") or []:  # Ogg
                    pictures.append(_vorbis_picture(b64))
        except Exception:  # noqa: BLE001 - odd tag containers: no embedded art
            pass
    pictures.sort(key=lambda tp: tp[0] != 3)  # front cover (type 3) first
    for _, data in pictures:
        if data and len(data) <= MAX_IMAGE_BYTES and sniff_image(data[:16]):
            return bytes(data)
    return None


def _vorbis_picture(b64: str) -> tuple[int, bytes]:
    import base64

    from mutagen.flac import Picture

    try:
        pic = Picture(base64.b64decode(b64))
    except Exception:  # noqa: BLE001
        return (99, b"")
    return (pic.type, pic.data)


def find_art(
    releases: Iterable[ReleaseSources], workspace_root: Path, art_dir: Path | None = None
) -> tuple[list[ReleaseArt], list[Reject]]:
    finder = ArtFinder(workspace_root, art_dir)
    found = [a for a in (finder.find(r) for r in releases) if a is not None]
    return found, finder.rejects


def index_lines(arts: list[ReleaseArt]) -> bytes:
    rows = sorted(arts, key=lambda a: a.release_id)
    return b"".join(
        orjson.dumps({
            "release_id": a.release_id,
            "release_mbid": a.release_mbid,
            "member": a.image.member,
            "sha256": a.image.sha256,
            "mime": a.image.mime,
            "size": a.image.size,
        }) + b"\n"
        for a in rows
    )


def _info(name: str, size: int, is_dir: bool) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = 0 if is_dir else size
    ti.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    ti.mode = 0o755 if is_dir else 0o644
    ti.mtime = TAR_MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def write_art_tar(arts: list[ReleaseArt], out: Path) -> int:
    """Write the deterministic art tar to ``out`` (atomically); return the number of images."""
    images = {a.image.sha256: a.image for a in arts}
    members = sorted(images.values(), key=lambda i: i.member)
    dirs = sorted({m.member.split("/")[0] for m in members})
    index = index_lines(arts)
    by_dir: dict[str, list[Image]] = {d: [] for d in dirs}
    for img in members:
        by_dir[img.member.split("/")[0]].append(img)
    with atomic_write(out) as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            tar.addfile(_info("index.jsonl", len(index), False), io.BytesIO(index))
            for d in dirs:
                tar.addfile(_info(d, 0, True))
                for img in by_dir[d]:
                    data = img.read()
                    tar.addfile(_info(img.member, len(data), False), io.BytesIO(data))
    return len(members)


def art_signature(arts: list[ReleaseArt]) -> str:
    """A digest of what the tar would contain, to tell whether it must be rebuilt."""
    return hashlib.sha256(index_lines(arts)).hexdigest()
